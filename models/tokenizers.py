"""Tokenizers: turn text into lists of integer ids and back.

What is here:

* ``CharTokenizer``: one id per character. The simplest useful tokenizer.
* ``BPETokenizer``: byte-level byte-pair encoding, as used by GPT-2. Its base
  vocabulary is the 256 byte values, so any UTF-8 text can be encoded; training
  learns "merges" that glue frequent adjacent pairs of tokens into new tokens.
* The teaching form of BPE (``split_words``, ``expect``, ``best_pair``,
  ``maximize``, ``learn_bpe``): the classic loop from Sennrich et al. (2016) on a
  small dictionary of word counts. It is slow and meant for reading.

Both tokenizers save to and load from JSON files that carry a format tag and a
version number, so a wrong or damaged file is reported instead of misread.
"""

import heapq
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from minigrad.checkpoint import atomic_write

NUM_BYTES = 256  # ids 0..255 are the raw byte values in the byte-level BPE
FORMAT_VERSION = 1
CHAR_FORMAT = "minigrad.char-tokenizer"
BPE_FORMAT = "minigrad.bpe-tokenizer"
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>",)
# The tokens a BERT-style encoder needs: padding, the sequence-summary slot, the
# separator between segments, and the placeholder masked language modelling predicts.
ENCODER_SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")

# Pre-tokenization: before BPE sees the text it is cut into chunks, and merges
# never cross a chunk boundary. This keeps tokens meaningful (no token spanning
# "dog." or "the cat") and makes training fast, since identical chunks are
# counted once. The pattern follows GPT-2's, written for the stdlib ``re``
# (which has no \p{L}); the alternatives are tried in order:
PRETOKENIZE_PATTERN = (
    r"'(?:[sdmt]|ll|ve|re)"  # English contractions: 's 'd 'm 't 'll 've 're
    r"| ?[^\W\d_]+"  # letters (any alphanumeric but decimal digits), maybe after one space
    r"| ?\d+"  # decimal digits, maybe after one space
    r"| ?(?:[^\w\s]|_)+"  # anything else (punctuation, emoji, marks, _), maybe after one space
    r"|\s+(?!\S)"  # whitespace, but leave the last space to lead the next word
    r"|\s+"  # whitespace before a non-space that no rule above took, or at the end
)
# Every character is whitespace, a word character (letter, digit or _) or
# neither, so the alternatives cover all text: joining the chunks gives the
# text back exactly.
_CHUNK_RE = re.compile(PRETOKENIZE_PATTERN)

# Per-chunk encodings are cached; the cache is emptied when it gets this big,
# so encoding an endless stream cannot grow memory without bound.
_CACHE_LIMIT = 100_000


def pretokenize(text):
    """Split ``text`` into the chunks that BPE works on, e.g.
    "Hello world's 42!" -> ["Hello", " world", "'s", " 42", "!"]."""
    return _CHUNK_RE.findall(text)


# ---------------------------------------------------------------------------
# Helpers shared by both tokenizers


def _check_ids(ids, vocab_size):
    """Raise ValueError naming the first id that is not in 0..vocab_size-1."""
    for token_id in ids:
        if not 0 <= token_id < vocab_size:
            raise ValueError(
                f"token id {token_id} is out of range for vocab size {vocab_size}"
            )


def _is_token_id(value):
    """True for a plain int (JSON true/false would otherwise pass as 1/0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _document(fields, format_tag):
    """A JSON-ready dict: the format tag and version, then the fields."""
    return {"format": format_tag, "version": FORMAT_VERSION, **fields}


def _load_error(path, problem):
    """The ValueError for a tokenizer file that cannot be loaded."""
    return ValueError(f"cannot load tokenizer from {str(path)!r}: {problem}")


MAX_TOKENIZER_FILE_BYTES = 256 * 2**20  # GPT-2's 50k merges take ~1 MB


def _read_json(path):
    """Read a tokenizer file as a JSON object; ValueError naming the file otherwise."""
    size = Path(path).stat().st_size
    if size > MAX_TOKENIZER_FILE_BYTES:
        raise _load_error(path, f"{size:,} bytes, over the limit of {MAX_TOKENIZER_FILE_BYTES:,} "
                                "for a tokenizer file")
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _load_error(path, f"not a valid JSON file ({err})") from None
    except RecursionError:
        raise _load_error(path, "not a valid tokenizer file (JSON nested too deeply)") from None


def _check_document(document, format_tag, path):
    """Check a tokenizer document's format tag and version (path names its source)."""
    if not isinstance(document, dict):
        raise _load_error(path, "expected a JSON object at the top level")
    found = document.get("format")
    if found != format_tag:
        raise _load_error(path, f"expected format {format_tag!r}, found {found!r}")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise _load_error(
            path, f"unsupported version {version!r} (this code reads {FORMAT_VERSION})"
        )
    return document


