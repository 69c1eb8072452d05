"""Tests for models.tokenizers: round trips, training, special tokens, files."""

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.data import default_corpus
from models.tokenizers import (
    BPETokenizer,
    ENCODER_SPECIAL_TOKENS,
    CharTokenizer,
    best_pair,
    expect,
    learn_bpe,
    learn_merges,
    maximize,
    pretokenize,
    segment,
    split_words,
    top_pairs,
)

EOT = "<|endoftext|>"
# ~20 KB of English prose and code, plus a line of multi-byte characters.
TRAIN_TEXT = default_corpus()[:20_000] + "\nnaïve café, 東京 🦉🦉 and déjà vu " + EOT + "\n"
NUM_MERGES = 300
VOCAB_SIZE = 256 + NUM_MERGES + 1  # bytes + merges + <|endoftext|>


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer().train(TRAIN_TEXT, VOCAB_SIZE)


@pytest.fixture(scope="module")
def chars():
    return CharTokenizer.from_text(TRAIN_TEXT)


# ---------------------------------------------------------------------------
# Reference implementations, written independently of the module under test


def replace_pair(ids, pair, new_id):
    """Merge occurrences of pair left to right (a test-local copy of the rule)."""
    out, i = [], 0
    while i < len(ids):
        if tuple(ids[i : i + 2]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def naive_merges(chunk_counts, num_merges):
    """BPE training that recounts every pair before each merge."""
    chunks = [(list(chunk), count) for chunk, count in chunk_counts.items()]
    merges = []
    for _ in range(num_merges):
        pair_counts = Counter()
        for ids, count in chunks:
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        top = max(pair_counts.values())
        pair = min(p for p, c in pair_counts.items() if c == top)
        new_id = 256 + len(merges)
        chunks = [(replace_pair(ids, pair, new_id), count) for ids, count in chunks]
        merges.append(pair)
    return merges


def chunk_counts_of(text):
    return dict(Counter(tuple(chunk.encode("utf-8")) for chunk in pretokenize(text)))


def replay_merges(text, merges):
    """Encode by applying every merge in training order to every chunk."""
    ids = []
    for chunk in pretokenize(text):
        chunk_ids = list(chunk.encode("utf-8"))
        for rank, pair in enumerate(merges):
            chunk_ids = replace_pair(chunk_ids, pair, 256 + rank)
        ids.extend(chunk_ids)
    return ids


# ---------------------------------------------------------------------------
# Pre-tokenization


@pytest.mark.parametrize(
    "text, chunks",
    [
        ("Hello world's 42!", ["Hello", " world", "'s", " 42", "!"]),
        ("a  b", ["a", " ", " b"]),  # the last space leads the next word
        ("x\n\ny", ["x", "\n", "\n", "y"]),
        ("3.14 ok_go", ["3", ".", "14", " ok", "_", "go"]),
        ("owl 🦉🦉!", ["owl", " 🦉🦉!"]),
        ("end  ", ["end", "  "]),
        ("", []),
    ],
)
def test_pretokenize_examples(text, chunks):
    assert pretokenize(text) == chunks


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_pretokenize_loses_nothing(text):
    assert "".join(pretokenize(text)) == text


# ---------------------------------------------------------------------------
# BPE round trips


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00",
        "a\x00b\x01\x7f\r\n\t",
        "emoji 🦉🚀👩‍👩‍👧 flags 🇫🇷",
        "東京は晴れ。한국어 텍스트",
        "e\u0301 n\u0303 combining marks",
        "  leading and trailing spaces  ",
        "special " + EOT + " inside" + EOT,
    ],
)
def test_bpe_round_trips_examples(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_bpe_round_trips_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text
    assert bpe.decode(bpe.encode(text, allowed_special="none")) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, VOCAB_SIZE - 1), max_size=30))
def test_bpe_decode_encode_decode_is_stable(bpe, ids):
    text = bpe.decode(ids)  # may hold U+FFFD where bytes were cut
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_vocabulary_layout(bpe):
    assert bpe.vocab_size == VOCAB_SIZE
    assert len(bpe.merges) == NUM_MERGES
    assert bpe.special_tokens == {EOT: VOCAB_SIZE - 1}
    assert bpe.token_bytes(ord("a")) == b"a"
    first, second = bpe.merges[0]
    assert bpe.token_bytes(256) == bpe.token_bytes(first) + bpe.token_bytes(second)


