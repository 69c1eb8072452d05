"""Byte-pair encoding, step by step, with the numbers the course asks about.

    python examples/bpe_steps.py              # about half a minute on a 2-core CPU
    python examples/bpe_steps.py --top-k 3    # merge the 3 most frequent pairs per count
    python examples/bpe_steps.py --quick      # a few seconds, for CI

Part 1 runs the teaching form of BPE on the toy vocabulary of Sennrich et al.
(2016): each step prints the expect step's pair-count table, then the merge(s)
the maximize step makes. Part 2 splits words it never saw with those merges.
Part 3 times the naive trainer (recount every pair after every merge) against
the indexed one BPETokenizer uses, on the same text: the same merges, much
faster. Part 4 trains byte-level BPE on Python's documentation and shows the
pre-tokenizer's words beside BPE's tokens, then counts tokens per word on text
like the training text and on text unlike it: BPE's main disadvantage.

Run from the repository root:  python examples/bpe_steps.py
"""
import argparse
import sys
import time
from collections import Counter
from pathlib import Path

# Lets the example run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import default_corpus  # noqa: E402
from models.tokenizers import (  # noqa: E402
    NUM_BYTES,
    BPETokenizer,
    expect,
    learn_merges,
    maximize,
    merge_pair,
    pretokenize,
    segment,
    split_words,
    top_pairs,
)

TOY_WORDS = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
# Text unlike Python's documentation: German prose, then a chemistry sentence
OUT_OF_DOMAIN = ("Die Quantenmechanik beschreibt das Verhalten von Elektronen in Atomen. "
                 "Kaliumpermanganat oxidiert Ethanol zu Essigsäure; die Lösung färbt sich "
                 "braun, während Mangandioxid ausfällt.")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--merges", type=int, default=10, help="merges in Part 1")
    p.add_argument("--top-k", type=int, default=1,
                   help="pairs merged per expect step in Part 1 (1: the classic form)")
    p.add_argument("--quick", action="store_true", help="small texts: a few seconds, for CI")
    args = p.parse_args(argv)
    if args.top_k < 1 or args.merges < 1:
        p.error(f"--top-k and --merges must be at least 1, got {args.top_k} and {args.merges}")
    return args


# --- Part 1: the teaching form, one expect/maximize step at a time ----------------------

def show_vocab(vocab):
    """One line per word: its symbols separated by spaces, then its count."""
    for symbols, count in vocab.items():
        print(f"    {' '.join(symbols):<28} x{count}")


def show_pair_counts(pair_counts, chosen, rows=8):
    """The expect step's table: the most frequent pairs and their counts, chosen ones marked."""
    print(f"  expect: {len(pair_counts)} distinct adjacent pairs; the most frequent:")
    for pair in top_pairs(pair_counts, rows):
        mark = "  <- merge" if pair in chosen else ""
        print(f"    {pair[0]!r:>10} + {pair[1]!r:<10} {pair_counts[pair]:>3}{mark}")


def teaching_form(word_counts, num_merges, top_k):
    vocab = split_words(word_counts)
    print("Start: every word is its characters plus </w>")
    show_vocab(vocab)
    merges, step = [], 0
    while len(merges) < num_merges:
        pair_counts = expect(vocab)  # E-like step: count adjacent pairs
        if not pair_counts:
            print("\nEvery word is one symbol: nothing left to merge.")
            break
        step += 1
        chosen = top_pairs(pair_counts, min(top_k, num_merges - len(merges)))
        print(f"\nStep {step}")
        show_pair_counts(pair_counts, chosen)
        for pair in chosen:  # M-like step: merge the winner(s) everywhere
            if pair not in expect(vocab):
                print(f"  maximize: skip {pair[0]!r} + {pair[1]!r}: an earlier merge of this "
                      "step used it up")
                continue
            vocab = maximize(vocab, pair)
            merges.append(pair)
            print(f"  maximize: merge {len(merges)}: {pair[0]!r} + {pair[1]!r} "
                  f"(seen {pair_counts[pair]} times)")
        show_vocab(vocab)
    print(f"\n{len(merges)} merges in {step} expect steps (top-k = {top_k})")
    return merges


# --- Part 2: words it never saw ------------------------------------------------------------

def unseen_words(merges):
    print("Applying the learned merges, in the order they were learned, to new words:")
    for word, note in (("lowest", "never seen, but made of seen pieces"),
                       ("newer", "seen pieces again"),
                       ("slowly", "'s' and 'y' never occurred in training")):
        pieces = segment(word, merges)
        known = {symbol for symbols in split_words(TOY_WORDS) for symbol in symbols}
        unknown = [s for s in pieces if len(s) == 1 and s not in known]
        print(f"    {word:<8} -> {' | '.join(pieces):<28} ({note})")
        if unknown:
            print(f"             {', '.join(map(repr, unknown))}: not in the training alphabet; "
                  "character-level BPE needs an <unk> for them, byte-level BPE\n"
                  "             (Part 4) never does: every character is some bytes, and every "
                  "byte is a token.")