def _field(document, name, path):
    """Return ``document[name]``, or raise ValueError naming the file."""
    if name not in document:
        raise _load_error(path, f"missing field {name!r}")
    return document[name]


# ---------------------------------------------------------------------------
# Character-level tokenizer


class _SavedAsJSON:
    """save/load for a tokenizer that defines to_dict() and from_dict(document, source)."""

    def save(self, path):
        """Write the tokenizer to ``path`` as JSON, atomically (as checkpoints are written)."""
        data = json.dumps(self.to_dict()).encode("utf-8")
        atomic_write(path, lambda f: f.write(data))

    @classmethod
    def load(cls, path):
        """Read a tokenizer written by ``save``; ValueError if the file is not one."""
        return cls.from_dict(_read_json(path), path)


class CharTokenizer(_SavedAsJSON):
    """One token per character; the vocabulary is a fixed list of characters.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hole")
    [1, 3, 2, 0]

    Special tokens (e.g. ENCODER_SPECIAL_TOKENS: "[PAD]", "[MASK]", ...) get the
    ids after the characters; each occurrence in text becomes its one id, never
    its characters.
    """

    def __init__(self, chars, special_tokens=()):
        """Build from distinct characters; the i-th character gets id i, the special
        tokens the ids after them."""
        chars = list(chars)
        for char in chars:
            if not (isinstance(char, str) and len(char) == 1):
                raise ValueError(f"vocabulary entries must be single characters, got {char!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("vocabulary contains a repeated character")
        special_tokens = _validated_special_tokens(special_tokens)
        self.chars = chars
        self._ids = {char: i for i, char in enumerate(chars)}
        self._special_ids = {token: len(chars) + i for i, token in enumerate(special_tokens)}
        self._special_re = _special_splitter(special_tokens)

    @classmethod
    def from_text(cls, text, special_tokens=()):
        """Build the vocabulary from the sorted unique characters of ``text`` (special
        tokens' occurrences in it left out)."""
        splitter = _special_splitter(_validated_special_tokens(special_tokens))
        plain = "".join(splitter.split(text)[::2]) if splitter else text
        return cls(sorted(set(plain)), special_tokens)

    @property
    def vocab_size(self):
        return len(self.chars) + len(self._special_ids)

    @property
    def special_tokens(self):
        """A dict mapping each special token string to its id."""
        return dict(self._special_ids)

    def encode(self, text):
        """Return one id per character of ``text`` (one per special token occurrence).

        Raises ValueError listing the unknown characters and their positions.
        """
        if self._special_re is None:
            return self._encode_chars(text)
        ids = []
        for position, part in enumerate(self._special_re.split(text)):
            ids.extend([self._special_ids[part]] if position % 2 else self._encode_chars(part))
        return ids

    def _encode_chars(self, text):
        try:
            return [self._ids[char] for char in text]
        except KeyError:
            raise ValueError(self._unknown_chars_message(text)) from None

    def _unknown_chars_message(self, text, shown=5):
        unknown = [(i, char) for i, char in enumerate(text) if char not in self._ids]
        listed = ", ".join(f"{char!r} at position {i}" for i, char in unknown[:shown])
        if len(unknown) > shown:
            listed += f", ... ({len(unknown)} in all)"
        return f"characters not in the vocabulary: {listed}"

    def decode(self, ids):
        """Return the text for ``ids``; ValueError on an id outside the vocabulary."""
        ids = list(ids)
        _check_ids(ids, self.vocab_size)
        pieces = self.chars + list(self._special_ids)
        return "".join(pieces[i] for i in ids)

    def to_dict(self):
        """The tokenizer as a JSON-ready dict (what ``save`` writes)."""
        fields = {"chars": self.chars}
        if self._special_ids:  # absent when there are none, as files written before them
            fields["special_tokens"] = list(self._special_ids)
        return _document(fields, CHAR_FORMAT)

    @classmethod
    def from_dict(cls, document, source="<dict>"):
        """Rebuild from ``to_dict()``'s output; ValueError naming ``source`` if it is not one."""
        _check_document(document, CHAR_FORMAT, source)
        chars = _field(document, "chars", source)
        special_tokens = document.get("special_tokens", [])
        if not isinstance(chars, list):
            raise _load_error(source, "field 'chars' must be a list")
        if not isinstance(special_tokens, list):
            raise _load_error(source, "field 'special_tokens' must be a list")
        try:
            return cls(chars, special_tokens)
        except ValueError as err:
            raise _load_error(source, str(err)) from None


# ---------------------------------------------------------------------------
# Byte-level BPE: fast training


def merge_pair(ids, pair, new_id):
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, left to right.

    merge_pair([1, 2, 2, 2], (2, 2), 9) -> [1, 9, 2]
    """
    first, second = pair
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == first and ids[i + 1] == second:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def learn_merges(chunk_counts, num_merges):
    """Learn up to ``num_merges`` BPE merges from byte chunks and their counts.

    ``chunk_counts`` maps each distinct chunk (a tuple of byte ids) to how often
    it occurs. Merge k creates token ``NUM_BYTES + k`` from its pair. Each step
    merges the pair with the highest count; ties go to the smallest pair
    ``(a, b)`` in id order, so training is deterministic. Stops early when no
    pair is left.

    Rather than recounting all pairs after each merge, it keeps the counts up to
    date: an index records which chunks contain each pair, so a merge only
    revisits those chunks, and a heap finds the best pair. Heap entries go stale
    when a count changes; a fresh entry is pushed then, and stale ones are
    skipped when popped ("lazy deletion").
    """
    chunks = [list(chunk) for chunk in chunk_counts]
    counts = list(chunk_counts.values())
    pair_counts = defaultdict(int)
    chunks_with_pair = defaultdict(set)
    for index, chunk in enumerate(chunks):
        for pair in zip(chunk, chunk[1:]):
            pair_counts[pair] += counts[index]
            chunks_with_pair[pair].add(index)
    # Min-heap on (-count, pair): highest count first, then the smallest pair.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges = []
    while len(merges) < num_merges:
        pair = _pop_best_pair(heap, pair_counts)
        if pair is None:
            break
        new_id = NUM_BYTES + len(merges)
        changes = _merge_in_chunks(pair, new_id, chunks, counts, chunks_with_pair)
        _apply_count_changes(changes, pair_counts, chunks_with_pair, heap)
        merges.append(pair)
    return merges


def _pop_best_pair(heap, pair_counts):
    """Pop heap entries until one matches its pair's current count."""
    while heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) == -negative_count:
            return pair
    return None


