"""Benchmark byte-level BPE: training speed, encoding speed and compression.

Trains a BPETokenizer on the default corpus (Python's documentation topics,
see models.data.default_corpus) to a vocabulary of 4096, then encodes the
whole corpus twice: once with an empty per-chunk cache ("cold") and once
with the cache filled ("warm").

Run from the repository root:  python benchmarks/bench_bpe.py [vocab_size]
"""

import sys
import time
from pathlib import Path

# Lets the benchmark run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import default_corpus  # noqa: E402
from models.tokenizers import BPETokenizer  # noqa: E402


def timed(function, *args, **kwargs):
    """Call function and return (its result, seconds taken)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main(vocab_size=4096):
    text = default_corpus()
    megabytes = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {megabytes:.3f} MB (Python {sys.version.split()[0]} pydoc topics)")

    tokenizer, train_seconds = timed(BPETokenizer().train, text, vocab_size)
    print(f"train to vocab {tokenizer.vocab_size}: {train_seconds:.2f} s "
          f"({megabytes / train_seconds:.2f} MB/s)")

    for label in ("cold cache", "warm cache"):
        ids, encode_seconds = timed(tokenizer.encode, text)
        print(f"encode, {label}: {encode_seconds:.2f} s ({megabytes / encode_seconds:.2f} MB/s)")

    print(f"tokens: {len(ids):,}; compression: {megabytes * 1e6 / len(ids):.2f} bytes/token")
    if tokenizer.decode(ids) != text:
        raise SystemExit("round trip failed")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