def test_bpe_compresses_its_training_text(bpe):
    text = TRAIN_TEXT[:5000]
    assert len(bpe.encode(text)) < len(text.encode("utf-8")) / 2


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRAIN_TEXT), max_size=200) | st.text(max_size=50))
def test_bpe_encode_matches_replaying_merges_in_order(bpe, text):
    assert bpe.encode(text, allowed_special="none") == replay_merges(text, bpe.merges)


@pytest.mark.parametrize("bad_id", [-1, VOCAB_SIZE])
def test_bpe_decode_rejects_out_of_range_ids(bpe, bad_id):
    with pytest.raises(ValueError, match=rf"token id {bad_id} .*vocab size {VOCAB_SIZE}"):
        bpe.decode([65, bad_id])


# ---------------------------------------------------------------------------
# BPE training


def test_training_is_deterministic(bpe):
    again = BPETokenizer().train(TRAIN_TEXT, VOCAB_SIZE)
    assert again.merges == bpe.merges


def test_merges_do_not_depend_on_chunk_order():
    counts = chunk_counts_of(TRAIN_TEXT[:5000])
    reversed_counts = dict(reversed(list(counts.items())))
    assert learn_merges(reversed_counts, 100) == learn_merges(counts, 100)


def test_ties_go_to_the_smallest_pair():
    # (1, 2) and (2, 3) both occur once: (1, 2) is smaller; then (256, 3).
    assert learn_merges({(1, 2, 3): 1}, 5) == [(1, 2), (256, 3)]
    # Insertion order must not matter: (3, 4) wins though it comes second.
    assert learn_merges({(5, 6): 2, (3, 4): 2}, 1) == [(3, 4)]
    # A higher count beats a smaller pair.
    assert learn_merges({(5, 6): 3, (3, 4): 2}, 1) == [(5, 6)]
    # (7, 7) occurs twice in 7 7 7 (overlapping); merging leaves 256 7.
    assert learn_merges({(7, 7, 7): 1}, 5) == [(7, 7), (256, 7)]


def test_training_stops_when_no_pairs_are_left():
    tok = BPETokenizer().train("ab", 300, special_tokens=())
    assert tok.merges == [(ord("a"), ord("b"))]
    assert tok.vocab_size == 257


def test_vocab_size_too_small_is_rejected():
    with pytest.raises(ValueError, match="too small"):
        BPETokenizer().train("abc", 256)  # no room for <|endoftext|>


def test_incremental_training_matches_naive_on_real_text():
    counts = chunk_counts_of(TRAIN_TEXT)
    assert learn_merges(counts, NUM_MERGES) == naive_merges(counts, NUM_MERGES)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab c\n", max_size=200) | st.text(max_size=100), st.integers(0, 40))
def test_incremental_training_matches_naive_on_generated_text(text, num_merges):
    tok = BPETokenizer().train(text, 256 + num_merges, special_tokens=())
    assert tok.merges == naive_merges(chunk_counts_of(text), num_merges)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.lists(st.integers(0, 3), min_size=1, max_size=10).map(tuple),
        st.integers(1, 5),
        max_size=10,
    ),
    st.integers(0, 30),
)
def test_incremental_training_matches_naive_on_repetitive_chunks(chunk_counts, num_merges):
    # Few distinct ids give runs like 1 1 1 1, where merges overlap.
    assert learn_merges(chunk_counts, num_merges) == naive_merges(chunk_counts, num_merges)


# ---------------------------------------------------------------------------
# Special tokens


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=5))
def test_special_tokens_become_single_ids(bpe, parts):
    text = EOT.join(parts)
    ids = bpe.encode(text)
    assert ids.count(bpe.special_tokens[EOT]) == text.count(EOT)
    assert bpe.decode(ids) == text


