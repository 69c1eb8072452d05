"""What each layer of a transformer holds: lexical at the bottom, contextual at the top.

    python examples/train_gpt.py && python examples/train_mlm.py    # the two models
    python examples/layer_probes.py
    python examples/layer_probes.py --quick --gpt DIR/ckpt.npz --encoder DIR/ckpt.npz

For the trained GPT and the trained encoder, each layer's hidden states (forward with
output_hidden_states=True; layer 0 is the embeddings) on held-out windows of the corpus:

  self-sim  how alike one token's vectors are across contexts: the mean cosine between
            two occurrences of the same token, minus the mean cosine between two random
            tokens (vectors share a common direction; this removes it). High = the vector
            says which token it is; low = it says where the token is.
  token / prev / next
            the accuracy of a linear probe (a logistic regression trained with minigrad
            on other windows) that reads, from the vector at position t alone, the token
            at t, at t - 1, at t + 1 (classes: the most frequent tokens; the share of the
            most frequent one is printed as chance).
"""
import argparse
import os
import sys
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
from models.retrieval import normalize_rows  # noqa: E402

TARGETS = {"token": 0, "prev": -1, "next": 1}


class LinearProbe(Module):
    """Multinomial logistic regression: logits = x @ W + b."""

    def __init__(self, dim, classes):
        super().__init__()
        self.weight = Parameter(mg.zeros(dim, classes))
        self.bias = Parameter(mg.zeros(classes))

    def forward(self, x):
        return x @ self.weight + self.bias


