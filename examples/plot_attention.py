"""Plot where a GPT looks: one heatmap of attention weights per layer and head.

    python examples/plot_attention.py --checkpoint runs/gpt/ckpt.npz --prompt "def main():"
    python examples/plot_attention.py --random-model --prompt "hello, attention"

The checkpoint is one written by examples/train_gpt.py. --random-model uses a
small untrained GPT instead (a character vocabulary made from the prompt), to
try the plot without training first.

In the picture, rows are layers and columns are heads. In each heatmap, row
i is token i looking back: its attention weights over tokens 0..i, which sum
to 1. The upper triangle is blank: a causal model never looks ahead. An
untrained model looks almost evenly at everything before it (row i is about
1/(i+1) across): the patterns you see after training were learned.

Needs matplotlib: pip install -e ".[viz]"  (or: pip install matplotlib).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad.checkpoint import CheckpointError  # noqa: E402
from models import run_safety, training  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from models.tokenizers import CharTokenizer  # noqa: E402

MATPLOTLIB_MISSING = ("plot_attention.py needs matplotlib, which is not installed.\n"
                      "Install it with:  pip install -e \".[viz]\"   (or: pip install matplotlib)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/gpt/ckpt.npz",
                   help="a checkpoint written by examples/train_gpt.py")
    p.add_argument("--random-model", action="store_true",
                   help="use a small untrained GPT instead of a checkpoint")
    p.add_argument("--prompt", default="def attention(q, k, v):")
    p.add_argument("--out", default="attention.png", help="the PNG file to write")
    p.add_argument("--seed", type=int, default=0, help="initialization of --random-model")
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {"seed": run_safety.non_negative_int})
    return args


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


# --- the model and its attention weights ------------------------------------------------

def random_model(prompt, seed):
    """A small untrained GPT whose vocabulary is the prompt's characters."""
    tokenizer = CharTokenizer.from_text(prompt)
    config = GPTConfig(block_size=max(len(prompt), 8), vocab_size=tokenizer.vocab_size,
                       n_layer=2, n_head=4, n_embd=32)
    return GPT(config, generator=mg.Generator(seed)), tokenizer


def attention_maps(model, ids):
    """Every layer's attention weights for one sequence: (n_layer, n_head, T, T).

    The GPT's forward does not return the weights, so each attention layer is
    asked to keep its latest ones (MultiHeadAttention.keep_weights), and put
    back as it was afterwards.
    """
    layers = [block.attn for block in model.transformer.h]
    for attention in layers:
        attention.keep_weights = True
    try:
        model.eval()
        with mg.no_grad():
            model(mg.tensor([ids]))                  # (1, T) token ids
        return np.stack([attention.last_weights.numpy()[0] for attention in layers])
    finally:
        for attention in layers:
            attention.keep_weights, attention.last_weights = False, None


def token_labels(tokenizer, ids):
    """Each token's text, with spaces and line breaks made visible."""
    visible = {" ": "\u2423", "\n": "\\n", "\t": "\\t"}
    return ["".join(visible.get(char, char) for char in tokenizer.decode([i])) for i in ids]


# --- the picture ------------------------------------------------------------------------

def plot_grid(maps, labels, path, title):
    """Save a (layers x heads) grid of heatmaps of `maps` (n_layer, n_head, T, T) as a PNG."""
    from matplotlib.figure import Figure  # a Figure, not pyplot: no window, no global state

    n_layer, n_head, T, _ = maps.shape
    cell = max(2.2, 0.25 * T)                        # inches per heatmap
    figure = Figure(figsize=(cell * n_head + 1.5, cell * n_layer + 0.8), layout="constrained")
    axes = figure.subplots(n_layer, n_head, squeeze=False)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # (T, T): never attended, left blank
    font = max(4, min(9, 160 // T))
    rotation = 90 if max(len(label) for label in labels) > 2 else 0  # upright single characters
    for layer in range(n_layer):
        for head in range(n_head):
            ax = axes[layer, head]
            image = ax.imshow(np.ma.masked_where(future, maps[layer, head]), vmin=0.0, vmax=1.0,
                              cmap="viridis")
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            ax.set_xticks(range(T), labels, fontsize=font, rotation=rotation)
            ax.set_yticks(range(T), labels, fontsize=font)
            if head == 0:
                ax.set_ylabel("token looking (query)", fontsize=8)
            if layer == n_layer - 1:
                ax.set_xlabel("token looked at (key)", fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120)


def plot_task_attention(model, task, path, title):
    """A toy task's trained model (models.toy_tasks) on one held-out problem: its attention
    as a grid of heatmaps in `path`; without matplotlib, a note saying how to get it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f'(no picture: matplotlib is not installed; pip install -e ".[viz]" to get {path})')
        return False
    from models import toy_tasks

    prompt, answer = toy_tasks.problems(task, np.random.default_rng(7), 1, held_out=True)
    ids = np.concatenate([prompt, answer], axis=1)[0, :-1]           # (P + A - 1,)
    maps = toy_tasks.attention_weights(model, ids[None])[:, 0]        # (n_layer, n_head, T, T)
    plot_grid(maps, [str(digit) for digit in ids], path, title)
    print(f"wrote {path}: {maps.shape[0]} layers x {maps.shape[1]} heads, {len(ids)} tokens")
    return True


def main(argv=None):
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401 - checked first, before any slow loading
    except ImportError:
        print(MATPLOTLIB_MISSING, file=sys.stderr)
        return 2

    if args.random_model:
        if not args.prompt:
            return fail("the prompt is empty: give at least one character")
        model, tokenizer = random_model(args.prompt, args.seed)
        source = "an untrained GPT (--random-model)"
    else:
        try:
            model, tokenizer, _ = training.restore_model(args.checkpoint)
        except (CheckpointError, OSError) as error:
            return fail(f"{error}\n(train one with examples/train_gpt.py, "
                        "or try --random-model)")
        source = args.checkpoint
    try:
        ids = tokenizer.encode(args.prompt)
    except ValueError as error:
        return fail(f"the prompt cannot be encoded with this checkpoint's tokenizer: {error}")
    if not ids:
        return fail("the prompt is empty: give at least one character")
    block_size = model.config.block_size
    if len(ids) > block_size:
        print(f"the prompt has {len(ids)} tokens; plotting its last {block_size} (block_size)")
        ids = ids[-block_size:]

    maps = attention_maps(model, ids)                  # (n_layer, n_head, T, T)
    plot_grid(maps, token_labels(tokenizer, ids), args.out, f"attention of {source}")
    n_layer, n_head, T, _ = maps.shape
    print(f"wrote {args.out}: {n_layer} layers x {n_head} heads, {T} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