def _merge_in_chunks(pair, new_id, chunks, counts, chunks_with_pair):
    """Merge ``pair`` in every chunk containing it and update the index.

    Returns how much each pair's count changes (pairs around a merged spot
    lose occurrences, pairs with ``new_id`` gain them).
    """
    changes = defaultdict(int)
    for index in list(chunks_with_pair[pair]):
        old = chunks[index]
        new = merge_pair(old, pair, new_id)
        chunks[index] = new
        old_pairs = list(zip(old, old[1:]))
        new_pairs = list(zip(new, new[1:]))
        for gone in old_pairs:
            changes[gone] -= counts[index]
        for added in new_pairs:
            changes[added] += counts[index]
        for gone in set(old_pairs).difference(new_pairs):
            chunks_with_pair[gone].discard(index)
        for added in set(new_pairs).difference(old_pairs):
            chunks_with_pair[added].add(index)
    return changes


def _apply_count_changes(changes, pair_counts, chunks_with_pair, heap):
    """Add ``changes`` to the pair counts and push fresh heap entries."""
    for pair, change in changes.items():
        if change == 0:  # a pair away from the merge: counted out and back in
            continue
        count = pair_counts[pair] + change
        if count > 0:
            pair_counts[pair] = count
            heapq.heappush(heap, (-count, pair))
        else:  # the pair no longer occurs anywhere
            del pair_counts[pair]
            del chunks_with_pair[pair]


