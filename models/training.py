"""What a training script needs around the model: text in, batches out,
evaluation, and checkpoints that resume exactly.

Every random choice is derived from (seed, step), so a run resumed from a
checkpoint draws the same batches and dropout masks as one never stopped.
"""
from dataclasses import asdict
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.checkpoint import CheckpointError, load_arrays, save_arrays

from .data import default_corpus
from .gpt import GPT, GPTConfig, config_differences
from .tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_dict

CHECKPOINT_KIND = "minigrad-gpt-training"


class DataError(ValueError):
    """The training text cannot be used (missing, not UTF-8, too short, unknown characters)."""


# --- text and tokens ---------------------------------------------------------------

def read_text(path=None):
    """The corpus: the UTF-8 file at `path`, or the built-in default corpus."""
    if path is None:
        return default_corpus()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist (or is not a file)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"data file {str(path)!r} is not UTF-8 text: byte {error.start} "
                        f"is {raw[error.start]:#04x}; convert it to UTF-8 first") from None
    if not text:
        raise DataError(f"data file {str(path)!r} is empty")
    return text


def build_tokenizer(kind, text, bpe_vocab_size=512):
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "bpe":
        return BPETokenizer().train(text, bpe_vocab_size)
    raise ValueError(f"unknown tokenizer {kind!r}: use 'char' or 'bpe'")


def tokenizer_kind(tokenizer):
    """'char' or 'bpe', as the --tokenizer flag names it."""
    return "bpe" if isinstance(tokenizer, BPETokenizer) else "char"


def encode(tokenizer, text):
    """Token ids as an int64 array; a clear error for characters the tokenizer lacks."""
    try:
        return np.asarray(tokenizer.encode(text), dtype=np.int64)
    except ValueError as error:
        raise DataError(f"the text cannot be encoded with this tokenizer: {error}") from None


def split_tokens(tokens, block_size, val_fraction=0.1):
    """First 90% for training, last 10% for validation; each must hold one block + 1."""
    cut = int(len(tokens) * (1 - val_fraction))
    train, val = tokens[:cut], tokens[cut:]
    needed = block_size + 1
    if len(val) < needed:
        raise DataError(
            f"the corpus is too short: {len(tokens)} tokens give {len(val)} validation tokens, "
            f"but one block needs {needed} (block_size {block_size} + 1). Use more text or a "
            f"smaller --block-size (at most {max(1, len(val) - 1)}).")
    return train, val


def get_batch(tokens, block_size, batch_size, rng):
    """Random windows: x = tokens[i:i+T], y = tokens[i+1:i+T+1] (the next token)."""
    starts = rng.integers(0, len(tokens) - block_size, size=batch_size)
    offsets = np.arange(block_size)
    x = tokens[starts[:, None] + offsets]            # (B, T)
    y = tokens[starts[:, None] + offsets + 1]        # (B, T)
    return x, y


def batch_rng(seed, step, stream=0):
    """The random stream for one step: the same (seed, step) always draws the same."""
    return np.random.default_rng([seed, step, stream])


@mg.no_grad()
def estimate_loss(model, tokens, block_size, batch_size, iters, seed, device="cpu",
                  ignore_index=-100, rows=None):
    """Mean loss over `iters` random batches, in eval mode (no dropout); target ids equal to
    ignore_index count for nothing (nanoGPT marks padding with -1).

    rows: a slice of each batch to use (a data-parallel rank's share), or all of it.
    """
    was_training = model.training
    model.eval()
    rng = batch_rng(seed, 0, stream=1)
    losses = []
    for _ in range(iters):
        x, y = get_batch(tokens, block_size, batch_size, rng)
        if rows is not None:
            x, y = x[rows], y[rows]
        _, loss = model(mg.tensor(x, device=device), mg.tensor(y, device=device),
                        ignore_index=ignore_index)
        losses.append(loss.item())
    model.train(was_training)
    return float(np.mean(losses))


def unigram_loss(train_tokens, val_tokens, vocab_size):
    """Validation cross-entropy of the best context-free guess: token frequencies in train.

    A model that learned anything about context must beat this number.
    """
    counts = np.bincount(train_tokens, minlength=vocab_size).astype(np.float64) + 1.0  # add-one
    log_p = np.log(counts / counts.sum())
    return float(-log_p[val_tokens].mean())