def test_special_tokens_can_be_treated_as_text(bpe):
    ids = bpe.encode("a" + EOT + "b", allowed_special="none")
    assert bpe.special_tokens[EOT] not in ids
    assert bpe.decode(ids) == "a" + EOT + "b"


def test_allowed_special_subset():
    tok = BPETokenizer(special_tokens=["<A>", "<B>"])
    a, b = tok.special_tokens["<A>"], tok.special_tokens["<B>"]
    assert tok.encode("<A><B>", allowed_special={"<A>"}) == [a] + list(b"<B>")
    assert tok.encode("<A><B>") == [a, b]
    with pytest.raises(ValueError, match="not registered"):
        tok.encode("x", allowed_special={"<C>"})
    with pytest.raises(ValueError, match="allowed_special"):
        tok.encode("x", allowed_special="<A>")


def test_longer_special_token_wins():
    tok = BPETokenizer(special_tokens=["<s>", "<s>!"])
    assert tok.encode("<s>!<s>") == [tok.special_tokens["<s>!"], tok.special_tokens["<s>"]]


def test_special_tokens_are_left_out_of_training():
    tok = BPETokenizer().train(EOT * 50 + "hello", 300)
    learned = [tok.token_bytes(256 + rank) for rank in range(len(tok.merges))]
    assert learned and all(piece in b"hello" for piece in learned)


# ---------------------------------------------------------------------------
# Character tokenizer


def test_char_vocabulary_is_sorted_unique_characters():
    tok = CharTokenizer.from_text("banana")
    assert tok.chars == ["a", "b", "n"]
    assert tok.vocab_size == 3
    assert tok.encode("nab") == [2, 0, 1]
    assert tok.decode([1, 0, 2, 0]) == "bana"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(set(TRAIN_TEXT)))))
def test_char_round_trips_text_from_its_alphabet(chars, text):
    assert chars.decode(chars.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_char_round_trips_the_text_it_was_built_from(text):
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


def test_char_unknown_characters_are_named_with_positions():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="'é' at position 2"):
        tok.encode("abé")
    with pytest.raises(ValueError, match="'x' at position 0, 'y' at position 3"):
        tok.encode("xaby")


def test_char_decode_rejects_out_of_range_ids():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="token id 3 is out of range for vocab size 3"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="token id -1 "):
        tok.decode([-1])


# ---------------------------------------------------------------------------
# Saving and loading


def test_bpe_save_load_round_trip(bpe, tmp_path):
    path = tmp_path / "bpe.json"
    bpe.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == bpe.merges
    assert loaded.special_tokens == bpe.special_tokens
    sample = TRAIN_TEXT[:3000]
    assert loaded.encode(sample) == bpe.encode(sample)


def test_char_save_load_round_trip(chars, tmp_path):
    path = tmp_path / "chars.json"
    chars.save(path)
    loaded = CharTokenizer.load(path)
    assert loaded.chars == chars.chars


def saved_json(tokenizer, tmp_path):
    path = tmp_path / "good.json"
    tokenizer.save(path)
    return json.loads(path.read_text(encoding="utf-8"))


def with_field(document, **changes):
    return json.dumps({**document, **changes})


BPE_FILE_PROBLEMS = {
    "truncated": (lambda doc: json.dumps(doc)[:40], "not a valid JSON file"),
    "not json": (lambda doc: "merges: [[1, 2]]", "not a valid JSON file"),
    "foreign json": (lambda doc: '{"hello": 1}', "expected format 'minigrad.bpe-tokenizer', found None"),
    "a list": (lambda doc: "[1, 2]", "JSON object"),
    "char file": (
        lambda doc: json.dumps({"format": "minigrad.char-tokenizer", "version": 1, "chars": ["a"]}),
        "found 'minigrad.char-tokenizer'",
    ),
    "newer version": (lambda doc: with_field(doc, version=2), "unsupported version 2"),
    "missing merges": (lambda doc: json.dumps({k: v for k, v in doc.items() if k != "merges"}), "missing field 'merges'"),
    "future id": (lambda doc: with_field(doc, merges=[[97, 98], [300, 97]]), r"merge 1 is \[300, 97\]"),
    "repeated merge": (lambda doc: with_field(doc, merges=[[97, 98], [97, 98]]), "repeated pair"),
    "bad special": (lambda doc: with_field(doc, special_tokens=[""]), "non-empty strings"),
    "other pattern": (lambda doc: with_field(doc, pattern=r"\w+"), "pre-tokenization pattern"),
}


