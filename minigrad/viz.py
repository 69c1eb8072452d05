"""Drawing the graph behind a tensor: Graphviz DOT for pictures, a text tree for terminals.

    import minigrad as mg
    from minigrad import viz

    loss = (w @ x + b).tanh().sum()
    viz.print_graph(loss, params={"w": w, "b": b})     # a tree, in the terminal
    dot = viz.to_dot(loss, params={"w": w, "b": b})   # Graphviz source text
    viz.render(dot, "loss.svg")                        # loss.dot, and loss.svg if Graphviz is there

What is drawn: one node per op (the Function's class name: MatMul, Softmax,
...) and one per tensor that flows between ops (its shape and dtype).
Parameters show the names you pass in `params` (a dict {name: tensor}, an
iterable of (name, tensor) pairs such as `model.named_parameters()`, or the
Module itself); any tensor you named yourself (`scores.name = "scores"`)
shows its name too. In the picture data flows downwards: leaves at the top,
the root(s) at the bottom.

Draw BEFORE backward(), or call backward(retain_graph=True): backward frees
the graph as it goes (each Function drops its inputs to save memory), so
afterwards there is nothing left to walk, and these functions raise
GraphFreedError saying so. To see gradients (show_grads=True), call
`t.retain_grad()` on the intermediates you care about, then
`loss.backward(retain_graph=True)`, then draw.
"""
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

from . import autograd, backend
from .nn import Parameter

IMAGE_FORMATS = ("svg", "png", "pdf")

# fill colours, so that the kinds of tensor stand apart in the picture
_COLOURS = {
    "parameter": "#cfe2ff",   # light blue: learnable weights
    "input": "#d9f2d9",       # light green: leaves that require grad (inputs you differentiate)
    "constant": "#eeeeee",    # grey: leaves without grad (data, masks)
    "output": "#ffe0b3",      # orange: the root(s) you asked to draw
    "intermediate": "#ffffff",
}


class GraphFreedError(autograd.GraphFreedError):
    """The graph behind a tensor was freed by backward(); there is nothing left to draw."""


Rendered = namedtuple("Rendered", "path message")


# --- walking the graph ------------------------------------------------------------------

def _functions_behind(roots):
    """Every Function behind `roots`, each once (the engine's own iterative walk)."""
    try:
        return autograd.topological_order(roots)
    except autograd.GraphFreedError as error:
        raise GraphFreedError(
            f"cannot draw through {error.op_name}: its graph was freed by backward(). Draw the "
            "graph before calling backward(), or call backward(retain_graph=True) to keep it.",
            error.op_name) from None


def _parameter_names(params):
    """{id(tensor): name} from a dict, (name, tensor) pairs, or a Module."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    pairs = params.items() if isinstance(params, dict) else params
    return {id(t): name for name, t in pairs}


# --- describing one tensor --------------------------------------------------------------

def _shape_text(shape):
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_name(t, names):
    if t is None:
        return None
    return names.get(id(t)) or t.name


def _tensor_kind(t, is_root, names):
    if is_root:
        return "output"
    if t is None or t.creator is not None:
        return "intermediate"
    if isinstance(t, Parameter) or id(t) in names:  # names holds the tensors passed as params
        return "parameter"
    return "input" if t.requires_grad else "constant"


def _grad_norm(t):
    """The 2-norm of t.grad as a float, or None when t has no gradient."""
    if t is None or t.grad is None:
        return None
    g = t.grad.data
    return float(backend.get_array_module(g).linalg.norm(g.ravel()))


# --- DOT ------------------------------------------------------------------------------

def _quote(text):
    """A DOT string literal: backslashes and quotes escaped, newlines as DOT's \\n."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _DotGraph:
    """Collects node and edge lines; every node is declared before any edge uses it."""

    def __init__(self, names, show_grads):
        self.names, self.show_grads = names, show_grads
        self.node_lines, self.edge_lines = [], []
        self.tensor_ids = {}   # tensor key -> DOT node id
        self.op_count = 0

    def add_op(self, function):
        self.op_count += 1
        node_id = f"op{self.op_count}"
        self.node_lines.append(
            f'  {node_id} [label={_quote(function.name)}, shape=ellipse, style=filled, '
            f'fillcolor="#fff3b0"];')
        return node_id

    def add_tensor(self, key, t, shape, dtype, is_root):
        """The node id of the tensor known by `key`, declaring it on first sight."""
        if key in self.tensor_ids:
            return self.tensor_ids[key]
        node_id = f"t{len(self.tensor_ids) + 1}"
        self.tensor_ids[key] = node_id
        kind = _tensor_kind(t, is_root, self.names)
        lines = []
        name = _tensor_name(t, self.names)
        if name:
            lines.append(name)
        lines.append(f"{_shape_text(shape)} {dtype}")
        norm = _grad_norm(t) if self.show_grads else None
        if norm is not None:
            lines.append(f"|grad| = {norm:.4g}")
        self.node_lines.append(
            f'  {node_id} [label={_quote(chr(10).join(lines))}, shape=box, style=filled, '
            f'fillcolor="{_COLOURS[kind]}"];')
        return node_id

    def add_edge(self, source, target):
        self.edge_lines.append(f"  {source} -> {target};")

    def text(self):
        header = ["digraph minigrad {",
                  "  rankdir=TB;",
                  '  node [fontname="Helvetica", fontsize=10];']
        return "\n".join(header + self.node_lines + self.edge_lines + ["}"]) + "\n"


