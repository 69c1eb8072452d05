"""minigrad.viz: DOT output that parses, names the ops and parameters, survives deep
graphs, refuses freed graphs clearly; the text tree; render() with and without Graphviz."""
import shutil
import subprocess

import numpy as np
import pytest
from dot_helpers import parse_dot

import minigrad as mg
from minigrad import viz
from models.attention import MultiHeadAttention, SelfAttention


def small_expression():
    """loss = sum(tanh(w @ x + b)), float64, with w and b as named parameters."""
    w = mg.nn.Parameter(mg.randn(2, 3).double())
    b = mg.nn.Parameter(mg.zeros(2, 1).double())
    x = mg.randn(3, 1).double()
    loss = (w @ x + b).tanh().sum()
    return loss, {"w": w, "b": b}


# --- to_dot -------------------------------------------------------------------------------

def test_dot_of_a_small_expression_parses_and_names_ops_and_parameters():
    loss, params = small_expression()
    nodes, edges = parse_dot(viz.to_dot(loss, params=params))
    labels = list(nodes.values())
    for op in ("MatMul", "Add", "Tanh", "Sum"):
        assert labels.count(op) == 1
    assert "w\n(2, 3) float64" in labels and "b\n(2, 1) float64" in labels
    assert "() float64" in labels  # the loss itself
    # 4 ops and 7 tensors (w, x, w @ x, b, the sum, its tanh, the loss); an edge from
    # each input to its op (1 + 1 + 2 + 2) and from each op to its output (4)
    assert len(nodes) == 4 + 7 and len(edges) == 6 + 4


