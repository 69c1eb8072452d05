"""The ladder from bigram counts to a GPT block, one rung at a time, each with a number.

    python examples/ladder.py            # about a minute of CPU time
    python examples/ladder.py --quick    # a few seconds: tiny budget, for CI

Read it as a notebook: each `# %%` cell runs in VS Code / Jupyter (jupytext) as is.
Every rung adds one idea to the one before and trains for the same short budget on
the same characters of the built-in corpus (Python's documentation); the table at
the end says what each idea bought, against two baselines that need no training:
    unigram: how often each character occurs (no context at all)
    bigram:  how often each character follows the one before (counted)
Then two experiments: a model without positions cannot tell the order of its
input (it is exactly permutation-equivariant), and a tanh RNN's gradient fades
over 32 positions where attention's does not.
"""
# %% [markdown]
# ## Setup: the data and the two baselines

# %%
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad.nn import Module  # noqa: E402
from minigrad.optim import AdamW  # noqa: E402
from models import training  # noqa: E402
from models.attention import MultiHeadAttention, SelfAttention  # noqa: E402
from models.gpt import MLP, GPTConfig  # noqa: E402
from models.layers import Embedding, LayerNorm, Linear  # noqa: E402
from models.tokenizers import CharTokenizer  # noqa: E402

FULL = dict(chars=300_000, steps=400, batch=32, block=32, n_embd=64, n_head=4, lr=1e-2,
            eval_batches=20)
QUICK = dict(chars=20_000, steps=12, batch=8, block=16, n_embd=16, n_head=2, lr=1e-2,
             eval_batches=2)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tiny budget (seconds), for CI")
    p.add_argument("--steps", type=int, default=None, help="training steps per rung")
    p.add_argument("--lr", type=float, default=None, help="AdamW's learning rate, every rung")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_data(chars):
    """Characters of the built-in corpus -> (tokenizer, train ids, validation ids)."""
    text = training.read_text()[:chars]
    tokenizer = CharTokenizer.from_text(text)
    ids = training.encode(tokenizer, text)
    train, val = training.split_tokens(ids, block_size=32)
    return tokenizer, train, val


# %% [markdown]
# ## The rungs: one model class, one idea switched on per rung
#
# Every rung predicts the next character from the characters so far (causal attention).
# `attention` is None (bigram: the current character only), "head" (one head of size C)
# or "multi" (n_head heads of size C / n_head); the rest are on or off.

# %%
RUNGS = [  # name, what it adds, its switches (each rung keeps the ones before)
    ("bigram, neural", "a V x V table of logits, learned by gradient descent", {}),
    ("one head", "tokens look back: one causal attention head", dict(attention="head")),
    ("multi-head", "several smaller heads look for different things", dict(attention="multi")),
    ("+ MLP", "each position thinks about what it gathered", dict(mlp=True)),
    ("+ residual", "x + f(x): each layer adds to the stream", dict(residual=True)),
    ("+ LayerNorm", "pre-LN: each layer sees normalized inputs", dict(layernorm=True)),
    ("+ positions", "learned position embeddings: order is visible", dict(positions=True)),
]


class Rung(Module):
    """One block's worth of model, with each idea of the ladder a switch."""

    def __init__(self, vocab_size, block_size, n_embd, n_head, attention=None, mlp=False,
                 residual=False, layernorm=False, positions=False, causal=True):
        super().__init__()
        self.attention, self.residual = attention, residual
        if attention is None:                      # the neural bigram: logits straight from a table
            self.table = Embedding(vocab_size, vocab_size)
            self.table.weight.data[...] = 0        # start from uniform, as the counts start from 1s
            return
        self.wte = Embedding(vocab_size, n_embd)
        self.wpe = Embedding(block_size, n_embd) if positions else None
        if attention == "head":
            self.attn = SelfAttention(n_embd, n_embd, causal=causal)
        else:
            self.attn = MultiHeadAttention(n_embd, n_head, causal=causal)
        config = GPTConfig(block_size, vocab_size, n_layer=1, n_head=n_head, n_embd=n_embd)
        self.mlp = MLP(config) if mlp else None
        self.ln_1 = LayerNorm(n_embd) if layernorm else None
        self.ln_2 = LayerNorm(n_embd) if layernorm and mlp else None
        self.ln_f = LayerNorm(n_embd) if layernorm else None
        self.lm_head = Linear(n_embd, vocab_size)

    def forward(self, idx):
        """idx (B, T) token ids -> logits (B, T, vocab_size)."""
        if self.attention is None:
            return self.table(idx)                                     # (B, T, V)
        x = self.wte(idx)                                              # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(mg.arange(idx.shape[1]))                  # (B, T, C)
        x = self._add(x, self.attn, self.ln_1)
        if self.mlp is not None:
            x = self._add(x, self.mlp, self.ln_2)
        if self.ln_f is not None:
            x = self.ln_f(x)
        return self.lm_head(x)                                         # (B, T, V)

    def _add(self, x, layer, norm):
        """layer(x), or x + layer(x) with a residual; pre-LN when norm is given."""
        out = layer(x if norm is None else norm(x))                    # (B, T, C)
        return x + out if self.residual else out


