"""A small DOT checker for the tests: parses the subset of Graphviz DOT that
minigrad.viz.to_dot writes, and fails on anything else."""
import re

QUOTED = r'"(?:[^"\\]|\\.)*"'
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ATTRIBUTE = rf"{NAME}=(?:{QUOTED}|{NAME}|[0-9.]+)"
ATTRIBUTES = rf"\[{ATTRIBUTE}(?:,\s*{ATTRIBUTE})*\]"
NODE_LINE = re.compile(rf"^({NAME})\s*({ATTRIBUTES})\s*;$")
EDGE_LINE = re.compile(rf"^({NAME})\s*->\s*({NAME})\s*(?:{ATTRIBUTES})?\s*;$")
SETTING_LINE = re.compile(rf"^(?:(?:node|edge|graph)\s*{ATTRIBUTES}|{ATTRIBUTE})\s*;$")
LABEL = re.compile(rf"label=({QUOTED})")


def unquote(literal):
    """The text of a DOT string literal (undoing \\n, \\" and \\\\)."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), literal[1:-1])


def braces_balance(text):
    """Braces outside string literals pair up, and never close before they open."""
    depth = 0
    for piece in re.split(f"({QUOTED})", text):
        if piece.startswith('"'):
            continue
        for char in piece:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, "a } closes before its {"
    return depth == 0


def parse_dot(text):
    """({node id: label}, [(source, target)]); fails on any line it does not understand."""
    assert braces_balance(text)
    lines = [line.strip() for line in text.strip().splitlines()]
    assert re.fullmatch(rf"digraph {NAME} \{{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if SETTING_LINE.match(line):  # defaults such as node [fontname=...], rankdir=TB
            continue
        if node := NODE_LINE.match(line):
            label = LABEL.search(node.group(2))
            nodes[node.group(1)] = unquote(label.group(1)) if label else node.group(1)
        elif edge := EDGE_LINE.match(line):
            edges.append((edge.group(1), edge.group(2)))
        else:
            raise AssertionError(f"not valid DOT (as to_dot writes it): {line!r}")
    for source, target in edges:
        assert source in nodes and target in nodes, f"edge {source} -> {target}: undeclared node"
    return nodes, edges