def _tensor_key(t):
    """How a tensor is known in the graph: an op's output by (op, index), even when
    the Tensor object itself is gone; a leaf by its identity."""
    return (id(t.creator), t.output_index) if t.creator is not None else id(t)


def to_dot(*roots, params=None, show_grads=False):
    """Graphviz DOT source for the graph behind the root tensor(s).

    params: names for parameters (a dict, (name, tensor) pairs, or a Module).
    show_grads: add |grad| (the 2-norm of .grad) to tensors that have one.
    Raises GraphFreedError if backward() already freed the graph (see the module doc).
    """
    graph = _DotGraph(_parameter_names(params), show_grads)
    root_keys = {_tensor_key(t) for t in roots}
    for t in roots:  # declared first, so a root that is a bare leaf still appears
        graph.add_tensor(_tensor_key(t), t, t.shape, t.dtype, is_root=True)
    for function in _functions_behind(roots):
        op_id = graph.add_op(function)
        for x in function.inputs:
            key = _tensor_key(x)
            graph.add_edge(graph.add_tensor(key, x, x.shape, x.dtype, key in root_keys), op_id)
        for index, ref in enumerate(function.outputs):
            key = (id(function), index)
            # the output Tensor may be gone (nobody kept it): its shape and dtype remain
            shape, dtype = function.output_specs[index]
            output_id = graph.add_tensor(key, ref(), shape, dtype, key in root_keys)
            graph.add_edge(op_id, output_id)
    return graph.text()


def render(dot_text, path):
    """Write `dot_text` to PATH with suffix .dot, and draw PATH if Graphviz's `dot` exists.

    path: 'graph.svg', 'graph.png' or 'graph.pdf' to draw a picture; 'graph' or
    'graph.dot' for the DOT file alone. Returns Rendered(path, message): the
    picture when one was drawn, else the .dot file, and a sentence saying what
    was written (and, without Graphviz, how to draw it yourself).
    """
    path = Path(path)
    image_format = path.suffix.lstrip(".").lower()
    dot_path = path.with_suffix(".dot")
    dot_path.write_text(dot_text, encoding="utf-8")
    if image_format in ("", "dot"):
        return Rendered(dot_path, f"wrote {dot_path}")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"render: cannot draw {path.name}; use a .svg, .png, .pdf or .dot path")
    program = shutil.which("dot")
    if program is None:
        return Rendered(dot_path, (
            f"wrote {dot_path}; Graphviz's `dot` program is not installed, so no "
            f"{image_format} was drawn. Install Graphviz (apt-get install graphviz, "
            f"brew install graphviz or conda install graphviz), then run: "
            f"dot -T{image_format} {dot_path} -o {path}"))
    done = subprocess.run([program, f"-T{image_format}", str(dot_path), "-o", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dot could not draw {dot_path}: {done.stderr.strip()}")
    return Rendered(path, f"wrote {dot_path} and {path}")


# --- a text tree ----------------------------------------------------------------------

def _consumer_counts(functions):
    """How many times each Function's outputs are used as inputs inside the graph."""
    counts = {}
    for function in functions:
        for x in function.inputs:
            if x.creator is not None:
                counts[x.creator] = counts.get(x.creator, 0) + 1
    return counts


def _tree_line(t, names, tag, already_shown):
    """One line of the tree: 'name: Op [tag] -> shape dtype' for an op's output,
    'name: shape dtype, kind' for a leaf."""
    name = _tensor_name(t, names)
    label = f"{name}: " if name else ""
    where = f"{_shape_text(t.shape)} {t.dtype}"
    if t.creator is None:
        return f"{label}{where}, {_tensor_kind(t, False, names)}"
    function = t.creator
    op = function.name
    if len(function.outputs) > 1:
        op += f"[{t.output_index}]"  # which output of a multi-output op (Split)
    if tag:
        op += f" [{tag}]"
    line = f"{label}{op} -> {where}"
    return line + ("   (shown above)" if already_shown else "")


def graph_text(root, params=None, max_depth=60):
    """The graph behind `root` as an indented tree, root first, for a terminal.

    Each line is a tensor: the op that made it (and its shape and dtype), or a
    leaf. An op used more than once gets a tag like [2]; its subtree is shown
    the first time and later lines just say "(shown above)".
    """
    names = _parameter_names(params)
    functions = _functions_behind([root])
    shared = [f for f, n in _consumer_counts(functions).items() if n > 1]
    tags = {f: i + 1 for i, f in enumerate(shared)}
    expanded, lines = set(), []
    # each entry: (tensor, prefix for its own line, prefix for its children, depth)
    stack = [(root, "", "", 0)]
    while stack:
        t, own_prefix, child_prefix, depth = stack.pop()
        function = t.creator
        seen = function is not None and function in expanded
        lines.append(own_prefix + _tree_line(t, names, tags.get(function), seen))
        if function is None or seen:
            continue
        expanded.add(function)
        if depth >= max_depth:
            lines.append(child_prefix + "└── ... (deeper ops not shown: max_depth)")
            continue
        inputs = function.inputs
        for i in reversed(range(len(inputs))):  # pushed in reverse, so popped in order
            last = i == len(inputs) - 1
            stack.append((inputs[i],
                          child_prefix + ("└── " if last else "├── "),
                          child_prefix + ("    " if last else "│   "),
                          depth + 1))
    return "\n".join(lines)


def print_graph(root, params=None, max_depth=60):
    """Print graph_text(root): the graph as a tree of ops and shapes."""
    print(graph_text(root, params, max_depth))


__all__ = ["to_dot", "render", "graph_text", "print_graph", "Rendered"]
