"""What examples/train_mlm.py and examples/embed.py need around the encoder: the corpus
cut into sections, masked batches, the count baselines, document crops and windows,
and checkpoints that resume exactly.

Held-out text: every `val_every`-th section (by position in the corpus) is kept out
of training. Validation MLM loss and accuracy are measured on those sections, and so is
retrieval (chunks of one held-out section are relevant to each other).
"""
import re
from dataclasses import asdict

import numpy as np

import minigrad as mg
from minigrad.checkpoint import CheckpointError, load_arrays, save_arrays

from .bert import IGNORE_INDEX, BertForMaskedLM, EncoderConfig, mask_tokens, mean_pool, cls_pool
from .tokenizers import (DEFAULT_SPECIAL_TOKENS, ENCODER_SPECIAL_TOKENS, BPETokenizer,
                         CharTokenizer, tokenizer_from_dict)
from .training import DataError

CHECKPOINT_KIND = "minigrad-mlm-training"
SPECIAL_TOKENS = DEFAULT_SPECIAL_TOKENS + ENCODER_SPECIAL_TOKENS

# a heading: a line of text, then a line of one repeated mark (reStructuredText's style)
_UNDERLINE_RE = re.compile(r"([=\-*~^#])\1{2,}")


# --- sections --------------------------------------------------------------------------

def split_sections(text, min_sections=10, paragraphs_per_section=8):
    """Cut text into sections at its headings (a line underlined with ===, ---, ***, ...).

    A section whose text is contained in another one is dropped (Python's topics repeat
    some subsections inside bigger ones; held-out text must not be in the training text).
    Text with fewer than `min_sections` headings is cut into groups of paragraphs instead.
    """
    lines = text.split("\n")
    heads = [i for i in range(len(lines) - 1)
             if lines[i].strip() and _UNDERLINE_RE.fullmatch(lines[i + 1].strip())
             and abs(len(lines[i + 1].strip()) - len(lines[i].strip())) <= 1]
    if len(heads) >= min_sections:
        bounds = [0] + heads[1:] + [len(lines)] if heads[0] > 0 else heads + [len(lines)]
        sections = ["\n".join(lines[a:b]).strip() for a, b in zip(bounds, bounds[1:])]
    else:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        sections = ["\n\n".join(paragraphs[i:i + paragraphs_per_section])
                    for i in range(0, len(paragraphs), paragraphs_per_section)]
    sections = [s for s in sections if s]
    by_length = sorted(range(len(sections)), key=lambda i: -len(sections[i]))
    kept = []
    for i in by_length:
        if not any(sections[i] in sections[j] for j in kept):
            kept.append(i)
    return [sections[i] for i in sorted(kept)]


def train_val_sections(sections, val_every=10):
    """(train, val): every val_every-th section is held out."""
    if len(sections) < 2:
        raise DataError(f"the text has {len(sections)} section(s); at least 2 are needed "
                        "to hold one out (add headings or blank lines between paragraphs)")
    val_every = min(val_every, len(sections))
    val = [s for i, s in enumerate(sections) if i % val_every == val_every - 1]
    train = [s for i, s in enumerate(sections) if i % val_every != val_every - 1]
    return train, val


def build_tokenizer(kind, text, bpe_vocab_size=1024):
    """A tokenizer with the encoder's special tokens ([PAD] [CLS] [SEP] [MASK])."""
    if kind == "bpe":
        return BPETokenizer().train(text, bpe_vocab_size, special_tokens=SPECIAL_TOKENS)
    if kind == "char":
        return CharTokenizer.from_text(text, special_tokens=SPECIAL_TOKENS)
    raise ValueError(f"unknown tokenizer {kind!r}: use 'bpe' or 'char'")