# --- Part 3: why BPETokenizer does not recount ------------------------------------------

def naive_merges(chunk_counts, num_merges):
    """BPE the direct way: after every merge, count every pair of every chunk again."""
    chunks = {tuple(chunk): count for chunk, count in chunk_counts.items()}
    merges = []
    while len(merges) < num_merges:
        pair_counts = Counter()
        for chunk, count in chunks.items():
            for pair in zip(chunk, chunk[1:]):
                pair_counts[pair] += count
        if not pair_counts:
            break
        pair = min(pair_counts, key=lambda p: (-pair_counts[p], p))  # ties as learn_merges
        new_id = NUM_BYTES + len(merges)
        merged = Counter()
        for chunk, count in chunks.items():
            merged[tuple(merge_pair(list(chunk), pair, new_id))] += count
        chunks = dict(merged)
        merges.append(pair)
    return merges


def timing(text, num_merges):
    chunk_counts = Counter(tuple(chunk.encode("utf-8")) for chunk in pretokenize(text))
    print(f"{len(text):,} characters -> {len(chunk_counts):,} distinct pre-tokenized chunks; "
          f"{num_merges} merges each way")
    began = time.process_time()
    naive = naive_merges(chunk_counts, num_merges)
    naive_s = time.process_time() - began
    began = time.process_time()
    indexed = learn_merges(chunk_counts, num_merges)
    indexed_s = time.process_time() - began
    print(f"    naive (recount all pairs after each merge): {naive_s:7.3f} s CPU")
    print(f"    indexed (learn_merges: update only the chunks that hold the pair, a heap for "
          f"the best): {indexed_s:7.3f} s CPU")
    print(f"    {naive_s / max(indexed_s, 1e-9):.1f}x faster; the same merges: {naive == indexed}")
    return naive == indexed


# --- Part 4: byte-level BPE, words vs tokens, in and out of domain -------------------------

def byte_level(corpus_chars, vocab_size):
    text = default_corpus()
    train, held_out = text[:corpus_chars], text[-20_000:]
    tokenizer = BPETokenizer().train(train, vocab_size=vocab_size)
    print(f"Trained on {len(train):,} characters of Python's documentation: "
          f"{len(tokenizer.merges)} merges, vocab size {tokenizer.vocab_size}")

    sentence = "The newest owl 🦉 sees the lowest café return value.<|endoftext|>"
    print(f"\nSentence: {sentence}")
    print("The rule-based pre-tokenizer splits it into words first (BPE never merges across "
          "them);\nthen BPE splits each word into tokens (· is a space; \\x.. a byte of a longer character):")
    for chunk in pretokenize(sentence.replace("<|endoftext|>", "")):
        pieces = [tokenizer.token_bytes(i) for i in tokenizer.encode(chunk)]
        shown = (piece.decode("utf-8", "backslashreplace").replace(" ", "·") for piece in pieces)
        print(f"    {chunk!r:<12} -> {' | '.join(shown)}")
    ids = tokenizer.encode(sentence)
    decoded = tokenizer.decode(ids)
    print(f"{len(sentence.encode('utf-8'))} bytes -> {len(ids)} tokens "
          "(<|endoftext|> is one special token); round trip exact:", decoded == sentence)

    print("\nTokens per word (words: split at spaces):")
    rows = []
    for label, sample in (("in domain: held-out Python documentation", held_out[:3000]),
                          ("out of domain: German and chemistry", OUT_OF_DOMAIN)):
        words = len(sample.split())
        tokens = len(tokenizer.encode(sample))
        rows.append(tokens / words)
        print(f"    {label:<42} {tokens:>5} tokens / {words:>4} words = {tokens / words:.2f}")
    print(f"Text unlike the training text costs {rows[1] / rows[0]:.1f}x the tokens per word: "
          "its words were never\nfrequent enough to be merged, so they fall apart into short "
          "pieces and bytes. The model then\nsees fewer words per context window and must learn "
          "them from fragments: BPE's vocabulary\nfits the text it was trained on.")
    return rows


if __name__ == "__main__":
    args = parse_args()
    print("=== Part 1: the teaching form of BPE ===\n")
    merges = teaching_form(TOY_WORDS, args.merges, args.top_k)
    print("\n=== Part 2: words it never saw ===\n")
    unseen_words(merges)
    print("\n=== Part 3: naive vs indexed training ===\n")
    timing(default_corpus()[:20_000 if args.quick else 200_000], 30 if args.quick else 200)
    print("\n=== Part 4: byte-level BPE ===\n")
    byte_level(20_000 if args.quick else 100_000, 300 if args.quick else 512)