def loss_of(model, x, y):
    logits = model(mg.tensor(x))                                       # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), mg.tensor(y.reshape(-1)))


@mg.no_grad()
def validation_loss(model, val, settings, seed):
    rng = training.batch_rng(seed, 0, stream=1)                       # the same batches for all
    losses = [loss_of(model, *training.get_batch(val, settings["block"], settings["batch"], rng))
              .item() for _ in range(settings["eval_batches"])]
    return float(np.mean(losses))


def train_rung(switches, vocab_size, train, val, settings, seed):
    """The same budget for every rung: the same steps, batches, learning rate and seed."""
    mg.manual_seed(seed)
    model = Rung(vocab_size, settings["block"], settings["n_embd"], settings["n_head"], **switches)
    optimizer = AdamW(model.parameters(), lr=settings["lr"], weight_decay=0.0)
    for step in range(settings["steps"]):
        x, y = training.get_batch(train, settings["block"], settings["batch"],
                                  training.batch_rng(seed, step))
        loss = loss_of(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, validation_loss(model, val, settings, seed)


def climb(settings, seed):
    tokenizer, train, val = load_data(settings["chars"])
    V = tokenizer.vocab_size
    unigram = training.unigram_loss(train, val, V)
    bigram = training.bigram_loss(train, val, V)
    print(f"data: {len(train):,} train / {len(val):,} validation characters, vocabulary {V}")
    print(f"budget per rung: {settings['steps']} AdamW steps of {settings['batch']} x "
          f"{settings['block']} characters, lr {settings['lr']}, n_embd {settings['n_embd']}, "
          f"{settings['n_head']} heads\n")
    rows = [("unigram counts", "character frequencies, no context", unigram, 0),
            ("bigram counts", "how often b follows a, counted", bigram, 0)]
    switches = {}
    for name, idea, more in RUNGS:
        switches = {**switches, **more}
        began = time.perf_counter()
        model, loss = train_rung(switches, V, train, val, settings, seed)
        rows.append((name, idea, loss, model.num_parameters()))
        print(f"  trained {name:<15} val loss {loss:.3f}  ({time.perf_counter() - began:.1f} s)")
    print_table(rows, unigram, bigram)
    print("""
Reading the table. The neural bigram learns the counts' table by gradient descent (the
budget leaves it a little short). Without positions, attention sees its context as a bag
of characters: it cannot tell which one came last, so the rungs up to + LayerNorm beat
the bigram counts only by a little; each idea still helps. Positions let the model find
the previous characters, and the loss drops the most at that rung.""")
    return rows, model


def print_table(rows, unigram, bigram):
    print(f"\n| {'rung':<15} | {'what it adds':<52} | {'params':>7} | {'val loss':>8} "
          f"| {'vs unigram':>10} | {'vs bigram':>9} |")
    print(f"|{'-' * 17}|{'-' * 54}|{'-' * 9}|{'-' * 10}|{'-' * 12}|{'-' * 11}|")
    for name, idea, loss, params in rows:
        print(f"| {name:<15} | {idea:<52} | {params or '-':>7} | {loss:>8.3f} "
              f"| {loss - unigram:>+10.3f} | {loss - bigram:>+9.3f} |")


# %% [markdown]
# ## Without positions, order is invisible
#
# Take the "+ LayerNorm" rung (everything but positions) with attention over ALL tokens
# (not causal). Shuffle the input tokens: every output row is the same as before, just
# shuffled the same way. Attention sums over keys, and a sum does not care about order; every
# other layer works on one position at a time. Add position embeddings and this breaks.
# (The causal version has the same blindness: with one block, the output at position t
# does not change when the tokens before t are shuffled.)

# %%
def permutation_gap(model, idx, permutation):
    """max |model(idx[perm]) - model(idx)[perm]|: 0 (to float64 rounding) means the model
    is permutation-equivariant."""
    with mg.no_grad():
        out = model(mg.tensor(idx[None])).numpy()[0]                           # (T, V)
        shuffled = model(mg.tensor(idx[permutation][None])).numpy()[0]          # (T, V)
    return float(np.abs(shuffled - out[permutation]).max())


def float64(model):
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def equivariance(vocab_size, settings, seed):
    rng = np.random.default_rng(seed)
    T, C, nh = settings["block"], settings["n_embd"], settings["n_head"]
    idx = rng.integers(0, vocab_size, size=T)
    permutation = rng.permutation(T)
    everything = dict(attention="multi", mlp=True, residual=True, layernorm=True)
    print("\nPermutation test (float64, attention over all tokens, random init): "
          "max |f(shuffled x) - shuffled f(x)|")
    gaps = {}
    for label, positions in (("without positions", False), ("with positions", True)):
        mg.manual_seed(seed)
        model = float64(Rung(vocab_size, T, C, nh, causal=False, positions=positions,
                             **everything))
        gaps[label] = permutation_gap(model, idx, permutation)
        print(f"  {label:<18} {gaps[label]:.1e}")
    return gaps


# %% [markdown]
# ## Why RNNs struggle with long inputs: the gradient 32 positions back
#
# A tanh RNN carries everything in one state h_t = tanh(x_t Wx + h_{t-1} Wh + b), so the
# gradient from the last output back to x_{t-k} passes through k Jacobians
# diag(1 - h^2) Wh, and each of them shrinks it (tanh' <= 1, and Wh at init has spectral
# radius about 1). Attention reaches every earlier position in one step: the path from
# the last output to x_0 is as short as to x_31.

# %%
def gradient_reach(T, width, seed):
    """|d out_last / d x_t| for t = 0..T-1, for a tanh RNN and for one attention head (both
    at initialization, float64, the same inputs): the two columns of the table below."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, width))                                    # one sequence
    g = rng.normal(size=width)                                         # d L / d out_last

    x_t = mg.tensor(x[None], requires_grad=True)                       # (1, T, width)
    Wx = mg.tensor(rng.normal(size=(width, width)) / math.sqrt(width))
    Wh = mg.tensor(rng.normal(size=(width, width)) / math.sqrt(width))
    h = mg.zeros(1, width, dtype=np.float64)
    for t in range(T):                                                 # the recurrence
        h = (x_t[:, t] @ Wx + h @ Wh).tanh()                           # (1, width)
    (h[0] * mg.tensor(g)).sum().backward()
    rnn = np.linalg.norm(x_t.grad.numpy()[0], axis=1)                  # (T,)

    mg.manual_seed(seed)
    attention = float64(MultiHeadAttention(width, 1, causal=True))
    x_t = mg.tensor(x[None], requires_grad=True)
    (attention(x_t)[0, -1] * mg.tensor(g)).sum().backward()
    att = np.linalg.norm(x_t.grad.numpy()[0], axis=1)                  # (T,)
    return rnn, att


def show_reach(seed):
    T = 33                                                             # the last one, 32 back
    rnn, att = gradient_reach(T, 32, seed)
    print(f"\nGradient reaching back: |d out_{T - 1} / d x_t| for the last output of a sequence "
          f"of {T}")
    print(f"{'positions back':>15} {'tanh RNN':>12} {'attention':>12}")
    for back in (0, 1, 2, 4, 8, 16, 32):
        t = T - 1 - back
        print(f"{back:>15} {rnn[t]:>12.2e} {att[t]:>12.2e}")
    print(f"32 back / 0 back:  RNN {rnn[0] / rnn[-1]:.1e}, attention {att[0] / att[-1]:.1e}")
    return rnn, att


# %% [markdown]
# ## Run it all

# %%
def main(argv=None):
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.steps is not None:
        if args.steps < 1:
            raise SystemExit(f"error: --steps must be at least 1, got {args.steps}")
        settings["steps"] = args.steps
    if args.lr is not None:
        settings["lr"] = args.lr
    began = time.perf_counter()
    rows, _ = climb(settings, args.seed)
    equivariance(len({*training.read_text()[:settings["chars"]]}), settings, args.seed)
    show_reach(args.seed)
    print(f"\n(all in {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