def encode_text(tokenizer, text):
    """Ids of plain text: special-token strings in it stay text (for BPE), so a document
    that happens to contain "[MASK]" cannot inject a control token."""
    try:
        if isinstance(tokenizer, BPETokenizer):
            return np.asarray(tokenizer.encode(text, allowed_special="none"), dtype=np.int64)
        return np.asarray(tokenizer.encode(text), dtype=np.int64)
    except ValueError as error:
        raise DataError(f"the text cannot be encoded with this tokenizer: {error}") from None


class Specials:
    """The ids of the encoder's special tokens in one tokenizer."""

    def __init__(self, tokenizer):
        ids = tokenizer.special_tokens
        missing = [t for t in ENCODER_SPECIAL_TOKENS if t not in ids]
        if missing:
            raise DataError(f"the tokenizer lacks the encoder's special tokens {missing}")
        self.pad, self.cls, self.sep, self.mask = (ids[t] for t in ENCODER_SPECIAL_TOKENS)
        self.all = sorted(ids.values())


# --- masked-LM batches -------------------------------------------------------------------

def wrap(content, specials, length):
    """[CLS] content [SEP] then [PAD]s up to `length`: (B, length) from a list of id arrays."""
    out = np.full((len(content), length), specials.pad, dtype=np.int64)
    for row, ids in enumerate(content):
        ids = ids[:length - 2]
        out[row, 0] = specials.cls
        out[row, 1:len(ids) + 1] = ids
        out[row, len(ids) + 1] = specials.sep
    return out


def mlm_windows(stream, block_size, batch_size, rng, specials):
    """Random windows of the training stream, each [CLS] + block_size - 2 tokens + [SEP]."""
    inner = block_size - 2
    starts = rng.integers(0, len(stream) - inner + 1, size=batch_size)
    return wrap([stream[s:s + inner] for s in starts], specials, block_size)