def bigram_loss(train_tokens, val_tokens, vocab_size):
    """Validation cross-entropy of counted bigrams: p(b | a) = (count(a b) + 1) /
    (count(a) + vocab_size), from train. One token of context, nothing learned.

    Pairs are counted as sorted codes a * vocab_size + b, so memory grows with the
    number of distinct pairs seen, not with vocab_size squared.
    """
    train_tokens, val_tokens = np.asarray(train_tokens), np.asarray(val_tokens)
    if len(val_tokens) < 2:
        raise ValueError(f"bigram_loss needs at least 2 validation tokens, got {len(val_tokens)}")
    seen, pair_counts = np.unique(train_tokens[:-1].astype(np.int64) * vocab_size
                                  + train_tokens[1:], return_counts=True)
    first_counts = np.bincount(train_tokens[:-1], minlength=vocab_size).astype(np.float64)
    wanted = val_tokens[:-1].astype(np.int64) * vocab_size + val_tokens[1:]
    where = np.clip(np.searchsorted(seen, wanted), 0, max(len(seen) - 1, 0))
    found = pair_counts[where] * (seen[where] == wanted) if len(seen) else 0 * wanted
    p = (found + 1.0) / (first_counts[val_tokens[:-1]] + vocab_size)
    return float(-np.log(p).mean())


# --- checkpoints -------------------------------------------------------------------

def save_checkpoint(path, model, optimizer, tokenizer, step, extra=None):
    """Model, optimizer state, tokenizer and step in one .npz file, written atomically."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    arrays.update({f"optimizer.{k}": v for k, v in optimizer_state["state"].items()})
    metadata = {
        "kind": CHECKPOINT_KIND,
        "model_config": asdict(model.config),
        "tokenizer": tokenizer.to_dict(),
        "optimizer_groups": optimizer_state["param_groups"],
        "step": step,
        **(extra or {}),
    }
    save_arrays(path, arrays, metadata)


def load_checkpoint(path):
    """Read a training checkpoint: (model arrays, optimizer arrays, metadata)."""
    arrays, metadata = load_arrays(path)
    if metadata.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path}: a minigrad checkpoint, but not a GPT training checkpoint")
    model = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    optimizer = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    check_training_metadata(path, metadata, optimizer)
    return model, optimizer, metadata


def check_training_metadata(path, metadata, optimizer_arrays=None):
    """CheckpointError naming the first field of a training checkpoint that is not as saved
    (hand-edited or tampered): the step, the config, the tokenizer, optimizer groups, history."""
    def refuse(problem):
        raise CheckpointError(f"{path}: {problem}")

    step = metadata.get("step")
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0):
        refuse(f"the step must be an integer >= 0, got {step!r:.80}")
    config = metadata.get("model_config")
    if not isinstance(config, dict):
        refuse(f"the model config is missing or not a dict: {config!r:.80}")
    try:
        config = GPTConfig(**config)
    except (TypeError, ValueError) as error:
        refuse(f"the model config is invalid: {error}")
    try:
        tokenizer = tokenizer_from_dict(metadata.get("tokenizer"), source=str(path))
    except (ValueError, TypeError, RecursionError) as error:
        refuse(f"the tokenizer is invalid: {str(error)[:300]}")
    if tokenizer.vocab_size != config.vocab_size:
        refuse(f"the tokenizer has {tokenizer.vocab_size} tokens, but the model's vocabulary has "
               f"{config.vocab_size}; the checkpoint does not fit together")
    groups = metadata.get("optimizer_groups")
    if not (isinstance(groups, list) and all(isinstance(g, dict) for g in groups)):
        refuse(f"the optimizer groups must be a list of dicts, got {groups!r:.80}")
    history = metadata.get("history", [])
    if not (isinstance(history, list) and all(
            isinstance(entry, list) and len(entry) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry)
            for entry in history)):
        refuse("the history must be a list of [step, train loss, val loss]")
    for key, array in (optimizer_arrays or {}).items():
        index, _, name = key.partition(".")
        if not (index.isdigit() and name) or array.dtype.kind not in "fiub":
            refuse(f"optimizer state {key!r} (dtype {array.dtype}) is not one an optimizer writes")


def restore_model(path, device="cpu"):
    """(GPT, tokenizer, metadata) from a training checkpoint, ready to sample."""
    model_arrays, _, metadata = load_checkpoint(path)
    config = GPTConfig(**metadata["model_config"])
    tokenizer = tokenizer_from_dict(metadata["tokenizer"], source=str(path))
    model = GPT(config)
    try:
        model.load_state_dict(model_arrays)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: {error}") from None
    return model.to(device), tokenizer, metadata


def check_resumable(metadata, config, path):
    """Refuse to resume into a different model, saying what differs."""
    differences = config_differences(GPTConfig(**metadata["model_config"]), config, "now")
    if differences:
        raise CheckpointError(f"{path} was trained with a different model config ("
                              + "; ".join(differences) + "). Use the same flags, or a new --out-dir.")


@mg.no_grad()
def sample_texts(model, tokenizer, prompt, count, max_new_tokens, temperature=1.0, top_k=None,
                 seed=0, device="cpu"):
    """`count` continuations of the token ids `prompt`, decoded (prompt included)."""
    generator = mg.Generator(seed, device=device)
    model.eval()
    texts = []
    for _ in range(count):
        idx = mg.tensor([prompt], device=device)                       # (1, T)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                             generator=generator)                      # (1, T + new)
        texts.append(tokenizer.decode(out.numpy()[0].tolist()))
    return texts

