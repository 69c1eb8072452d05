"""A synthetic translation task with a known answer: numbers between two made-up languages.

Every number 1..999,999 is written in two languages that use different words and a
different word order, and both leave out the zero digits (as "three thousand five"
does), so where a word goes depends on the number, not on a fixed position:

    Ardic (source): thousands group, "mil", units group; in a group hundreds, tens, units
    Belic (target): units group, "tau", thousands group; in a group hundreds, units, tens

    305,020   Ardic: tricen pen mil dota               (3-hundred 5 | thousand | 2-ty)
              Belic: diru tau gusho ke                 (2-ty | thousand | 3-hundred 5)

Each target word translates exactly one source word (same digit, same place, same
group), so the task defines an alignment: target position j copies source position
alignment[j]. A model must find that word by its place in the number, not by copying:
505,505 holds the word for "5 hundred" twice, and only the group tells them apart.

Token ids are shared by the two languages (id = the concept), with separate spellings:
PAD 0, BOS 1, EOS 2, then units 1-9, tens 1-9, hundreds 1-9 and the thousands marker.
Numbers whose multiplicative hash falls in a fixed 10% are held out: training never
draws them, and test sets come only from them.
"""
import numpy as np

PAD, BOS, EOS = 0, 1, 2
UNITS, TENS, HUNDREDS = 3, 12, 21   # first id of each place: digit d has id FIRST + d - 1
MARKER = 30                          # "thousand": Ardic "mil", Belic "tau"
VOCAB_SIZE = 31
IGNORE = -100                        # target positions the loss skips (padding)
MAX_NUMBER = 999_999
MAX_SOURCE = 7                       # 3 + marker + 3 words
MAX_TARGET = 7

_ARDIC_DIGITS = ["un", "do", "tri", "kat", "pen", "ses", "sep", "ot", "nov"]
_BELIC_DIGITS = ["ba", "di", "gu", "fo", "ke", "lo", "mi", "nu", "pe"]


def _spellings(digits, tens, hundreds, marker):
    table = ["<pad>", "<bos>", "<eos>"]
    table += digits + [d + tens for d in digits] + [d + hundreds for d in digits] + [marker]
    return table


ARDIC = _spellings(_ARDIC_DIGITS, "ta", "cen", "mil")
BELIC = _spellings(_BELIC_DIGITS, "ru", "sho", "tau")


def is_held_out(numbers):
    """True for the fixed ~10% of numbers reserved for testing.

    The choice is splitmix64's finalizer (a hash whose output bits each depend on all
    input bits) mod 10, so the held-out numbers share no digit pattern: every digit in
    every place is held out about equally often (a plain multiplicative hash mod 10
    would keep only even numbers, since the multiplier is odd and 2**32 is even)."""
    z = np.asarray(numbers, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z % np.uint64(10) == 0


def _group(value, offset, target_order):
    """Words (token ids) and their group-local places for a group 0..999, zeros left out.

    Places: 0 hundreds, 1 tens, 2 units, each shifted by `offset` so that the two groups'
    places differ (0-2 thousands group, 4-6 units group; 3 is the marker)."""
    h, t, u = value // 100, value // 10 % 10, value % 10
    words = [(HUNDREDS + h - 1, 0) if h else None, (TENS + t - 1, 1) if t else None,
             (UNITS + u - 1, 2) if u else None]
    if target_order:
        words = [words[0], words[2], words[1]]   # Belic: units before tens
    return [(token, place + offset) for token, place in filter(None, words)]


def _source_words(n):
    high, low = divmod(n, 1000)
    words = _group(high, 0, False) + ([(MARKER, 3)] if high else []) + _group(low, 4, False)
    return words


def _target_words(n):
    high, low = divmod(n, 1000)
    return _group(low, 4, True) + ([(MARKER, 3)] if high else []) + _group(high, 0, True)


def translate(n):
    """(source ids, target ids, alignment) for one number: target word j translates
    source word alignment[j]."""
    n = int(n)
    if not 1 <= n <= MAX_NUMBER:
        raise ValueError(f"numbers must be in 1..{MAX_NUMBER}, got {n}")
    source, target = _source_words(n), _target_words(n)
    where = {place: i for i, (_, place) in enumerate(source)}
    alignment = [where[place] for _, place in target]
    return [t for t, _ in source], [t for t, _ in target], alignment


def read_target(tokens):
    """The number a Belic token sequence says (stops at EOS); None if it is not well formed."""
    values = {"low": [0, 0, 0], "high": [0, 0, 0]}
    group, seen = "low", set()
    for token in tokens:
        token = int(token)
        if token == EOS:
            break
        if token == MARKER and group == "low":
            group = "high"
            continue
        for place, first in enumerate((HUNDREDS, TENS, UNITS)):
            if first <= token < first + 9 and (group, place) not in seen:
                values[group][place] = token - first + 1
                seen.add((group, place))
                break
        else:
            return None
    low, high = (100 * h + 10 * t + u for h, t, u in (values["low"], values["high"]))
    return high * 1000 + low


def spell(tokens, language):
    """Token ids -> words of ARDIC or BELIC, up to EOS, padding left out."""
    words = []
    for token in tokens:
        if token == EOS:
            break
        if token not in (PAD, BOS):
            words.append(language[int(token)])
    return " ".join(words)


def training_numbers(rng, count):
    """`count` numbers drawn uniformly from those not held out."""
    found = np.empty(0, dtype=np.int64)
    while len(found) < count:
        draw = rng.integers(1, MAX_NUMBER + 1, size=2 * count)
        found = np.concatenate([found, draw[~is_held_out(draw)]])
    return found[:count]


def test_numbers(count, seed=1):
    """`count` distinct held-out numbers, the same for the same seed."""
    held_out = np.flatnonzero(is_held_out(np.arange(MAX_NUMBER + 1)))
    held_out = held_out[held_out >= 1]
    return np.random.default_rng(seed).choice(held_out, size=count, replace=False)


def batch(numbers):
    """Arrays for a batch of numbers, padded:

    source (B, MAX_SOURCE) ids, PAD after the end;
    decoder_input (B, MAX_TARGET + 1): BOS, then the target, then PAD;
    decoder_target (B, MAX_TARGET + 1): the target, EOS, then IGNORE;
    alignment (B, MAX_TARGET): source position of each target word, -1 past its end.
    """
    B = len(numbers)
    source = np.full((B, MAX_SOURCE), PAD, dtype=np.int64)
    decoder_input = np.full((B, MAX_TARGET + 1), PAD, dtype=np.int64)
    decoder_target = np.full((B, MAX_TARGET + 1), IGNORE, dtype=np.int64)
    alignment = np.full((B, MAX_TARGET), -1, dtype=np.int64)
    for row, n in enumerate(numbers):
        src, tgt, align = translate(n)
        source[row, :len(src)] = src
        decoder_input[row, 0] = BOS
        decoder_input[row, 1:len(tgt) + 1] = tgt
        decoder_target[row, :len(tgt)] = tgt
        decoder_target[row, len(tgt)] = EOS
        alignment[row, :len(align)] = align
    return source, decoder_input, decoder_target, alignment