@pytest.mark.parametrize("problem", BPE_FILE_PROBLEMS)
def test_bpe_load_rejects_bad_files(bpe, tmp_path, problem):
    make_contents, message = BPE_FILE_PROBLEMS[problem]
    path = tmp_path / "broken.json"
    path.write_text(make_contents(saved_json(bpe, tmp_path)), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        BPETokenizer.load(path)
    assert "broken.json" in str(error.value)


def test_load_rejects_binary_garbage(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match="garbage.json.*not a valid JSON file"):
        BPETokenizer.load(path)


@pytest.mark.parametrize(
    "contents, message",
    [
        ('{"format": "minigrad.bpe-tokenizer", "version": 1, "merges": []}', "found 'minigrad.bpe-tokenizer'"),
        ('{"format": "minigrad.char-tokenizer", "version": 1}', "missing field 'chars'"),
        ('{"format": "minigrad.char-tokenizer", "version": 1, "chars": ["a", "a"]}', "repeated"),
        ('{"format": "minigrad.char-tokenizer", "version": 1, "chars": ["ab"]}', "single characters"),
        ('{"format": "minigrad.char-tokenizer", "version": 1, "chars": "ab"}', "must be a list"),
        ('{"format": "minigrad.char-tokenizer", "vers', "not a valid JSON file"),
    ],
)
def test_char_load_rejects_bad_files(tmp_path, contents, message):
    path = tmp_path / "broken.json"
    path.write_text(contents, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        CharTokenizer.load(path)
    assert "broken.json" in str(error.value)


# ---------------------------------------------------------------------------
# Teaching form of BPE, on the toy vocabulary of Sennrich et al.

TOY_WORDS = {"low": 5, "lower": 2, "newest": 6, "widest": 3}

# Worked out by hand: each step's winner and its count. Ties go to the
# alphabetically smallest pair ("</w>" sorts before letters).
TOY_MERGES = [
    (("e", "s"), 9),  # ties with (s, t) and (t, </w>), also 9
    (("es", "t"), 9),  # ties with (t, </w>)
    (("est", "</w>"), 9),
    (("l", "o"), 7),  # ties with (o, w)
    (("lo", "w"), 7),
    (("e", "w"), 6),  # ties with (n, e) and (w, est</w>)
    (("ew", "est</w>"), 6),  # ties with (n, ew)
    (("n", "ewest</w>"), 6),
    (("low", "</w>"), 5),
    (("d", "est</w>"), 3),  # ties with (i, d) and (w, i)
]


def test_toy_pair_counts():
    counts = expect(split_words(TOY_WORDS))
    assert counts == {
        ("l", "o"): 7, ("o", "w"): 7, ("w", "</w>"): 5,
        ("w", "e"): 8, ("e", "r"): 2, ("r", "</w>"): 2,
        ("n", "e"): 6, ("e", "w"): 6, ("e", "s"): 9, ("s", "t"): 9, ("t", "</w>"): 9,
        ("w", "i"): 3, ("i", "d"): 3, ("d", "e"): 3,
    }  # fmt: skip


def test_toy_merges_step_by_step():
    vocab = split_words(TOY_WORDS)
    for expected_pair, expected_count in TOY_MERGES:
        counts = expect(vocab)
        pair = best_pair(counts)
        assert (pair, counts[pair]) == (expected_pair, expected_count)
        vocab = maximize(vocab, pair)
    assert vocab == {
        ("low</w>",): 5,
        ("low", "e", "r", "</w>"): 2,
        ("newest</w>",): 6,
        ("w", "i", "dest</w>"): 3,
    }


def test_learn_bpe_on_toy_words():
    assert learn_bpe(TOY_WORDS, 10) == [pair for pair, _ in TOY_MERGES]


def test_top_pairs_are_the_most_frequent_with_ties_alphabetical():
    counts = expect(split_words(TOY_WORDS))
    assert top_pairs(counts, 4) == [("e", "s"), ("s", "t"), ("t", "</w>"), ("w", "e")]
    assert top_pairs(counts, 1) == [best_pair(counts)]


def test_learn_bpe_top_1_is_the_classic_form_and_top_k_merges_k_pairs_per_count():
    assert learn_bpe(TOY_WORDS, 10, top_k=1) == learn_bpe(TOY_WORDS, 10)
    merges = learn_bpe(TOY_WORDS, 10, top_k=3)
    # step 1 counts (e s), (s t), (t </w>) 9 times each: merging (e s) uses up (s t)
    assert merges[:2] == [("e", "s"), ("t", "</w>")]
    assert len(merges) == 10 and len(set(merges)) == 10
    with pytest.raises(ValueError, match="top_k must be at least 1, got 0"):
        learn_bpe(TOY_WORDS, 10, top_k=0)


def test_segment_splits_unseen_words_with_the_learned_merges():
    merges = learn_bpe(TOY_WORDS, 10)
    assert segment("lowest", merges) == ["low", "est</w>"]      # never seen, two known pieces
    assert segment("newest", merges) == ["newest</w>"]          # seen: one symbol
    assert segment("zoo", merges) == ["z", "o", "o", "</w>"]    # unseen characters stay single


def test_maximize_merges_left_to_right():
    assert maximize({("a", "a", "a", "</w>"): 1}, ("a", "a")) == {("aa", "a", "</w>"): 1}


def test_learn_bpe_stops_when_words_are_single_symbols():
    assert learn_bpe({"a": 1}, 5) == [("a", "</w>")]


def test_to_dict_round_trips_and_dispatches_on_the_format_tag():
    from models.tokenizers import tokenizer_from_dict

    char = CharTokenizer.from_text("hello world")
    bpe = BPETokenizer().train("hello hello world world " * 20, 270)
    for tok in (char, bpe):
        rebuilt = tokenizer_from_dict(tok.to_dict())
        assert type(rebuilt) is type(tok)
        assert rebuilt.encode("hello world") == tok.encode("hello world")
    with pytest.raises(ValueError, match="checkpoint.npz.*not a minigrad tokenizer"):
        tokenizer_from_dict({"format": "something-else"}, source="checkpoint.npz")


# --- the encoder's special tokens in both tokenizers ----------------------------------------

@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_encoder_special_tokens_are_single_ids_never_split(kind, tmp_path):
    text = "the cat [sat] on MASK the mat"
    if kind == "char":
        tok = CharTokenizer.from_text(text, special_tokens=ENCODER_SPECIAL_TOKENS)
    else:
        tok = BPETokenizer().train(text * 20, 300, special_tokens=ENCODER_SPECIAL_TOKENS)
    ids = tok.special_tokens
    assert sorted(ids) == sorted(ENCODER_SPECIAL_TOKENS)
    assert sorted(ids.values()) == list(range(tok.vocab_size - 4, tok.vocab_size))
    sample = "[CLS]the cat[MASK] [SEP][PAD][PAD]"
    encoded = tok.encode(sample)
    assert encoded[0] == ids["[CLS]"] and encoded[-2:] == [ids["[PAD]"]] * 2
    assert encoded.count(ids["[MASK]"]) == 1 and encoded.count(ids["[SEP]"]) == 1
    assert tok.decode(encoded) == sample
    # the characters of a special token, written otherwise, stay text
    assert not set(tok.encode("[sat] MASK")) & set(ids.values())
    path = tmp_path / "tok.json"
    tok.save(path)
    loaded = type(tok).load(path)
    assert loaded.special_tokens == ids and loaded.encode(sample) == encoded


def test_char_tokenizer_special_tokens_do_not_enter_the_characters():
    tok = CharTokenizer.from_text("ab[MASK]", special_tokens=["[MASK]"])
    assert tok.chars == ["a", "b"] and tok.vocab_size == 3
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("a[")
    assert "special_tokens" not in CharTokenizer.from_text("ab").to_dict()