def probe_accuracy(train_x, train_y, test_x, test_y, classes, steps, lr=0.05):
    """Train a LinearProbe on (train_x, train_y), full batch with Adam; test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6         # standardize each feature
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    probe = LinearProbe(train_x.shape[1], classes)
    optimizer = Adam(probe.parameters(), lr=lr)
    x, y = mg.tensor(train_x.astype(np.float32)), mg.tensor(train_y)
    for _ in range(steps):
        loss = F.cross_entropy(probe(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with mg.no_grad():
        guess = probe(mg.tensor(test_x.astype(np.float32))).numpy().argmax(-1)
    return float((guess == test_y).mean())


def self_similarity(vectors, tokens, rng, per_token=20, top=30, pairs=2000):
    """Mean cosine of two occurrences of one frequent token, minus that of random pairs."""
    v = normalize_rows(vectors)
    ids, counts = np.unique(tokens, return_counts=True)
    frequent = ids[np.argsort(-counts)[:top]]
    same = []
    for t in frequent:
        where = np.flatnonzero(tokens == t)
        if len(where) < 2:
            continue
        where = rng.choice(where, min(per_token, len(where)), replace=False)
        sims = v[where] @ v[where].T
        same.append(sims[np.triu_indices(len(where), 1)].mean())
    a, b = rng.integers(0, len(v), pairs), rng.integers(0, len(v), pairs)
    random_pairs = (v[a] * v[b]).sum(-1).mean()
    return float(np.mean(same) - random_pairs)


def layer_table(name, hidden_of, windows, real, rng, args):
    """Print and return rows [layer, self-sim, token, prev, next] for one model.

    hidden_of(windows) -> list of (B, T, C) arrays, one per layer; real (B, T) marks the
    positions to use (not padding or special tokens; both neighbours inside the window)."""
    layers = hidden_of(windows)
    B = len(windows)
    split = B // 2                                        # probe-train windows, probe-test
    rows, cols = np.nonzero(real)
    train, test = rows < split, rows >= split
    labels = {k: windows[rows, cols + d] for k, d in TARGETS.items()}
    frequent = np.argsort(-np.bincount(windows[real]))[:args.classes]
    chance = {}
    print(f"\n{name}: {len(layers) - 1} layers, {int(train.sum())} probe-train / "
          f"{int(test.sum())} probe-test positions, {len(frequent)} classes")
    print(f"  {'layer':>5} {'self-sim':>9} " + " ".join(f"{k:>6}" for k in TARGETS))
    table = []
    for layer, hidden in enumerate(layers):
        x = hidden[rows, cols]                            # (N, C)
        row = [layer, self_similarity(x, labels["token"], rng)]
        for key in TARGETS:
            y = labels[key]
            keep = np.isin(y, frequent)
            remap = {t: i for i, t in enumerate(frequent)}
            yy = np.array([remap.get(t, -1) for t in y])
            tr, te = train & keep, test & keep
            row.append(probe_accuracy(x[tr], yy[tr], x[te], yy[te], len(frequent),
                                      args.probe_steps))
            chance[key] = float(np.bincount(yy[te]).max() / te.sum())
        table.append(row)
        print(f"  {layer:>5} {row[1]:>9.3f} " + " ".join(f"{a:>6.1%}" for a in row[2:]),
              flush=True)
    print(f"  chance (most frequent class): " + ", ".join(f"{k} {v:.1%}"
                                                          for k, v in chance.items()))
    return table


def held_out_windows(tokenizer, sections, block_size, count, specials=None):
    stream = np.concatenate([mt.encode_text(tokenizer, s) for s in sections])
    if specials is None:                                  # the GPT: plain windows
        starts = np.linspace(0, len(stream) - block_size, count).astype(int)
        return np.stack([stream[s:s + block_size] for s in starts])
    return mt.val_windows(stream, block_size, specials, count)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpt", default="runs/gpt/ckpt.npz", help="a train_gpt.py checkpoint")
    p.add_argument("--encoder", default="runs/mlm/ckpt.npz", help="a train_mlm.py checkpoint")
    p.add_argument("--data", help="the text (default: the built-in corpus)")
    p.add_argument("--windows", type=int, default=160, help="held-out windows per model")
    p.add_argument("--classes", type=int, default=40,
                   help="probe classes: the most frequent tokens")
    p.add_argument("--probe-steps", type=int, default=150)
    p.add_argument("--quick", action="store_true", help="a short run (for tests)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.windows, args.probe_steps, args.classes = 24, 20, 10
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        gpt, gpt_tokenizer, _ = training.restore_model(args.gpt)
        encoder, encoder_tokenizer, _ = mt.restore_model(args.encoder)
        text = training.read_text(args.data)
    except (CheckpointError, training.DataError) as error:
        print(f"error: {error} (train the models with examples/train_gpt.py and "
              "examples/train_mlm.py)", file=sys.stderr)
        return 2
    gpt.eval()
    _, val_sections = mt.train_val_sections(mt.split_sections(text))
    rng = np.random.default_rng(args.seed)

    block = gpt.config.block_size
    windows = held_out_windows(gpt_tokenizer, val_sections, block, args.windows)
    real = np.zeros(windows.shape, dtype=bool)
    real[:, 1:-1] = True

    @mg.no_grad()
    def gpt_hidden(w):
        return [h.numpy() for h in gpt(mg.tensor(w), output_hidden_states=True)[2]]

    gpt_rows = layer_table(f"GPT ({type(gpt_tokenizer).__name__}, causal: sees only the "
                           "past)", gpt_hidden, windows, real, rng, args)

    specials = mt.Specials(encoder_tokenizer)
    block = encoder.config.block_size
    windows = held_out_windows(encoder_tokenizer, val_sections, block, args.windows, specials)
    real = ~np.isin(windows, specials.all)
    real[:, [0, -1]] = False
    real[:, 1:-1] &= ~np.isin(windows[:, :-2], [specials.pad]) & \
        ~np.isin(windows[:, 2:], [specials.pad])

    @mg.no_grad()
    def encoder_hidden(w):
        out = encoder.encoder(mg.tensor(w), output_hidden_states=True)[1]
        return [h.numpy() for h in out]

    encoder_rows = layer_table(f"encoder ({type(encoder_tokenizer).__name__}, "
                               "bidirectional, unmasked input)", encoder_hidden, windows, real,
                               rng, args)
    for name, rows in (("GPT", gpt_rows), ("encoder", encoder_rows)):
        first, last = rows[0], rows[-1]
        print(f"{name}: self-sim {first[1]:.2f} at the embeddings -> {last[1]:.2f} at the top; "
              f"prev-token probe {first[3]:.0%} -> {max(r[3] for r in rows):.0%} (best layer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
