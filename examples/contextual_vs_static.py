"""Why a transformer's word vectors beat Word2Vec's: one vector per word vs one per use.

    python examples/train_mlm.py                  # first: the encoder (runs/mlm/ckpt.npz)
    python examples/contextual_vs_static.py       # then this
    python examples/contextual_vs_static.py --quick --checkpoint DIR/ckpt.npz

It trains a skip-gram Word2Vec with negative sampling (minigrad, on the same corpus) and
sets it next to the trained encoder, whose vector for a word is the mean of its tokens'
last hidden states at that occurrence. Three answers are printed:
1. the nearest neighbours of a few words under each (the encoder's word vector: the mean
   over its occurrences);
2. one word in two contexts: Word2Vec gives it one vector (cosine exactly 1), the encoder
   two (their cosine is printed);
3. a word with two senses ("set": the type, "a set of keys", and the verb, "is set to"):
   k-means with k = 2 on each model's vectors of its occurrences, and the clusters'
   purity against the sense (Word2Vec cannot do better than the majority sense).
"""
import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices (see train_mlm.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad.checkpoint import CheckpointError  # noqa: E402
from minigrad.nn import Module, Parameter  # noqa: E402
from minigrad.optim import Adam  # noqa: E402
from models import mlm_training as mt  # noqa: E402
from models import training  # noqa: E402
from models.retrieval import normalize_rows, words  # noqa: E402
from models.tokenizers import pretokenize  # noqa: E402

QUERY_WORDS = ["list", "string", "exception", "class", "return", "integer"]
SENSE_WORD = "set"
# the sense of an occurrence of "set", read off its neighbours (occurrences that match
# neither pattern are left out): the verb after an auxiliary, the noun/type otherwise
VERB_BEFORE = {"is", "are", "be", "been", "was", "were", "to", "can", "may", "not", "will",
               "must", "you", "also"}
NOUN_BEFORE = {"a", "the", "this", "each", "new", "empty", "frozen", "mutable", "that"}
NOUN_AFTER = {"of", "objects", "object", "type", "types", "and", "or", "comprehension",
              "display", "displays", "literal", "methods", "operations", "elements"}
TWO_CONTEXTS = ("Return a new set of unique elements from the list.",
                "The attribute is set to None when the object is created.")


class SkipGram(Module):
    """Word2Vec's skip-gram: a center vector per word, a context vector per word.

    The loss for a (center, context) pair and k sampled negative words is
    -log sigmoid(u_context . v_center) - sum_k log sigmoid(-u_negative_k . v_center).
    """

    def __init__(self, vocab_size, dim, generator):
        super().__init__()
        self.center = Parameter(mg.tensor(generator.uniform(-0.5 / dim, 0.5 / dim,
                                                            (vocab_size, dim))))
        self.context = Parameter(mg.zeros(vocab_size, dim))

    def forward(self, centers, contexts, negatives):
        v = F.embedding(self.center, centers)                      # (B, D)
        u = F.embedding(self.context, contexts)                    # (B, D)
        n = F.embedding(self.context, negatives)                   # (B, k, D)
        positive = (u * v).sum(axis=-1)                            # (B,)
        negative = (n * v.unsqueeze(1)).sum(axis=-1)               # (B, k)
        return -(log_sigmoid(positive).mean() + log_sigmoid(-negative).sum(axis=-1).mean())


def log_sigmoid(x):
    """log(sigmoid(x)), kept finite where sigmoid underflows."""
    return F.clip(F.sigmoid(x), 1e-7, 1.0).log()


def train_word2vec(corpus_words, vocab, args):
    """Center vectors (V, D) of a skip-gram trained on the word sequence."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.array([index[w] for w in corpus_words if w in index])
    counts = np.bincount(ids, minlength=len(vocab)).astype(np.float64)
    noise = counts ** 0.75
    noise /= noise.sum()          # negatives from the unigram distribution to the 3/4
    rng = np.random.default_rng(args.seed)
    mg.manual_seed(args.seed)
    model = SkipGram(len(vocab), args.dim, np.random.default_rng(args.seed))
    optimizer = Adam(model.parameters(), lr=args.w2v_lr)
    for step in range(args.w2v_steps):
        where = rng.integers(args.window, len(ids) - args.window, args.w2v_batch)
        offset = rng.integers(1, args.window + 1, args.w2v_batch) * rng.choice([-1, 1],
                                                                             args.w2v_batch)
        negatives = rng.choice(len(vocab), size=(args.w2v_batch, args.negatives), p=noise)
        loss = model(ids[where], ids[where + offset], negatives)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, args.w2v_steps // 4) == 0:
            print(f"  word2vec step {step + 1}/{args.w2v_steps}: loss {loss.item():.3f}",
                  flush=True)
    return model.center.numpy()


def word_occurrences(tokenizer, text, block_size):
    """Cut text into windows of whole pre-tokenized chunks; returns [(window ids,
    [(word, first token, last token + 1), ...])] for the chunks that are words."""
    inner = block_size - 2
    windows, ids, spans = [], [], []
    for chunk in pretokenize(text):
        chunk_ids = mt.encode_text(tokenizer, chunk).tolist()
        if len(ids) + len(chunk_ids) > inner:
            if ids:
                windows.append((np.array(ids), spans))
            ids, spans = [], []
            if len(chunk_ids) > inner:
                continue
        word = chunk.strip().lower()
        if re.fullmatch(r"[^\W\d_]+", word):
            spans.append((word, len(ids) + 1, len(ids) + 1 + len(chunk_ids)))  # +1: [CLS]
        ids.extend(chunk_ids)
    if ids:
        windows.append((np.array(ids), spans))
    return windows


@mg.no_grad()
def contextual_vectors(model, tokenizer, windows, batch_size=32):
    """[(word, vector)]: each word occurrence's mean last hidden state over its tokens."""
    specials = mt.Specials(tokenizer)
    out = []
    for start in range(0, len(windows), batch_size):
        part = windows[start:start + batch_size]
        idx = mt.wrap([ids for ids, _ in part], specials, model.config.block_size)
        hidden = model.encoder(mg.tensor(idx)).numpy()              # (b, T, C)
        for row, (_, spans) in enumerate(part):
            for word, a, b in spans:
                out.append((word, hidden[row, a:b].mean(axis=0)))
    return out


def nearest(vectors, names, query, k=5):
    """The k names whose rows are most cosine-similar to `query`'s row (itself left out)."""
    v = normalize_rows(vectors)
    i = names.index(query)
    similarity = v @ v[i]
    similarity[i] = -np.inf
    return [names[j] for j in np.argsort(-similarity)[:k]]


def kmeans_purity(vectors, labels, seed=0, restarts=10, iterations=50):
    """Purity of 2-means clusters of the (normalized) rows against binary labels: the
    fraction of rows whose label is their cluster's majority. Best of `restarts` runs
    (lowest within-cluster distance), so a lucky start is not needed."""
    x = normalize_rows(vectors)
    rng = np.random.default_rng(seed)
    best, best_cost = None, np.inf
    for _ in range(restarts):
        centers = x[rng.choice(len(x), 2, replace=False)]
        for _ in range(iterations):
            assign = ((x[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
            centers = np.stack([x[assign == c].mean(0) if (assign == c).any() else centers[c]
                                for c in range(2)])
        cost = ((x - centers[assign]) ** 2).sum()
        if cost < best_cost - 1e-12:
            best, best_cost = assign, cost
    labels = np.asarray(labels)
    hits = sum(np.bincount(labels[best == c], minlength=2).max() for c in range(2)
               if (best == c).any())
    return hits / len(labels)


def sense_of(before, after):
    if before in VERB_BEFORE:
        return 1
    if before in NOUN_BEFORE or after in NOUN_AFTER:
        return 0
    return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/mlm/ckpt.npz", help="a train_mlm.py checkpoint")
    p.add_argument("--data", help="the text (default: the built-in corpus, as train_mlm.py)")
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--dim", type=int, default=64, help="Word2Vec vector size")
    p.add_argument("--window", type=int, default=3)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--w2v-steps", type=int, default=1500)
    p.add_argument("--w2v-batch", type=int, default=1024)
    p.add_argument("--w2v-lr", type=float, default=0.01)
    p.add_argument("--windows", type=int, default=400, help="encoder windows of text to read")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.w2v_steps, args.windows = 40, 60
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        model, tokenizer, _ = mt.restore_model(args.checkpoint)
        text = training.read_text(args.data)
    except (CheckpointError, training.DataError) as error:
        print(f"error: {error} (train one with examples/train_mlm.py)", file=sys.stderr)
        return 2
    corpus_words = words(text)
    counts = Counter(corpus_words)
    vocab = sorted(w for w, n in counts.items() if n >= args.min_count)
    print(f"Word2Vec (skip-gram, negative sampling): {len(vocab)} words seen >= "
          f"{args.min_count} times, dimension {args.dim}, {args.w2v_steps} steps")
    w2v = train_word2vec(corpus_words, vocab, args)

    windows = word_occurrences(tokenizer, text, model.config.block_size)
    step = max(1, len(windows) // args.windows)
    sample = windows[::step][:args.windows]
    occurrences = contextual_vectors(model, tokenizer, sample)
    sums, seen = {}, Counter()
    for word, vector in occurrences:
        sums[word] = sums.get(word, 0) + vector
        seen[word] += 1
    enc_words = sorted(w for w in sums if seen[w] >= 2 and w in set(vocab))
    enc_vectors = np.stack([sums[w] / seen[w] for w in enc_words])
    print(f"encoder: {len(occurrences)} word occurrences in {len(sample)} windows, "
          f"{len(enc_words)} words seen twice or more")

    print("\n1. nearest neighbours (cosine)")
    w2v_rows = np.stack([w2v[vocab.index(w)] for w in enc_words])
    for word in QUERY_WORDS:
        if word not in enc_words:
            continue
        print(f"  {word:>10}  word2vec: {', '.join(nearest(w2v_rows, enc_words, word))}")
        print(f"  {'':>10}  encoder:  {', '.join(nearest(enc_vectors, enc_words, word))}")

    print(f"\n2. '{SENSE_WORD}' in two contexts")
    pair = []
    for sentence in TWO_CONTEXTS:
        found = [v for w, v in contextual_vectors(model, tokenizer,
                                                  word_occurrences(tokenizer, sentence,
                                                                   model.config.block_size))
                 if w == SENSE_WORD]
        pair.append(found[0])
        print(f"  {sentence!r}")
    a, b = normalize_rows(np.stack(pair))
    w = w2v[vocab.index(SENSE_WORD)]
    print(f"  word2vec cosine: {float(normalize_rows(w) @ normalize_rows(w)):.3f} "
          f"(one vector per word, whatever the context)")
    print(f"  encoder cosine:  {float(a @ b):.3f}")

    print(f"\n3. the two senses of '{SENSE_WORD}' (k-means, k = 2, purity)")
    sense_vectors, senses = [], []
    for ids, spans in windows:
        for k, (word, s, e) in enumerate(spans):
            if word != SENSE_WORD:
                continue
            before = spans[k - 1][0] if k > 0 else ""
            after = spans[k + 1][0] if k + 1 < len(spans) else ""
            sense = sense_of(before, after)
            if sense is not None:
                sense_vectors.append((ids, s, e))
                senses.append(sense)
    if len(set(senses)) < 2:
        print("  too few labelled occurrences in this text")
        return 0
    specials = mt.Specials(tokenizer)
    with mg.no_grad():
        idx = mt.wrap([ids for ids, _, _ in sense_vectors], specials, model.config.block_size)
        hidden = model.encoder(mg.tensor(idx)).numpy()
    enc = np.stack([hidden[r, s:e].mean(0) for r, (_, s, e) in enumerate(sense_vectors)])
    senses = np.array(senses)
    majority = max(np.mean(senses), 1 - np.mean(senses))
    print(f"  {len(senses)} occurrences: {int((senses == 0).sum())} the noun/type "
          f"('a set of'), {int((senses == 1).sum())} the verb ('is set to')")
    print(f"  word2vec purity: {majority:.2f} (all occurrences share one vector: the "
          "majority sense)")
    print(f"  encoder purity:  {kmeans_purity(enc, senses, seed=args.seed):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
