"""OpenAI's GPT-2 tokenizer, from its own files (encoder.json and vocab.bpe), as a BPETokenizer.

    tok = BPETokenizer.from_gpt2("encoder.json", "vocab.bpe")
    tok.encode("Hello world")   # [15496, 995], GPT-2's ids
    tok.encode("<|endoftext|>") # [50256]

It is minigrad's byte-level BPE with three of GPT-2's choices:

* Ids. GPT-2 numbers its 256 byte tokens in the order of its byte-to-unicode map
  (the printable bytes "!".."~", "¡".."¬", "®".."ÿ" first, then the rest), not by byte
  value; merge k of vocab.bpe makes token 256 + k; <|endoftext|> is 50256.
* The byte-to-unicode map itself: encoder.json and vocab.bpe write each byte as a
  printable character (the space byte as "Ġ", newline as "Ċ"), so the files are text.
* Pre-tokenization: GPT-2's pattern, which needs Unicode's letter and number classes
  (\\p{L}, \\p{N}). With the `regex` package installed it is used as written, which is
  how OpenAI's encoder.py ran it. Without it, the stdlib `re` gets the same classes
  spelled out from Python's `unicodedata` (built once, about a second), and the
  splits are the same wherever Python's Unicode version and regex's agree on a
  character's category; tests check every code point when both are present. (The
  stdlib's own shortcuts would not do: `[^\\W\\d_]` counts "²" as a letter, so "x²"
  would be one chunk, where GPT-2 splits it as "x", "²".)

encode(text) recognises "<|endoftext|>" in the text by default, as Hugging Face's
GPT2Tokenizer does; encode(text, allowed_special="none") encodes it as plain text, as
OpenAI's encoder.py does.
"""
import functools
import json
import re
import sys
import unicodedata
from pathlib import Path

from .tokenizers import (NUM_BYTES, BPETokenizer, _check_document, _document, _field,
                         _load_error, _special_splitter)

try:
    import regex
except ImportError:  # the stdlib fallback below gives the same splits (see the docstring)
    regex = None

END_OF_TEXT = "<|endoftext|>"
GPT2_FORMAT = "minigrad.gpt2-tokenizer"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Unicode's White_Space property, which regex's \s matches (the stdlib's \s also takes
# \x1c-\x1f, which are not White_Space)
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def bytes_to_unicode():
    """GPT-2's map from each byte value to a printable character.

    The 188 bytes that print as themselves (and are not a space) keep their
    character; the other 68 get the characters from U+0100 on, in byte order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(NUM_BYTES):
        if b not in mapping:
            mapping[b] = chr(NUM_BYTES + shifted)
            shifted += 1
    return mapping


@functools.lru_cache(maxsize=None)
def gpt2_chunk_re():
    """GPT-2's pre-tokenization pattern, compiled with regex, else spelled out for re."""
    if regex is not None:
        return regex.compile(GPT2_PATTERN)
    letters, numbers = _category_classes()
    space = _WHITE_SPACE
    pattern = (rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+"
               rf"| ?[^{space}{letters}{numbers}]+|[{space}]+(?![^{space}])|[{space}]+")
    return re.compile(pattern)


def _category_classes():
    """Character-class bodies (ranges) for Unicode categories L* and N*, from unicodedata."""
    ranges = {"L": [], "N": []}
    for code in range(sys.maxunicode + 1):
        major = unicodedata.category(chr(code))[0]
        if major in ranges:
            spans = ranges[major]
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])

    def body(spans):
        return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                       for a, b in spans)
    return body(ranges["L"]), body(ranges["N"])