def val_windows(stream, block_size, specials, limit=None):
    """Consecutive, non-overlapping windows covering the held-out stream, in order."""
    inner = block_size - 2
    count = max(1, len(stream) // inner)
    if limit is not None:
        count = min(count, limit)
    return wrap([stream[i * inner:(i + 1) * inner] for i in range(count)], specials, block_size)


def masked_batch(windows, specials, vocab_size, rng, mlm_probability=0.15):
    """(inputs, labels, is_mask): mask_tokens on the windows; is_mask marks the positions
    that became [MASK] (where accuracy is measured)."""
    inputs, labels = mask_tokens(windows, specials.all, specials.mask, vocab_size, rng,
                                 mlm_probability)
    is_mask = (labels != IGNORE_INDEX) & (inputs == specials.mask)
    return inputs, labels, is_mask


class CountBaselines:
    """Two guesses that use no model, from counts over the training windows.

    unigram: every masked token is the training distribution of tokens.
    neighbours: the token most often seen between this left and right neighbour in
      training (the true neighbours, unmasked: a generous baseline), with the
      probability (count(l, w, r) + a p_unigram(w)) / (count(l, ., r) + a); an unseen
      pair falls back to the unigram guess.
    """

    def __init__(self, stream, vocab_size, specials, smoothing=1.0):
        stream = np.asarray(stream, dtype=np.int64)
        counts = np.bincount(stream, minlength=vocab_size).astype(np.float64) + 0.5
        for s in specials.all:   # special tokens are never a label
            counts[s] = 0.0
        self.vocab_size, self.smoothing = vocab_size, smoothing
        self.p_unigram = counts / counts.sum()
        self.top_unigram = int(np.argmax(self.p_unigram))
        V = vocab_size
        triples = (stream[:-2] * V + stream[2:]) * V + stream[1:-1]   # (left, right, middle)
        keys, n = np.unique(triples, return_counts=True)
        self.triple_keys, self.triple_counts = keys, n
        pairs, first = np.unique(keys // V, return_index=True)
        totals = np.add.reduceat(n, first)
        # the most frequent middle for each pair: the first of the pair's run after sorting
        order = np.lexsort((-n, keys // V))
        best_first = np.searchsorted(keys[order] // V, pairs)
        self.pairs, self.pair_totals = pairs, totals
        self.pair_best = keys[order][best_first] % V

    def scores(self, windows, labels, is_mask):
        """{name: (loss over all labelled positions, accuracy at is_mask)} for both."""
        rows, cols = np.nonzero(labels != IGNORE_INDEX)
        target = labels[rows, cols]
        left, right = windows[rows, cols - 1], windows[rows, cols + 1]   # [CLS]/[SEP] at ends
        at_mask = is_mask[rows, cols]
        V, a = self.vocab_size, self.smoothing
        p_uni = self.p_unigram[target]
        pair = left * V + right
        where = np.searchsorted(self.pairs, pair)
        where = np.minimum(where, len(self.pairs) - 1)
        seen = self.pairs[where] == pair
        total = np.where(seen, self.pair_totals[where], 0)
        key = pair * V + target
        spot = np.minimum(np.searchsorted(self.triple_keys, key), len(self.triple_keys) - 1)
        count = np.where(self.triple_keys[spot] == key, self.triple_counts[spot], 0)
        p_nb = (count + a * p_uni) / (total + a)
        guess_nb = np.where(seen, self.pair_best[where], self.top_unigram)

        def acc(guess):
            return float((guess == target)[at_mask].mean()) if at_mask.any() else float("nan")
        top = np.full_like(target, self.top_unigram)
        return {"unigram": (float(-np.log(p_uni).mean()), acc(top)),
                "neighbours": (float(-np.log(p_nb).mean()), acc(guess_nb))}


@mg.no_grad()
def evaluate_mlm(model, inputs, labels, is_mask, batch_size=64, device="cpu"):
    """(mean loss over the labelled positions, accuracy at the [MASK]ed ones), eval mode."""
    was_training = model.training
    model.eval()
    total_loss, total_count, hits, mask_count = 0.0, 0, 0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
        picked = y != IGNORE_INDEX
        if not picked.any():
            continue
        logits, loss = model(mg.tensor(x, device=device), y)
        count = int(picked.sum())
        total_loss += loss.item() * count
        total_count += count
        guess = logits.numpy().argmax(axis=-1)                     # (M,)
        at_mask = is_mask[start:start + batch_size][picked]        # (M,) in the same order
        hits += int((guess == y[picked])[at_mask].sum())
        mask_count += int(at_mask.sum())
    model.train(was_training)
    return total_loss / max(total_count, 1), hits / max(mask_count, 1)


# --- documents: crops, windows, embeddings ------------------------------------------------

def random_crops(documents, indices, crop_tokens, rng, min_fraction=0.5):
    """Two independent random crops of each chosen document (arrays of ids); each crop
    is between min_fraction * crop_tokens and crop_tokens long (shorter documents: whole)."""
    first, second = [], []
    for i in indices:
        ids = documents[i]
        for out in (first, second):
            longest = min(crop_tokens, len(ids))
            length = int(rng.integers(max(1, int(longest * min_fraction)), longest + 1))
            start = int(rng.integers(0, len(ids) - length + 1))
            out.append(ids[start:start + length])
    return first, second


def document_windows(ids, block_size):
    """Cut one document's ids into consecutive pieces that fit a block with [CLS] and
    [SEP] (at least one piece, possibly empty)."""
    inner = block_size - 2
    return [ids[i:i + inner] for i in range(0, max(len(ids), 1), inner)]


def pool(hidden, padding, pooling):
    if pooling == "mean":
        return mean_pool(hidden, padding)
    if pooling == "cls":
        return cls_pool(hidden)
    raise ValueError(f"unknown pooling {pooling!r}: use 'mean' or 'cls'")


def embed_ids(encoder, documents, specials, block_size, pooling="mean", batch_size=32,
              device="cpu", grad=False):
    """One vector per document (a list of id arrays): every window of a document is
    encoded, pooled, and the windows averaged (weighted by their token counts for mean
    pooling); rows L2-normalized. Returns a Tensor (N, C) (float32, on `device`)."""
    pieces, owner, weight = [], [], []
    for d, ids in enumerate(documents):
        for window in document_windows(np.asarray(ids, dtype=np.int64), block_size):
            pieces.append(window)
            owner.append(d)
            weight.append(len(window) + 2.0 if pooling == "mean" else 1.0)
    length = min(block_size, max(len(p) for p in pieces) + 2)
    pooled = []
    with mg.enable_grad() if grad else mg.no_grad():
        for start in range(0, len(pieces), batch_size):
            idx = wrap(pieces[start:start + batch_size], specials, length)
            hidden = encoder(mg.tensor(idx, device=device))           # (b, T, C)
            pooled.append(pool(hidden, idx == specials.pad, pooling))  # (b, C)
        pooled = mg.functional.concatenate(pooled, axis=0) if len(pooled) > 1 else pooled[0]
        owner, weight = np.asarray(owner), np.asarray(weight)
        combine = np.zeros((len(documents), len(pieces)), dtype=np.float32)
        combine[owner, np.arange(len(pieces))] = weight
        combine /= combine.sum(axis=1, keepdims=True)
        vectors = mg.tensor(combine, device=device) @ pooled                # (N, C)
        return vectors / ((vectors * vectors).sum(axis=-1, keepdims=True) + 1e-12).sqrt()


def retrieval_chunks(tokenizer, sections, chunk_tokens):
    """Held-out sections cut into chunks of chunk_tokens tokens: (chunk ids, chunk texts,
    labels = the section each came from). A last piece shorter than half a chunk joins
    the one before it."""
    chunks, texts, labels = [], [], []
    for label, section in enumerate(sections):
        ids = encode_text(tokenizer, section)
        cuts = list(range(0, len(ids), chunk_tokens))
        if len(cuts) > 1 and len(ids) - cuts[-1] < chunk_tokens // 2:
            cuts.pop()
        for a, b in zip(cuts, cuts[1:] + [len(ids)]):
            chunks.append(ids[a:b])
            texts.append(tokenizer.decode(ids[a:b].tolist()))
            labels.append(label)
    return chunks, texts, np.asarray(labels)


# --- checkpoints -------------------------------------------------------------------------

def save_checkpoint(path, model, optimizer, tokenizer, state):
    """Model, optimizer state, tokenizer and the run's state in one .npz, atomically."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update({f"optimizer.{k}": v for k, v in optimizer_state["state"].items()})
    metadata = {"kind": CHECKPOINT_KIND, "model_config": asdict(model.config),
                "tokenizer": tokenizer.to_dict(),
                "optimizer_groups": optimizer_state["param_groups"], **state}
    save_arrays(path, arrays, metadata)


def load_checkpoint(path):
    """(model arrays, optimizer arrays, metadata) of a train_mlm.py checkpoint."""
    arrays, metadata = load_arrays(path)
    if metadata.get("kind") != CHECKPOINT_KIND:
        kind = metadata.get("kind", "unknown")
        raise CheckpointError(f"{path}: not an encoder (train_mlm.py) checkpoint "
                              f"(its kind is {kind!r})")
    model = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    optimizer = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    return model, optimizer, metadata


def restore_model(path, device="cpu"):
    """(BertForMaskedLM in eval mode, tokenizer, metadata) from a train_mlm.py checkpoint."""
    model_arrays, _, metadata = load_checkpoint(path)
    try:
        config = EncoderConfig(**metadata["model_config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: the checkpoint's encoder config is invalid: "
                              f"{error}") from None
    tokenizer = tokenizer_from_dict(metadata["tokenizer"], source=str(path))
    model = BertForMaskedLM(config)
    try:
        model.load_state_dict(model_arrays)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return model.to(device).eval(), tokenizer, metadata
