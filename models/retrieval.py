"""Document retrieval: rank by cosine similarity, score the ranking, and the baselines
an embedding model must beat (TF-IDF over words, random vectors). NumPy only.

The evaluation is leave-one-out: every item is a query once, every other item is a
candidate, and the relevant candidates are those with the query's label (its section).
precision@1: how often the most similar other item is relevant.
MRR (mean reciprocal rank): the mean of 1 / rank of the first relevant candidate.
A query with no relevant candidate (the only item with its label) is left out.
"""
import math
import re
from collections import Counter

import numpy

import minigrad
import minigrad.functional as F

_WORD_RE = re.compile(r"[^\W_]+")


def normalize_rows(vectors, eps=1e-12):
    """Each row divided by its Euclidean norm (NumPy)."""
    vectors = numpy.asarray(vectors, dtype=numpy.float64)
    return vectors / numpy.maximum(numpy.linalg.norm(vectors, axis=-1, keepdims=True), eps)


def first_relevant_ranks(vectors, labels):
    """For each query with a relevant candidate: the rank (1 = best) of the first relevant
    other item under cosine similarity. Returns (ranks, query_indices).

    Ties are broken against the query: a relevant candidate tied with an irrelevant one
    ranks below it, so a constant embedding scores no better than chance."""
    vectors = normalize_rows(vectors)
    labels = numpy.asarray(labels)
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise ValueError(f"need (N, C) vectors and N labels, got {vectors.shape} and "
                         f"{labels.shape}")
    similarity = vectors @ vectors.T                               # (N, N)
    ranks, queries = [], []
    for i in range(len(labels)):
        relevant = labels == labels[i]
        relevant[i] = False
        if not relevant.any():
            continue
        others = numpy.ones(len(labels), dtype=bool)
        others[i] = False
        best_relevant = similarity[i, relevant].max()
        # irrelevant candidates at least as similar as the best relevant one come first
        beaten_by = int((similarity[i, others & ~relevant] >= best_relevant).sum())
        ranks.append(beaten_by + 1)
        queries.append(i)
    return numpy.asarray(ranks), numpy.asarray(queries, dtype=numpy.int64)


def precision_at_1(vectors, labels):
    """The fraction of queries whose most similar other item shares their label."""
    ranks, _ = first_relevant_ranks(vectors, labels)
    return float((ranks == 1).mean()) if ranks.size else float("nan")


def mean_reciprocal_rank(vectors, labels):
    """The mean over queries of 1 / (rank of the first item sharing their label)."""
    ranks, _ = first_relevant_ranks(vectors, labels)
    return float((1.0 / ranks).mean()) if ranks.size else float("nan")


def words(text):
    """Lower-cased runs of letters and digits: the terms TF-IDF counts."""
    return _WORD_RE.findall(text.lower())


def tfidf_vectors(texts, min_df=1):
    """(N, V) L2-normalized TF-IDF rows, float64: tf = raw count, idf = log((1 + N) /
    (1 + df)) + 1 (smoothed, as scikit-learn's default). Terms in fewer than min_df
    texts are dropped."""
    counts = [Counter(words(text)) for text in texts]
    df = Counter(term for c in counts for term in c)
    vocabulary = sorted(term for term, n in df.items() if n >= min_df)
    column = {term: j for j, term in enumerate(vocabulary)}
    matrix = numpy.zeros((len(texts), len(vocabulary)))
    for i, c in enumerate(counts):
        for term, n in c.items():
            if term in column:
                matrix[i, column[term]] = n
    n_docs = len(texts)
    idf = numpy.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in vocabulary])
    return normalize_rows(matrix * idf)


def random_vectors(n, dim, seed=0):
    """(n, dim) Gaussian vectors: the chance-level baseline."""
    return normalize_rows(numpy.random.default_rng(seed).standard_normal((n, dim)))


def info_nce(a, b, temperature):
    """InfoNCE (the contrastive loss of CLIP and SimCSE) for a batch of pairs.

    a, b: (B, C) Tensors, row i of a and row i of b are two views of the same document.
    Both are L2-normalized; logits[i, j] = cos(a_i, b_j) / temperature; each row's
    correct class is its own pair (the diagonal), the batch's other documents are the
    negatives. Symmetric: the mean of the a->b and b->a cross-entropies.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"info_nce needs two (B, C) tensors of one shape, got "
                         f"{a.shape} and {b.shape}")
    a = a / ((a * a).sum(axis=-1, keepdims=True) + 1e-12).sqrt()
    b = b / ((b * b).sum(axis=-1, keepdims=True) + 1e-12).sqrt()
    logits = (a @ b.T) * (1.0 / temperature)                     # (B, B)
    targets = minigrad.Tensor(a.xp.arange(a.shape[0]))
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
