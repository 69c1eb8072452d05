"""Attention masks side by side, and how a sliding window's reach grows with depth.

    PYTHONPATH=. python examples/attention_masks.py            # text, and masks.png
    PYTHONPATH=. python examples/attention_masks.py --quick    # smaller, no training

Part 1 draws six masks over T tokens (row = query, column = key; 'x' = may attend):
causal (GPT), padding (the last tokens are padding, bidirectional like BERT), sliding
window, the Sparse Transformer's strided and fixed patterns, and global tokens
(Longformer / BigBird). Each is a bool array from models/masks.py that
F.scaled_dot_product_attention takes as attn_mask. With matplotlib installed
(pip install -e ".[viz]") it also writes them to a PNG.

Part 2 builds a tiny GPT with attn_window=w and asks, for the last output t, which
inputs change it: the nonzero entries of d output[t] / d input after each layer. One
layer of window w reaches w tokens back (t - w + 1 .. t); each further layer adds w - 1
more, so L layers see L * (w - 1) + 1 tokens, though no single layer looks further
than w.
"""
import argparse
import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad  # noqa: E402
from models import GPT, GPTConfig, masks  # noqa: E402


def named_masks(T):
    """(title, (T, T) bool mask) for each pattern."""
    padding = numpy.zeros(T, bool)
    padding[-max(1, T // 4):] = True                      # the last quarter is padding
    return [
        ("causal", masks.sliding_window_mask(T, T)),
        ("padding", numpy.broadcast_to(~padding, (T, T))),
        ("sliding window 3", masks.sliding_window_mask(T, 3)),
        ("strided 3", masks.strided_mask(T, 3)),
        ("fixed 3", masks.fixed_mask(T, 3)),
        ("global [0] + window 2", masks.global_tokens_mask(T, [0], window=2)),
    ]


def side_by_side(items, per_row=3):
    """The masks' text grids next to each other, `per_row` at a time."""
    blocks = []
    for start in range(0, len(items), per_row):
        group = items[start:start + per_row]
        grids = [masks.mask_text(mask).splitlines() for _, mask in group]
        width = max(len(line) for grid in grids for line in grid)
        lines = ["   ".join(title.ljust(width) for title, _ in group)]
        for row in zip(*grids):
            lines.append("   ".join(line.ljust(width) for line in row))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def write_png(items, path):
    from matplotlib.figure import Figure  # a Figure, not pyplot: no window, no global state
    figure = Figure(figsize=(3 * len(items), 3.3))
    for n, (title, mask) in enumerate(items):
        axes = figure.add_subplot(1, len(items), n + 1)
        axes.imshow(mask, cmap="Greys", vmin=0, vmax=1)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("key")
        axes.set_ylabel("query")
    figure.tight_layout()
    figure.savefig(path)


def receptive_fields(n_layer, window, T, seed=0):
    """For each depth d = 1..n_layer: the inputs whose change moves output T-1 after d
    blocks, from the gradient d output[T-1] / d input embeddings."""
    config = GPTConfig(block_size=T, vocab_size=11, n_layer=n_layer, n_head=2, n_embd=16,
                       attn_window=window)
    model = GPT(config, generator=minigrad.Generator(seed))
    ids = minigrad.tensor(numpy.random.default_rng(seed).integers(0, 11, size=(1, T)))
    x = model.transformer.wte(ids) + model.transformer.wpe.weight[:T]     # (1, T, C)
    x = minigrad.tensor(x.numpy(), requires_grad=True)                    # the inputs
    fields, h = [], x
    for block in model.transformer.h:
        h = block(h)                                                      # (1, T, C)
        (g,) = minigrad.grad(h[0, T - 1].sum(), [x], retain_graph=True)  # d out[T-1] / d x
        fields.append(numpy.flatnonzero(numpy.abs(g.numpy()[0]).sum(axis=-1)))
    return fields


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--tokens", type=int, default=12, help="mask size T")
    parser.add_argument("--png", default="masks.png", help="the PNG to write (matplotlib)")
    args = parser.parse_args(argv)
    T = 9 if args.quick else args.tokens

    items = named_masks(T)
    print(f"PART 1: attention masks over {T} tokens (row = query, column = key, x = attends)\n")
    print(side_by_side(items))
    for title, mask in items:
        print(f"  {title:<22} {int(mask.sum()):>4} of {T * T} scores used")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\n(matplotlib is not installed: no PNG. pip install -e \".[viz]\" for one)")
    else:
        write_png(items, args.png)
        print(f"\nwrote {args.png}")

    n_layer, window, length = (3, 3, 12) if args.quick else (4, 4, 24)
    print(f"\nPART 2: receptive field of output {length - 1} in a {n_layer}-layer GPT with "
          f"attn_window={window}")
    for depth, field in enumerate(receptive_fields(n_layer, window, length), start=1):
        row = "".join("x" if t in set(field) else "." for t in range(length))
        expected = min(length, depth * (window - 1) + 1)
        print(f"  after layer {depth}: {row}  inputs {field.min()}..{field.max()} "
              f"({len(field)} tokens; {depth} x ({window} - 1) + 1 = {expected})")
        if len(field) != expected or field.max() != length - 1:
            print("  UNEXPECTED: the receptive field should be the last "
                  f"{expected} tokens")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
