"""Draw the computation graphs behind a tiny expression and one transformer block.

    python examples/computation_graph.py                       # into graphs/
    python examples/computation_graph.py --out-dir /tmp/g --format png

1. h = tanh(w @ x + b), loss = mean((h - y)^2): printed as a text tree, then
   drawn twice, before backward and after it with each gradient's norm.
2. One GPT block: LayerNorm -> attention -> residual -> LayerNorm -> MLP -> residual.

Each graph is written as Graphviz DOT (a text file); with Graphviz installed
(`dot` on the PATH) it is drawn as SVG (or --format png/pdf) too. Without it,
the script says how to draw the .dot files yourself.
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad import viz  # noqa: E402
from minigrad.autograd import topological_order  # noqa: E402
from models.gpt import Block, GPTConfig  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default="graphs", help="where to write the graphs")
    p.add_argument("--format", choices=["svg", "png", "pdf", "dot"], default="svg",
                   help="picture format when Graphviz is installed (dot: DOT files only)")
    return p.parse_args(argv)


def draw(dot_text, out_dir, stem, image_format):
    rendered = viz.render(dot_text, out_dir / f"{stem}.{image_format}")
    print(rendered.message)


def tiny_expression(out_dir, image_format):
    print("1. h = tanh(w @ x + b), loss = mean((h - y)^2)\n")
    w = mg.nn.Parameter(mg.randn(3, 4) * 0.5)   # (3, 4)
    b = mg.nn.Parameter(mg.zeros(3, 1))         # (3, 1)
    x = mg.randn(4, 1)                          # (4, 1): the input
    y = mg.randn(3, 1)                          # (3, 1): the target
    h = (w @ x + b).tanh()                      # (3, 1)
    h.name = "h"                                # a named intermediate shows its name
    loss = ((h - y) ** 2).mean()                # (): drawn as Sum, then Mul by 1/3
    params = {"w": w, "b": b}

    viz.print_graph(loss, params=params)
    print()
    draw(viz.to_dot(loss, params=params), out_dir, "tiny", image_format)

    # backward frees the graph unless asked to keep it; retain_grad() keeps the
    # gradient of the intermediate h, so it can be shown too
    h.retain_grad()
    loss.backward(retain_graph=True)
    draw(viz.to_dot(loss, params=params, show_grads=True), out_dir, "tiny_grads", image_format)


def transformer_block(out_dir, image_format):
    print("\n2. one transformer block (LayerNorm -> attention -> residual -> "
          "LayerNorm -> MLP -> residual)\n")
    config = GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8)
    block = Block(config)
    block.attn.fused = False  # draw attention op by op, not as one fused attention node
    x = mg.randn(1, 4, config.n_embd, requires_grad=True)  # (B, T, C)
    out = block(x)                                          # (B, T, C)
    counts = Counter(f.name for f in topological_order([out]))
    print(f"{sum(counts.values())} ops: "
          + ", ".join(f"{name} x{n}" for name, n in counts.most_common()))
    draw(viz.to_dot(out, params=block), out_dir, "block", image_format)


def main(argv=None):
    args = parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mg.manual_seed(0)
    tiny_expression(out_dir, args.format)
    transformer_block(out_dir, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