def _count_chunks(segments):
    """Map each distinct chunk of ``segments`` (as a tuple of UTF-8 bytes) to its count."""
    chunk_counts = Counter()
    for segment in segments:
        chunk_counts.update(_CHUNK_RE.findall(segment))
    return {tuple(chunk.encode("utf-8")): count for chunk, count in chunk_counts.items()}


def _special_splitter(special_tokens):
    """A regex whose ``split`` alternates text and special tokens, or None.

    Longer tokens are tried first, so a token that contains another wins.
    """
    if not special_tokens:
        return None
    by_length = sorted(special_tokens, key=len, reverse=True)
    return re.compile("(" + "|".join(map(re.escape, by_length)) + ")")


def _validated_merges(merges):
    """Return ``merges`` as a list of (int, int) tuples, or raise ValueError.

    Merge k may only use tokens that exist before it: ids below NUM_BYTES + k.
    """
    result = []
    for rank, pair in enumerate(merges):
        limit = NUM_BYTES + rank
        if not (
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(_is_token_id(t) and 0 <= t < limit for t in pair)
        ):
            raise ValueError(
                f"merge {rank} is {pair!r}; expected two ids of earlier tokens (below {limit})"
            )
        result.append(tuple(pair))
    if len(set(result)) != len(result):
        raise ValueError("the merges contain a repeated pair")
    return result


def _validated_special_tokens(special_tokens):
    """Return ``special_tokens`` as a list of distinct non-empty strings, or raise."""
    if isinstance(special_tokens, (str, bytes)):
        raise TypeError(f"special_tokens must be a list (or tuple) of strings, not a "
                        f"{type(special_tokens).__name__}: write [{special_tokens!r}] for one token")
    tokens = list(special_tokens)
    for token in tokens:
        if not (isinstance(token, str) and token):
            raise ValueError(f"special tokens must be non-empty strings, got {token!r}")
    if len(set(tokens)) != len(tokens):
        raise ValueError("the special tokens contain a repeated token")
    return tokens