def test_dot_is_accepted_by_graphviz_when_it_is_installed(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    head = SelfAttention(6, 3)
    out = head(mg.randn(1, 4, 6))
    done = subprocess.run(["dot", "-Tsvg"], input=viz.to_dot(out, params=head),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout


def test_attention_graph_shows_matmul_softmax_and_parameter_names():
    head = SelfAttention(6, 3)
    out = head(mg.randn(1, 4, 6))
    nodes, _ = parse_dot(viz.to_dot(out, params=head))  # a Module works as params
    labels = list(nodes.values())
    assert labels.count("Linear") == 3  # the q, k, v projections
    assert labels.count("MatMul") == 2  # scores = q k^T, and weights @ v
    assert "Softmax" in labels
    for name in ("query.weight", "key.bias", "value.weight"):
        assert any(label.startswith(name + "\n") for label in labels), name


def test_params_may_be_named_parameters_or_a_dict_with_the_same_result():
    attention = MultiHeadAttention(8, 2)
    y = attention(mg.randn(1, 3, 8))
    from_pairs = viz.to_dot(y, params=attention.named_parameters())
    assert from_pairs == viz.to_dot(y, params=dict(attention.named_parameters()))
    assert from_pairs == viz.to_dot(y, params=attention)
    nodes, _ = parse_dot(from_pairs)
    assert any(label.startswith("c_attn.weight\n") for label in nodes.values())
    assert "PackedCausalAttention" in nodes.values()  # the ops appear beside the names


def test_labels_with_quotes_and_backslashes_are_escaped():
    x = mg.randn(2, requires_grad=True)
    x.name = 'a "quoted" \\ name {with braces}'
    nodes, _ = parse_dot(viz.to_dot((x * 2).sum()))
    assert any(label.startswith(x.name + "\n") for label in nodes.values())


def test_intermediates_nobody_kept_still_appear_with_their_shapes():
    x = mg.randn(4, 5, requires_grad=True)
    loss = (x.exp() @ mg.randn(5, 2)).sum()  # the exp() and matmul results are not kept
    labels = list(parse_dot(viz.to_dot(loss))[0].values())
    assert labels.count("(4, 5) float32") == 2  # x, exp(x)
    assert "(4, 2) float32" in labels


def test_several_roots_share_one_graph():
    x = mg.randn(3, requires_grad=True)
    hidden = x.tanh()
    first, second = (hidden * 2).sum(), (hidden * 3).sum()
    labels = list(parse_dot(viz.to_dot(first, second))[0].values())
    assert labels.count("Tanh") == 1 and labels.count("Sum") == 2


def test_a_leaf_root_is_drawn_as_one_node():
    nodes, edges = parse_dot(viz.to_dot(mg.randn(2, 2)))
    assert list(nodes.values()) == ["(2, 2) float32"] and edges == []


def test_show_grads_adds_the_gradient_norm():
    loss, params = small_expression()
    loss.backward(retain_graph=True)  # keep the graph so it can still be drawn
    labels = list(parse_dot(viz.to_dot(loss, params=params, show_grads=True))[0].values())
    expected = f"|grad| = {np.linalg.norm(params['w'].grad.numpy()):.4g}"
    assert f"w\n(2, 3) float64\n{expected}" in labels
    assert not any("|grad|" in label for label in parse_dot(viz.to_dot(loss))[0].values())


def test_a_freed_graph_cannot_be_drawn_and_the_error_says_why():
    loss, params = small_expression()
    loss.backward()  # frees the graph
    with pytest.raises(viz.GraphFreedError, match=r"cannot draw through Sum.*retain_graph=True"):
        viz.to_dot(loss, params=params)
    with pytest.raises(viz.GraphFreedError, match="freed by backward"):
        viz.graph_text(loss)


def test_a_long_chain_needs_no_recursion():
    x = mg.randn(2, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes, edges = parse_dot(viz.to_dot(y))
    assert len(nodes) == 5000 + 5001 + 5000  # ops, chain tensors, the constant 1.0s
    text = viz.graph_text(y, max_depth=10)
    assert "max_depth" in text and len(text.splitlines()) < 40


# --- graph_text ---------------------------------------------------------------------------

def test_graph_text_is_a_tree_with_op_names_shapes_and_names():
    loss, params = small_expression()
    text = viz.graph_text(loss, params=params)
    assert text.splitlines() == [
        "Sum -> () float64",
        "└── Tanh -> (2, 1) float64",
        "    └── Add -> (2, 1) float64",
        "        ├── MatMul -> (2, 1) float64",
        "        │   ├── w: (2, 3) float64, parameter",
        "        │   └── (3, 1) float64, constant",
        "        └── b: (2, 1) float64, parameter",
    ]


def test_graph_text_shows_a_shared_subgraph_once_then_refers_to_it():
    x = mg.randn(3, requires_grad=True)
    e = (x * 2.0).exp()
    text = viz.graph_text((e * e).sum())
    assert text.count("Exp [1]") == 2 and text.count("Mul") == 2  # the * 2.0 appears once
    assert text.count("(shown above)") == 1


def test_graph_text_names_the_output_of_a_multi_output_op():
    attention = MultiHeadAttention(8, 2)
    attention.fused = False  # the explicit ops: q, k, v split from c_attn's output
    text = viz.graph_text(attention(mg.randn(1, 3, 8)), params=attention)
    assert "Split[0] [" in text and "Split[1] [" in text and "Split[2] [" in text
    assert "c_attn.weight: (24, 8) float32, parameter" in text


def test_print_graph_prints_graph_text(capsys):
    loss, params = small_expression()
    viz.print_graph(loss, params=params)
    assert capsys.readouterr().out == viz.graph_text(loss, params=params) + "\n"


# --- render -------------------------------------------------------------------------------

def test_render_without_graphviz_writes_dot_and_says_how_to_draw_it(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda program: None)
    dot = viz.to_dot(small_expression()[0])
    path, message = viz.render(dot, tmp_path / "graph.svg")
    assert path == tmp_path / "graph.dot" and path.read_text() == dot
    assert not (tmp_path / "graph.svg").exists()
    assert "apt-get install graphviz" in message
    assert f"dot -Tsvg {tmp_path / 'graph.dot'} -o {tmp_path / 'graph.svg'}" in message


def test_render_with_graphviz_draws_the_picture(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    path, message = viz.render(viz.to_dot(small_expression()[0]), tmp_path / "graph.png")
    assert path == tmp_path / "graph.png" and (tmp_path / "graph.dot").exists()
    assert path.read_bytes().startswith(b"\x89PNG")


def test_render_of_a_dot_path_or_an_unknown_suffix(tmp_path):
    dot = viz.to_dot(small_expression()[0])
    assert viz.render(dot, tmp_path / "g").path == tmp_path / "g.dot"
    assert viz.render(dot, tmp_path / "h.dot").path == tmp_path / "h.dot"
    with pytest.raises(ValueError, match=r"\.svg, \.png"):
        viz.render(dot, tmp_path / "graph.jpeg")


# --- capturing attention weights, for plots (models/attention.py: keep_weights) -----------

def test_keep_weights_stores_the_weights_return_weights_gives():
    attention = MultiHeadAttention(8, 2)
    x = mg.randn(2, 5, 8)
    assert attention.last_weights is None  # off by default: nothing is kept
    attention(x)
    assert attention.last_weights is None
    attention.keep_weights = True
    _, weights = attention(x, return_weights=True)
    assert attention.last_weights.shape == (2, 2, 5, 5)
    assert attention.last_weights.creator is None  # values only: no graph is kept alive
    np.testing.assert_array_equal(attention.last_weights.numpy(), weights.numpy())
