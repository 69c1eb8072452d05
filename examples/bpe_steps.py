"""Byte-pair encoding, step by step.

Part 1 runs the teaching form of BPE on the toy vocabulary from Sennrich et
al. (2016) and prints each merge. Part 2 trains the fast byte-level
BPETokenizer on 100 KB of Python's documentation and tokenizes a sentence.

Run from the repository root:  python examples/bpe_steps.py
"""

import sys
from pathlib import Path

# Lets the example run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import default_corpus  # noqa: E402
from models.tokenizers import BPETokenizer, best_pair, expect, maximize, split_words  # noqa: E402


def show_vocab(vocab):
    """One line per word: its symbols separated by spaces, then its count."""
    for symbols, count in vocab.items():
        print(f"    {' '.join(symbols):<28} x{count}")


def teaching_form(word_counts, num_merges):
    vocab = split_words(word_counts)
    print("Start: every word is its characters plus </w>")
    show_vocab(vocab)
    for step in range(1, num_merges + 1):
        pair_counts = expect(vocab)  # E-like step: count adjacent pairs
        pair = best_pair(pair_counts)
        vocab = maximize(vocab, pair)  # M-like step: merge the winner everywhere
        print(f"\nMerge {step}: {pair[0]!r} + {pair[1]!r} (seen {pair_counts[pair]} times)")
        show_vocab(vocab)


def byte_level(sentence):
    text = default_corpus()[:100_000]
    tokenizer = BPETokenizer().train(text, vocab_size=512)
    print(f"Trained on {len(text):,} characters: {len(tokenizer.merges)} merges, "
          f"vocab size {tokenizer.vocab_size}")
    ids = tokenizer.encode(sentence)
    print(f"\nSentence: {sentence}")
    print(f"{len(sentence.encode('utf-8'))} bytes -> {len(ids)} tokens:")
    for token_id in ids:
        print(f"    {token_id:>5}  {tokenizer.token_bytes(token_id)!r}")
    decoded = tokenizer.decode(ids)
    print(f"Decoded: {decoded}")
    print("Round trip exact:", decoded == sentence)


if __name__ == "__main__":
    print("=== Part 1: the teaching form of BPE ===\n")
    teaching_form({"low": 5, "lower": 2, "newest": 6, "widest": 3}, num_merges=10)
    print("\n=== Part 2: byte-level BPE ===\n")
    # Emoji and accented letters are several bytes each; with no merges for
    # them they stay as single bytes, which still decode exactly.
    byte_level("The newest owl 🦉 sees the lowest café return value.<|endoftext|>")