class BPETokenizer(_SavedAsJSON):
    """Byte-level byte-pair encoding tokenizer.

    Ids 0..255 are the bytes; ids from 256 on are the learned merges, in the
    order they were learned; the special tokens come last.

    >>> tok = BPETokenizer().train("low lower lowest", vocab_size=260)
    >>> tok.decode(tok.encode("lowly 🦉"))
    'lowly 🦉'

    Special tokens (such as "<|endoftext|>", which marks document boundaries)
    are registered at training time. They are never split and are left out of
    training, so no merge spans or contains one. See ``encode`` for how they
    are recognised in text.
    """

    _chunk_re = _CHUNK_RE  # pre-tokenization; the GPT-2 tokenizer (models/gpt2_tokenizer.py) uses GPT-2's

    def __init__(self, merges=(), special_tokens=()):
        """Build from learned ``merges`` (pairs of ids) and special token strings.

        ``BPETokenizer()`` has only the 256 byte tokens; call ``train`` to learn.
        """
        self._set_vocabulary(merges, special_tokens)

    def _set_vocabulary(self, merges, special_tokens):
        """Validate merges and special tokens, then build the lookup tables."""
        self._merges = _validated_merges(merges)
        special_tokens = _validated_special_tokens(special_tokens)
        # The id a pair merges into; lower id = learned earlier = applied first.
        self._merge_ids = {pair: NUM_BYTES + rank for rank, pair in enumerate(self._merges)}
        token_bytes = [bytes([value]) for value in range(NUM_BYTES)]
        for first, second in self._merges:
            token_bytes.append(token_bytes[first] + token_bytes[second])
        self._special_ids = {token: len(token_bytes) + i for i, token in enumerate(special_tokens)}
        token_bytes.extend(token.encode("utf-8") for token in special_tokens)
        self._token_bytes = token_bytes
        self._special_re = _special_splitter(special_tokens)
        self._cache = {}

    def train(self, text, vocab_size, special_tokens=DEFAULT_SPECIAL_TOKENS):
        """Learn merges from ``text`` so the vocabulary reaches ``vocab_size``.

        ``vocab_size`` counts the 256 bytes, the merges and the special tokens.
        If the text runs out of pairs to merge first, the vocabulary is smaller.
        Occurrences of the special tokens in ``text`` are cut out before
        training. Replaces any earlier vocabulary; returns ``self``.
        """
        special_tokens = _validated_special_tokens(special_tokens)
        num_merges = vocab_size - NUM_BYTES - len(special_tokens)
        if num_merges < 0:
            raise ValueError(
                f"vocab_size {vocab_size} is too small: it must be at least "
                f"{NUM_BYTES} bytes + {len(special_tokens)} special tokens"
            )
        splitter = _special_splitter(special_tokens)
        segments = splitter.split(text)[::2] if splitter else [text]
        merges = learn_merges(_count_chunks(segments), num_merges)
        self._set_vocabulary(merges, special_tokens)
        return self

    @classmethod
    def from_gpt2(cls, encoder_json_path, vocab_bpe_path):
        """OpenAI's GPT-2 tokenizer from its encoder.json and vocab.bpe: the same ids as GPT-2's
        (see models/gpt2_tokenizer.py)."""
        from .gpt2_tokenizer import load_gpt2_tokenizer  # it subclasses this class
        return load_gpt2_tokenizer(encoder_json_path, vocab_bpe_path)

    @property
    def vocab_size(self):
        return len(self._token_bytes)

    @property
    def merges(self):
        """The learned merges as (id, id) pairs; merge k made token 256 + k."""
        return list(self._merges)

    @property
    def special_tokens(self):
        """A dict mapping each special token string to its id."""
        return dict(self._special_ids)

    def token_bytes(self, token_id):
        """The bytes that token ``token_id`` stands for."""
        _check_ids([token_id], self.vocab_size)
        return self._token_bytes[token_id]

    def encode(self, text, allowed_special="all"):
        """Return the token ids for ``text``.

        ``allowed_special`` says which registered special tokens are recognised:

        * ``"all"`` (the default): every occurrence of a special token string
          becomes that token's single id.
        * ``"none"``: special token strings are encoded as ordinary text. Use
          this for untrusted text that must not inject control tokens.
        * a collection of special token strings: only those are recognised.
        """
        splitter = self._splitter_for(allowed_special)
        if splitter is None:
            return self._encode_ordinary(text)
        ids = []
        # With a capturing group, split() alternates: text, token, text, ...
        for position, part in enumerate(splitter.split(text)):
            if position % 2:
                ids.append(self._special_ids[part])
            else:
                ids.extend(self._encode_ordinary(part))
        return ids

    def _splitter_for(self, allowed_special):
        """The special-token splitter for an ``allowed_special`` argument."""
        if allowed_special == "all":
            return self._special_re
        if allowed_special == "none":
            return None
        if isinstance(allowed_special, str):
            raise ValueError(
                'allowed_special must be "all", "none" or a collection of special tokens'
            )
        allowed = set(allowed_special)
        unknown = allowed - self._special_ids.keys()
        if unknown:
            raise ValueError(f"not registered special tokens: {sorted(unknown)}")
        return _special_splitter(allowed)

    def _encode_ordinary(self, text):
        """Encode text that contains no special tokens, chunk by chunk."""
        ids = []
        cache = self._cache
        for chunk in self._chunk_re.findall(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = self._encode_chunk(chunk.encode("utf-8"))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def _encode_chunk(self, chunk_bytes):
        """Apply merges to one chunk, always the earliest-learned pair present.

        This gives the same tokens as replaying every merge in training order,
        because a merge can only create pairs involving its new, later id.
        """
        ids = list(chunk_bytes)
        never = len(self._token_bytes)  # sorts after every merge id
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self._merge_ids.get(p, never))
            new_id = self._merge_ids.get(pair)
            if new_id is None:
                break
            ids = merge_pair(ids, pair, new_id)
        return ids

    def decode(self, ids):
        """Return the text for ``ids``.

        Byte sequences that are not valid UTF-8 (possible when ids are cut at
        an arbitrary point) become U+FFFD replacement characters. Raises
        ValueError on an id outside the vocabulary.
        """
        ids = list(ids)
        _check_ids(ids, self.vocab_size)
        return b"".join(self._token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def to_dict(self):
        """Merges, special tokens and the pre-tokenization pattern, JSON-ready."""
        fields = {
            "pattern": PRETOKENIZE_PATTERN,
            "merges": [list(pair) for pair in self._merges],
            "special_tokens": list(self._special_ids),
        }
        return _document(fields, BPE_FORMAT)

    @classmethod
    def from_dict(cls, document, source="<dict>"):
        """Rebuild from ``to_dict()``'s output; ValueError naming ``source`` if it is not one."""
        _check_document(document, BPE_FORMAT, source)
        if _field(document, "pattern", source) != PRETOKENIZE_PATTERN:
            raise _load_error(source, "it was saved with a different pre-tokenization pattern")
        merges = _field(document, "merges", source)
        special_tokens = _field(document, "special_tokens", source)
        if not (isinstance(merges, list) and isinstance(special_tokens, list)):
            raise _load_error(source, "fields 'merges' and 'special_tokens' must be lists")
        try:
            return cls(merges, special_tokens)
        except ValueError as err:
            raise _load_error(source, str(err)) from None


def tokenizer_from_dict(document, source="<dict>"):
    """A CharTokenizer or BPETokenizer from its ``to_dict()`` form, chosen by format tag."""
    kinds = {CHAR_FORMAT: CharTokenizer, BPE_FORMAT: BPETokenizer}
    kind = kinds.get(document.get("format") if isinstance(document, dict) else None)
    if kind is None:
        raise _load_error(source, "not a minigrad tokenizer (unknown or missing format tag)")
    return kind.from_dict(document, source)


# ---------------------------------------------------------------------------
# Teaching form of BPE
#
# The classic description (Sennrich et al., 2016) works on a dictionary of
# words with their counts. Each word starts as its characters plus an
# end-of-word symbol, then two steps repeat:
#   expect:   count every adjacent symbol pair, weighted by word frequency;
#   maximize: merge the most frequent pair into one symbol everywhere.
# (The names borrow from the E and M steps of EM; BPE is greedy, not EM.)
# Each step recounts everything, which is why BPETokenizer uses learn_merges.

END_OF_WORD = "</w>"  # marks a word's end, so "st" ending "best" differs from "st" in "stop"


def split_words(word_counts):
    """{"low": 5} -> {("l", "o", "w", "</w>"): 5}."""
    return {tuple(word) + (END_OF_WORD,): count for word, count in word_counts.items()}


def expect(vocab):
    """Count each adjacent pair of symbols, weighted by its word's count."""
    pair_counts = Counter()
    for symbols, count in vocab.items():
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += count
    return pair_counts


def best_pair(pair_counts):
    """The most frequent pair; ties go to the alphabetically smallest pair."""
    return min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))