class GPT2Tokenizer(BPETokenizer):
    """A BPETokenizer with GPT-2's ids, byte order and pre-tokenization (see the module doc).

    Build it with BPETokenizer.from_gpt2(encoder_json_path, vocab_bpe_path).
    """

    def __init__(self, encoder, merges, special_tokens=(END_OF_TEXT,), source="<encoder>"):
        """encoder: {token string: id} (encoder.json); merges: [(string, string)] in rank order
        (vocab.bpe); special_tokens: strings in the encoder that are never split. ValueError
        naming `source` if they do not fit together."""
        self._encoder = dict(encoder)
        self._bpe_merges = [tuple(pair) for pair in merges]
        self._special_tokens = list(special_tokens)
        self._set_gpt2_vocabulary(source)

    @property
    def _chunk_re(self):
        return gpt2_chunk_re()

    def _set_gpt2_vocabulary(self, source):
        encoder = self._encoder
        ids = sorted(encoder.values())
        if ids != list(range(len(ids))):
            raise _load_error(source, "the encoder's ids are not 0..N-1, each once")
        byte_decoder = {char: b for b, char in bytes_to_unicode().items()}
        token_bytes = [b""] * len(ids)
        for token, token_id in encoder.items():
            if token in self._special_tokens:
                token_bytes[token_id] = token.encode("utf-8")
                continue
            try:
                token_bytes[token_id] = bytes(byte_decoder[char] for char in token)
            except KeyError as error:
                raise _load_error(source, f"token {token!r} has {error.args[0]!r}, which is "
                                  "not in GPT-2's byte-to-unicode map") from None
        missing = [char for char in byte_decoder if char not in encoder]
        if missing:
            raise _load_error(source, f"the encoder lacks the byte tokens {missing[:5]}")
        byte_encoder = bytes_to_unicode()
        self._byte_ids = [encoder[byte_encoder[b]] for b in range(NUM_BYTES)]  # byte value -> id
        merge_ids, previous = {}, -1
        for rank, (first, second) in enumerate(self._bpe_merges):
            try:
                pair = (encoder[first], encoder[second])
                merged = encoder[first + second]
            except KeyError as error:
                raise _load_error(source, f"merge {rank} ({first} {second}) uses "
                                  f"{error.args[0]!r}, which is not in the encoder") from None
            if merged <= previous:  # encoding picks the lowest merged id, so ids must follow ranks
                raise _load_error(source, f"merge {rank} ({first} {second}) makes id {merged}, "
                                  f"not above merge {rank - 1}'s id {previous}")
            merge_ids[pair], previous = merged, merged
        unknown = [token for token in self._special_tokens if token not in encoder]
        if unknown:
            raise _load_error(source, f"special tokens not in the encoder: {unknown}")
        self._merges = list(merge_ids)
        self._merge_ids = merge_ids
        self._special_ids = {token: encoder[token] for token in self._special_tokens}
        self._token_bytes = token_bytes
        self._special_re = _special_splitter(self._special_tokens)
        self._cache = {}

    def _encode_chunk(self, chunk_bytes):
        return super()._encode_chunk([self._byte_ids[b] for b in chunk_bytes])

    def train(self, text, vocab_size, special_tokens=()):
        raise TypeError("a GPT-2 tokenizer's merges are fixed; train a BPETokenizer() instead")

    def to_dict(self):
        """encoder.json and vocab.bpe's contents, JSON-ready (what ``save`` writes)."""
        fields = {"encoder": self._encoder, "merges": [list(pair) for pair in self._bpe_merges],
                  "special_tokens": self._special_tokens}
        return _document(fields, GPT2_FORMAT)

    @classmethod
    def from_dict(cls, document, source="<dict>"):
        _check_document(document, GPT2_FORMAT, source)
        encoder = _field(document, "encoder", source)
        merges = _field(document, "merges", source)
        special_tokens = _field(document, "special_tokens", source)
        if not (isinstance(encoder, dict) and isinstance(merges, list)
                and isinstance(special_tokens, list)):
            raise _load_error(source, "'encoder' must be an object, 'merges' and "
                              "'special_tokens' lists")
        return cls(encoder, merges, special_tokens, source)


def read_encoder_json(path):
    """encoder.json: {token string: id}."""
    try:
        encoder = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _load_error(path, "no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _load_error(path, f"not a JSON file ({error})") from None
    if not (isinstance(encoder, dict) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in encoder.values())):
        raise _load_error(path, "expected a JSON object of token strings to integer ids")
    return encoder


def read_vocab_bpe(path):
    """vocab.bpe: a '#version' line, then one merge per line, 'first second', in rank order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise _load_error(path, "no such file") from None
    except UnicodeDecodeError as error:
        raise _load_error(path, f"not UTF-8 text ({error})") from None
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise _load_error(path, f"line {number} is {line!r}; expected two tokens "
                              "separated by one space")
        merges.append(tuple(parts))
    return merges


def load_gpt2_tokenizer(encoder_json_path, vocab_bpe_path):
    """GPT2Tokenizer from OpenAI's files (also in Hugging Face's gpt2 folder as vocab.json and
    merges.txt, the same contents)."""
    return GPT2Tokenizer(read_encoder_json(encoder_json_path), read_vocab_bpe(vocab_bpe_path),
                         source=f"{encoder_json_path} + {vocab_bpe_path}")