def maximize(vocab, pair):
    """Return a new vocab in which ``pair`` is merged into one symbol everywhere."""
    merged_symbol = pair[0] + pair[1]
    new_vocab = Counter()
    for symbols, count in vocab.items():
        merged = []
        i = 0
        while i < len(symbols):
            if symbols[i : i + 2] == pair:
                merged.append(merged_symbol)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        new_vocab[tuple(merged)] += count
    return dict(new_vocab)


def top_pairs(pair_counts, k):
    """The ``k`` most frequent pairs, most frequent first; ties as in best_pair."""
    return sorted(pair_counts, key=lambda pair: (-pair_counts[pair], pair))[:k]


def learn_bpe(word_counts, num_merges, top_k=1):
    """Run expect/maximize until ``num_merges`` pairs are merged; return them in order.

    top_k=1 merges the single most frequent pair per expect step (the classic form).
    top_k=k merges the k most frequent pairs of one count, one after the other, so there
    are fewer recounts; a pair that an earlier merge of the same step used up (it no
    longer occurs) is skipped.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    vocab = split_words(word_counts)
    merges = []
    while len(merges) < num_merges:
        pair_counts = expect(vocab)
        if not pair_counts:  # every word is a single symbol: nothing to merge
            break
        for pair in top_pairs(pair_counts, min(top_k, num_merges - len(merges))):
            if pair not in expect(vocab):  # used up by this step's earlier merges
                continue
            vocab = maximize(vocab, pair)
            merges.append(pair)
    return merges


def segment(word, merges):
    """Split an unseen ``word`` with learned merges: its characters plus </w>, then each
    merge applied in the order it was learned. Characters never seen in training stay
    single symbols (the teaching form has no bytes to fall back on).

    segment("lowest", learn_bpe({"low": 5, "newest": 6}, 10)) -> ["low", "est</w>"]
    """
    (symbols,) = split_words({word: 1})
    for pair in merges:
        (symbols,) = maximize({symbols: 1}, pair)
    return list(symbols)
