"""A guided tour of causal self-attention, forward and backward, with every number printed.

    python examples/attention_tour.py              # T=4 tokens, C=6 channels, head size 3
    python examples/attention_tour.py --quick      # smaller, fewer finite-difference checks
    python examples/attention_tour.py --exercise   # you write the backward rules (see below)
    python examples/attention_tour.py --plot tour.png   # heatmaps (needs matplotlib)

Part 1 follows ONE attention head, then checks the fused op training runs
(F.causal_attention) against the same derivation. Part 2 does the same for
multi-head attention. Part 3 puts the head inside a whole pre-LayerNorm block
with the language-model loss and takes one SGD step. Part 4 measures why the
scores are divided by sqrt(head size).

Every gradient is computed three ways and compared:
  (a) by hand: NumPy array math, following the derivation the script prints;
  (b) by minigrad's autograd (retain_grad() keeps the gradients of intermediates);
  (c) by central finite differences, in float64:
          dL/da ~ (L(a + h) - L(a - h)) / (2h)   for one entry a at a time.
The script exits with status 1 if any two of them differ by more than 1e-6.

Exercise mode. The by-hand gradients come from seven small backward rules
(matmul_backward, softmax_backward, ... below). `--exercise` swaps them for
the blanks in examples/tour_exercises.py (copy it and pass `--exercise
my_copy.py` to work on your own): each blank raises NotImplementedError until
you fill it in. The same three-way checker grades each rule on its own and
says which gradient is wrong and by how much; when all seven pass, the whole
tour runs on your rules.
"""
import argparse
import importlib.util
import math
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad.optim import SGD  # noqa: E402
from models.attention import MultiHeadAttention, SelfAttention, causal_mask, masked_value  # noqa: E402
from models.gpt import Block, GPTConfig  # noqa: E402
from models.layers import LayerNorm, Linear  # noqa: E402

TOLERANCE = 1e-6  # float64 by hand vs autograd agree to ~1e-16; finite differences to ~1e-9
STEP = 1e-6       # h in the central difference
EPS = 1e-5        # LayerNorm's epsilon, as models.layers.LayerNorm
EXERCISES = Path(__file__).resolve().parent / "tour_exercises.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="T=3, C=4, head size 2, and only a few finite-difference entries per array")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exercise", nargs="?", const=str(EXERCISES), default=None, metavar="FILE",
                   help="grade the backward rules in FILE (default: the blanks in "
                        "examples/tour_exercises.py) instead of using the reference answers")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="also save Part 1's attention weights and d scores as heatmaps "
                        "(needs matplotlib)")
    return p.parse_args(argv)


# --- printing and comparing -----------------------------------------------------------

def show(title, array, formula=""):
    print(f"\n{title} {formula}".rstrip() + f"    shape {np.shape(array)}")
    print(np.array2string(np.asarray(array), prefix=""))


def say(text):
    """A step of the derivation, in words and formulas, printed before its numbers."""
    print("\n" + textwrap.dedent(text).strip("\n"))


class Comparisons:
    """Counts three-way comparisons and remembers the ones that disagree."""

    def __init__(self, tolerance, fd_entries):
        self.tolerance = tolerance
        self.fd_entries = fd_entries  # None: every entry; n: n entries per array, chosen at random
        self.rng = np.random.default_rng(1)
        self.count, self.failures = 0, []

    def entries(self, shape):
        size = int(np.prod(shape))
        if self.fd_entries is None or self.fd_entries >= size:
            return range(size)
        return self.rng.choice(size, self.fd_entries, replace=False)

    def three_ways(self, what, by_hand, by_minigrad, loss_of, at):
        """Compare (a) by_hand, (b) by_minigrad, (c) finite differences of loss_of at `at`."""
        by_hand = np.asarray(by_hand, dtype=np.float64)
        self.count += 1
        if by_hand.shape != np.shape(at):
            self.failures.append(what)
            print(f"  {what} by hand has shape {by_hand.shape}, but it must have the shape of "
                  f"what it is the gradient of, {np.shape(at)}   DISAGREE")
            return False
        numeric = finite_differences(loss_of, at, self.entries(np.shape(at)))
        checked = ~np.isnan(numeric)
        error_minigrad = np.abs(by_hand - by_minigrad)
        worst_minigrad = float(np.max(error_minigrad))
        worst_numeric = float(np.max(np.abs(by_hand - numeric)[checked]))
        agree = max(worst_minigrad, worst_numeric) <= self.tolerance  # False for NaN too
        entries = f"{int(checked.sum())} of {checked.size}"
        if checked.all():
            entries = f"all {checked.size}"
        print(f"  vs minigrad: {worst_minigrad:.1e}   vs finite differences ({entries} entries): "
              f"{worst_numeric:.1e}   {'agree' if agree else 'DISAGREE'}")
        if not agree:
            self.failures.append(what)
            error = np.fmax(error_minigrad, np.where(checked, np.abs(by_hand - numeric), np.nan))
            where = np.unravel_index(int(np.nanargmax(error)), error.shape)
            print(f"  {what} is wrong by up to {float(np.nanmax(error)):.3g}: at entry "
                  f"{tuple(map(int, where))} by hand {by_hand[where]:.6g}, minigrad "
                  f"{np.asarray(by_minigrad)[where]:.6g}, finite differences {numeric[where]:.6g}")
        return agree

    def same(self, what, by_hand, by_minigrad):
        """A forward value: by hand vs minigrad."""
        worst = float(np.max(np.abs(by_hand - by_minigrad)))
        self.count += 1
        if not worst <= self.tolerance:
            self.failures.append(what)
        print(f"  {what}: by hand vs minigrad, worst |difference| = {worst:.1e}")

    def blank(self, what, error):
        self.count += 1
        self.failures.append(what)
        print(f"  {what}: not written yet ({type(error).__name__}: {error})")


def finite_differences(loss_of, at, entries):
    """Central differences dL/d(at) at the given flat positions; NaN elsewhere."""
    a = np.array(at, dtype=np.float64)  # a private copy: we nudge its entries
    numeric = np.full(a.shape, np.nan)
    for i in entries:
        kept = a.flat[i]
        a.flat[i] = kept + STEP
        above = loss_of(a)
        a.flat[i] = kept - STEP
        below = loss_of(a)
        a.flat[i] = kept
        numeric.flat[i] = (above - below) / (2 * STEP)
    return numeric


# --- the backward rules, by hand (examples/tour_exercises.py has them as blanks) ----------
# Each takes the gradient of an op's output (d_y: "dL/dy") and what the op saw, and returns
# the gradients of its inputs. Part 1 prints the derivation of each.

def matmul_backward(a, b, d_c):
    """C = A @ B, A (n, k), B (k, m) -> (dA (n, k), dB (k, m))."""
    return d_c @ b.T, a.T @ d_c                              # dA = dC @ B.T, dB = A.T @ dC


def softmax_backward(w, d_w):
    """w = softmax(s) along the last axis -> ds."""
    return w * (d_w - (d_w * w).sum(axis=-1, keepdims=True))  # ds = w * (dw - rowsum(dw * w))


def mask_backward(d_masked, mask):
    """masked = where(mask, constant, x) -> dx: 0 where the constant was written."""
    return np.where(mask, 0.0, d_masked)


def scale_backward(d_scaled, factor):
    """scaled = x * factor, factor a constant -> dx."""
    return d_scaled * factor


def layernorm_backward(x, gamma, d_y, eps=EPS):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis ->
    (dx, dgamma, dbeta); x and d_y (T, C), gamma (C,)."""
    x_hat = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    d_x_hat = d_y * gamma
    d_x = (d_x_hat - d_x_hat.mean(axis=-1, keepdims=True)
           - x_hat * (d_x_hat * x_hat).mean(axis=-1, keepdims=True))
    d_x /= np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    return d_x, (d_y * x_hat).sum(axis=0), d_y.sum(axis=0)


def gelu_backward(u, d_g):
    """g = 0.5 u (1 + tanh(a (u + 0.044715 u^3))), a = sqrt(2/pi) -> du."""
    a = math.sqrt(2 / math.pi)
    t = np.tanh(a * (u + 0.044715 * u ** 3))
    return d_g * (0.5 * (1 + t) + 0.5 * u * (1 - t ** 2) * a * (1 + 3 * 0.044715 * u ** 2))


def cross_entropy_backward(logits, targets):
    """L = mean over rows of -log softmax(logits)[row, target] -> d logits."""
    p = softmax_rows(logits)
    onehot = np.eye(logits.shape[-1])[targets]
    return (p - onehot) / len(targets)                       # d logits = (p - onehot) / T


RULE_NAMES = ("matmul_backward", "softmax_backward", "mask_backward", "scale_backward",
              "layernorm_backward", "gelu_backward", "cross_entropy_backward")
REFERENCE = SimpleNamespace(**{name: globals()[name] for name in RULE_NAMES})


def load_rules(path):
    """The seven rules from a student's file, as a namespace like REFERENCE."""
    spec = importlib.util.spec_from_file_location("student_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [name for name in RULE_NAMES if not callable(getattr(module, name, None))]
    if missing:
        raise SystemExit(f"error: {path} must define {', '.join(missing)} "
                         f"(see {EXERCISES.name})")
    return SimpleNamespace(**{name: getattr(module, name) for name in RULE_NAMES})


# --- forward passes, by hand ----------------------------------------------------------

def softmax_rows(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))  # minus the row max: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def future_mask(T):
    """(T, T) bool, True above the diagonal: query i may not look at keys j > i."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)


def layernorm(x, gamma, beta, eps=EPS):
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + eps) * gamma + beta


def gelu(u):
    return 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))


def cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_p[np.arange(len(targets)), targets].mean())


def attention_forward(q, k, v, scale=True):
    """One causal head: q, k, v (T, hs) -> every intermediate, by name."""
    T, hs = q.shape
    scores = q @ k.T                                         # (T, T): query i . key j
    scaled = scores / math.sqrt(hs) if scale else scores     # (T, T): variance ~1 at init
    masked = np.where(future_mask(T), -np.inf, scaled)       # (T, T): no peeking ahead
    weights = softmax_rows(masked)                           # (T, T): each row sums to 1
    out = weights @ v                                        # (T, hs): a weighted mix of values
    return dict(scores=scores, scaled=scaled, masked=masked, weights=weights, out=out)


def attention_backward(q, k, v, weights, d_out, rules=REFERENCE, scale=True):
    """The head's gradients, given d_out (T, hs): one rule per step of the forward pass."""
    T, hs = q.shape
    d_weights, d_v = rules.matmul_backward(weights, v, d_out)        # out = weights @ v
    d_masked = rules.softmax_backward(weights, d_weights)            # weights = softmax(masked)
    d_scaled = rules.mask_backward(d_masked, future_mask(T))         # masked = scaled or -inf
    factor = 1 / math.sqrt(hs) if scale else 1.0
    d_scores = rules.scale_backward(d_scaled, factor)                # scaled = scores / sqrt(hs)
    d_q, d_kT = rules.matmul_backward(q, k.T, d_scores)              # scores = q @ k.T
    return dict(weights=d_weights, v=d_v, masked=d_masked, scaled=d_scaled,
                scores=d_scores, q=d_q, k=d_kT.T)


RULES_IN_WORDS = """
Notation. One sequence (a batch of 1, left out of the NumPy code): T tokens, C channels
per token, head size hs. L is a scalar loss; for any array A, "dA" means dL/dA, an array
of A's shape. Two rules give every gradient below.

  The matmul rule. C = A @ B with A (n, k), B (k, m), C (n, m) means
  C[i,j] = sum_k A[i,k] B[k,j]. A[i,k] appears in every C[i,j] of row i, multiplied by
  B[k,j], so dA[i,k] = sum_j dC[i,j] B[k,j]:
        dA = dC @ B.T     (n, m) @ (m, k) -> (n, k), A's shape
        dB = A.T @ dC     (k, n) @ (n, m) -> (k, m), B's shape
  Check the shapes: only one arrangement of dC and the other factor fits.

  Several uses. A value used in several places gets the SUM of the gradients from each
  use: L changes through all of them at once (d(f(a) + g(a)) = df + dg)."""


# --- Part 1: one head ---------------------------------------------------------------------

def one_head(sizes, rng, check, rules):
    T, C, hs = sizes["T"], sizes["C"], sizes["hs"]
    print(f"PART 1: one causal self-attention head, T={T} tokens, C={C} channels, "
          f"head size hs={hs}, float64")
    print("=" * 100)
    say(RULES_IN_WORDS)
    x = rng.normal(size=(T, C))                       # one sequence of T token vectors
    # weights stored (out, in) as Linear does, with Linear's scale 1/sqrt(C)
    W = {name: rng.normal(size=(hs, C)) / math.sqrt(C) for name in ("Wq", "Wk", "Wv")}
    say("""
    The loss. Whatever comes after the head, its gradient with respect to `out` is some
    (T, hs) array; L = sum(out * g_out) is the simplest loss with d out = g_out, so g_out
    plays "the rest of the network" (Part 3 replaces it with a real block and loss).""")
    g_out = rng.normal(size=(T, hs))

    by_hand = head_forward_by_hand(x, W, g_out)
    by_minigrad = head_forward_by_minigrad(x, W, g_out, check, by_hand)
    print("\nBACKWARD: each gradient (a) by hand, (b) by minigrad, (c) by finite differences")
    print("-" * 100)
    print("Each gradient is printed as computed by hand; under it, the worst absolute difference\n"
          "from minigrad's gradient and from the finite-difference estimate.")
    by_minigrad["loss"].backward()
    d = head_backward_three_ways(x, W, g_out, by_hand, by_minigrad, check, rules)
    fused_against_hand(by_hand, g_out, d, check)
    return dict(weights=by_hand["weights"], d_scores=d["scores"])


def head_forward_by_hand(x, W, g_out):
    """Part 1's forward pass in NumPy, printed step by step; returns every intermediate."""
    hs = W["Wq"].shape[0]
    print("\nFORWARD, by hand (NumPy)")
    show("x", x, "(T, C): one row per token")
    q, k, v = x @ W["Wq"].T, x @ W["Wk"].T, x @ W["Wv"].T  # (T, hs) each
    show("q = x @ Wq.T", q, "(T, hs): what each token looks for")
    show("k = x @ Wk.T", k, "(T, hs): what each token offers to be found by")
    show("v = x @ Wv.T", v, "(T, hs): what each token hands over")
    f = attention_forward(q, k, v)
    show("scores = q @ k.T", f["scores"], "(T, T): scores[i, j] = how well query i matches key j")
    show("scaled = scores / sqrt(hs)", f["scaled"], f"(sqrt(hs) = {math.sqrt(hs):.4f})")
    show("masked", f["masked"], "= scaled, with -inf above the diagonal: token i sees tokens 0..i")
    show("weights = softmax(masked) per row", f["weights"], "(each row sums to 1; 0 where masked)")
    show("out = weights @ v", f["out"], "(T, hs): row i mixes the values of tokens 0..i")
    show("g_out", g_out, "(T, hs): stands in for the rest of the network")
    loss = float((f["out"] * g_out).sum())
    print(f"\nL = sum(out * g_out) = {loss:.6f}")
    return dict(f, q=q, k=k, v=v, loss=loss)


def head_forward_by_minigrad(x, W, g_out, check, by_hand):
    """The same forward with minigrad tensors, through SelfAttention's own layers, keeping
    every intermediate (and, after backward, its gradient: retain_grad)."""
    print("\nFORWARD, by minigrad (models.attention.SelfAttention's layers, step by step)")
    T, C = x.shape
    hs = W["Wq"].shape[0]
    head = SelfAttention(C, hs, causal=True, bias=False)
    for layer, name in ((head.query, "Wq"), (head.key, "Wk"), (head.value, "Wv")):
        layer.weight.data = W[name].copy()            # the same numbers, float64
    x_t = mg.tensor(x[None], requires_grad=True)      # (1, T, C): a batch of one
    t = dict(x=x_t, head=head)
    t["q"], t["k"], t["v"] = head.query(x_t), head.key(x_t), head.value(x_t)  # (1, T, hs) each
    t["scores"] = t["q"] @ t["k"].transpose(-1, -2)   # (1, T, T)
    t["scaled"] = t["scores"] / math.sqrt(hs)         # (1, T, T)
    # minigrad fills with the most negative float, not -inf (see models/attention.py)
    masked = t["scaled"].masked_fill(causal_mask(np, T, T), masked_value(np.float64))
    t["weights"] = F.softmax(masked, axis=-1)         # (1, T, T)
    t["out"] = t["weights"] @ t["v"]                  # (1, T, hs)
    t["loss"] = (t["out"] * mg.tensor(g_out[None])).sum()
    for name in ("q", "k", "v", "scores", "scaled", "weights", "out"):
        t[name].retain_grad()                         # keep its gradient after backward
    with mg.no_grad():
        module_out = head(x_t)                        # SelfAttention.forward, for comparison
    check.same("weights", by_hand["weights"], t["weights"].numpy()[0])
    check.same("out", by_hand["out"], t["out"].numpy()[0])
    check.same("out from SelfAttention.forward itself", by_hand["out"], module_out.numpy()[0])
    check.same("L", by_hand["loss"], t["loss"].item())
    return t


def head_backward_three_ways(x, W, g_out, f, t, check, rules):
    """Every gradient of Part 1: (a) f's numbers by hand, (b) t's by minigrad, (c) numeric."""
    T, hs = g_out.shape
    q, k, v = f["q"], f["k"], f["v"]
    d = attention_backward(q, k, v, f["weights"], g_out, rules)

    def by_minigrad(name):
        return t[name].grad.numpy()[0]                # (T, ...) without the batch of one

    # Finite differences need L as a function of one array, everything upstream
    # of it held fixed: these are the forward pass, restarted at each stage.
    def loss_after_out(out):
        return float((out * g_out).sum())

    def loss_after_weights(weights):
        return loss_after_out(weights @ v)

    def loss_after_scaled(scaled):
        return loss_after_weights(softmax_rows(np.where(future_mask(T), -np.inf, scaled)))

    def loss_after_qkv(q=q, k=k, v=v):                # each argument defaults to its value above
        return loss_after_out(attention_forward(q, k, v)["out"])

    def loss_of(x=x, Wq=W["Wq"], Wk=W["Wk"], Wv=W["Wv"]):
        return loss_after_qkv(x @ Wq.T, x @ Wk.T, x @ Wv.T)

    say("""
    Backward goes through the forward pass in reverse, one op at a time: each op turns
    the gradient of its output into the gradients of its inputs.""")
    show("d out", g_out, "= g_out (L = sum(out * g_out))")
    check.three_ways("d out", g_out, by_minigrad("out"), loss_after_out, f["out"])
    say("""
    out = weights @ v is a matmul with A = weights (T, T), B = v (T, hs): the matmul rule
    gives d weights = d out @ v.T  (T, hs) @ (hs, T) -> (T, T)
    and   d v       = weights.T @ d out  (T, T) @ (T, hs) -> (T, hs).""")
    show("d weights = d out @ v.T", d["weights"], "(matmul rule)")
    print("  (not 0 above the diagonal: L would change if those weights changed; but no score\n"
          "   can change them, so d scaled below is 0 there)")
    check.three_ways("d weights", d["weights"], by_minigrad("weights"), loss_after_weights,
                     f["weights"])
    show("d v = weights.T @ d out", d["v"], "(matmul rule)")
    check.three_ways("d v", d["v"], by_minigrad("v"), lambda a: loss_after_qkv(v=a), v)
    say("""
    weights = softmax(masked), row by row. For one row w = softmax(s):
        w_i = exp(s_i) / sum_j exp(s_j)   gives   dw_i/ds_j = w_i (delta_ij - w_j)
    (the Jacobian, T x T per row). We never build it: we need only its product with dw,
        ds_j = sum_i dw_i w_i (delta_ij - w_j) = w_j (dw_j - sum_i dw_i w_i),
    in array form  d masked = weights * (d weights - rowsum(d weights * weights)),
    where rowsum is one number per row (the weighted mean of that row's d weights).

    masked = scaled, except -inf above the diagonal. Where the mask wrote -inf the scaled
    score was thrown away, so its gradient is 0 (softmax already gives 0 there: those
    weights are exactly 0, and d masked has the factor w_j).

    Row 0 of d scaled is all zeros, and so is row 0 of d scores and of d q below: the first
    query sees only itself, so its single weight is 1 whatever its score: softmax of one
    number is constant, and a constant has no gradient.""")
    show("d scaled = weights * (d weights - rowsum(d weights * weights)), 0 where masked",
         d["scaled"], "(softmax)")
    check.three_ways("d scaled", d["scaled"], by_minigrad("scaled"), loss_after_scaled,
                     f["scaled"])
    say(f"""
    scaled = scores / sqrt(hs): every score is multiplied by the constant 1/sqrt(hs), so
    every gradient is multiplied by it too: d scores = d scaled / sqrt(hs) (here 1/{math.sqrt(hs):.4f}).
    Part 4 shows what this constant is for.""")
    show("d scores = d scaled / sqrt(hs)", d["scores"])
    check.three_ways("d scores", d["scores"], by_minigrad("scores"),
                     lambda a: loss_after_scaled(a / math.sqrt(hs)), f["scores"])
    say("""
    scores = q @ k.T: the matmul rule with A = q (T, hs) and B = k.T (hs, T):
        d q   = d scores @ (k.T).T = d scores @ k          (T, T) @ (T, hs) -> (T, hs)
        d k.T = q.T @ d scores, so transposed  d k = d scores.T @ q""")
    show("d q = d scores @ k", d["q"], "(matmul rule with B = k.T)")
    check.three_ways("d q", d["q"], by_minigrad("q"), lambda a: loss_after_qkv(q=a), q)
    show("d k = d scores.T @ q", d["k"], "(matmul rule, transposed)")
    check.three_ways("d k", d["k"], by_minigrad("k"), lambda a: loss_after_qkv(k=a), k)

    say("""
    q = x @ Wq.T: the matmul rule with A = x (T, C) and B = Wq.T (C, hs) gives
    d Wq.T = x.T @ d q, so d Wq = d q.T @ x  (hs, T) @ (T, C) -> (hs, C). The same for k, v.""")
    layers = {"Wq": t["head"].query, "Wk": t["head"].key, "Wv": t["head"].value}
    for name, layer in layers.items():
        d_Wt = rules.matmul_backward(x, W[name].T, d[name[1]])[1]  # d (W.T), (C, hs)
        show(f"d {name} = d {name[1]}.T @ x", d_Wt.T, "(matmul rule, transposed)")
        check.three_ways(f"d {name}", d_Wt.T, layer.weight.grad.numpy(),
                         lambda a, name=name: loss_of(**{name: a}), W[name])

    say("""
    x feeds q, k AND v: three uses, so three gradients add up (the second rule). Each use
    is a matmul x @ W.T, whose rule gives d x = d(use) @ W.""")
    d_x = sum(rules.matmul_backward(x, W[name].T, d[name[1]])[0] for name in layers)  # (T, C)
    show("d x = d q @ Wq + d k @ Wk + d v @ Wv", d_x, "(x is used three times: the sum)")
    check.three_ways("d x", d_x, by_minigrad("x"), lambda a: loss_of(x=a), x)
    return d


def fused_against_hand(f, g_out, d, check):
    """What training runs: F.causal_attention, one op whose backward is written out in
    minigrad/ops/nn.py (CausalAttention), checked against the derivation above."""
    print("\nTHE FUSED OP: F.causal_attention(q, k, v), what MultiHeadAttention runs in training")
    print("-" * 100)
    say("""
    It computes the same softmax(q k.T / sqrt(hs), masked) @ v in one op, a block of
    queries at a time, never computing the scores of future keys, and has its own backward.
    The same hand derivation must give its gradients.""")
    q_t, k_t, v_t = (mg.tensor(f[n][None], requires_grad=True) for n in "qkv")  # (1, T, hs)
    out_t = F.causal_attention(q_t, k_t, v_t)                                     # (1, T, hs)
    (out_t * mg.tensor(g_out[None])).sum().backward()
    check.same("fused out", f["out"], out_t.numpy()[0])

    def loss_after_qkv(q=f["q"], k=f["k"], v=f["v"]):
        return float((attention_forward(q, k, v)["out"] * g_out).sum())

    for name, tensor in (("q", q_t), ("k", k_t), ("v", v_t)):
        print(f"d {name} by hand vs the fused op's backward:")
        check.three_ways(f"fused d {name}", d[name], tensor.grad.numpy()[0],
                         lambda a, name=name: loss_after_qkv(**{name: a}), f[name])


# --- Part 2: multi-head attention -----------------------------------------------------

def head_channels(h, hs):
    """Head h's channels within q, k, v and y: h*hs up to (h+1)*hs."""
    return slice(h * hs, (h + 1) * hs)


def mha_forward(x, P, n_head):
    """Multi-head attention by hand: x (T, C) and parameters P -> every intermediate."""
    T, C = x.shape
    hs = C // n_head
    qkv = x @ P["Wattn"].T + P["battn"]                         # (T, 3C)
    q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]       # (T, C) each
    heads = []
    for h in range(n_head):
        cols = head_channels(h, hs)
        heads.append(attention_forward(q[:, cols], k[:, cols], v[:, cols]))  # Part 1, per head
    y = np.concatenate([f["out"] for f in heads], axis=1)       # (T, C): heads side by side
    z = y @ P["Wproj"].T + P["bproj"]                           # (T, C)
    return dict(q=q, k=k, v=v, heads=heads, y=y, z=z)


def linear_backward(x, W, d_y, rules):
    """y = x @ W.T + b -> (dx, dW, db): the matmul rule, and the bias used by every row."""
    d_x, d_Wt = rules.matmul_backward(x, W.T, d_y)
    return d_x, d_Wt.T, d_y.sum(axis=0)


def mha_backward(x, P, f, d_z, n_head, rules=REFERENCE):
    """Multi-head attention's gradients by hand, given d z (T, C)."""
    T, C = x.shape
    hs = C // n_head
    # z = y @ Wproj.T + bproj. The bias is added to every row (T uses), so its
    # gradient is the sum over rows; the rest is the matmul rule.
    d_y, d_Wproj, d_bproj = linear_backward(f["y"], P["Wproj"], d_z, rules)
    # y is the heads' outputs side by side, so head h's d out is its slice of d y;
    # each head then backpropagates exactly as in Part 1.
    d_q, d_k, d_v = np.zeros((T, C)), np.zeros((T, C)), np.zeros((T, C))
    for h in range(n_head):
        cols = head_channels(h, hs)
        d_head = attention_backward(f["q"][:, cols], f["k"][:, cols], f["v"][:, cols],
                                    f["heads"][h]["weights"], d_y[:, cols], rules)
        d_q[:, cols], d_k[:, cols], d_v[:, cols] = d_head["q"], d_head["k"], d_head["v"]
    # q, k, v are thirds of qkv: their gradients glue back together the same way.
    d_qkv = np.concatenate([d_q, d_k, d_v], axis=1)             # (T, 3C)
    d_x, d_Wattn, d_battn = linear_backward(x, P["Wattn"], d_qkv, rules)
    return dict(Wproj=d_Wproj, bproj=d_bproj, Wattn=d_Wattn, battn=d_battn, x=d_x)


def mha_parameters(rng, C):
    return dict(Wattn=rng.normal(size=(3 * C, C)) / math.sqrt(C), battn=rng.normal(size=3 * C) * 0.1,
                Wproj=rng.normal(size=(C, C)) / math.sqrt(C), bproj=rng.normal(size=C) * 0.1)


def multi_head(sizes, rng, check, rules):
    T, C, nh = sizes["T"], sizes["C"], sizes["heads"]
    print(f"\n\nPART 2: multi-head attention, {nh} heads of size {C // nh}, as in "
          "models.attention.MultiHeadAttention")
    print("=" * 100)
    say("""
    c_attn makes q, k and v of every head in one matmul; head h owns channels
    h*hs:(h+1)*hs of each. Each head runs Part 1's attention on its own channels;
    their outputs sit side by side in y, and c_proj mixes them:
        qkv = x @ Wattn.T + battn           (T, 3C)
        q, k, v = the three C-wide thirds   (T, C) each
        y[:, head h's channels] = attention(q, k, v restricted to those channels)
        z = y @ Wproj.T + bproj             (T, C)      L = sum(z * g_z)
    Backward: a bias is added to every row (T uses), so its gradient is the sum of
    d z over rows; head h's d out is its slice of d y; the heads' d q, d k, d v glue back
    together into d qkv, and c_attn's matmul rule gives d Wattn and d x.""")
    x = rng.normal(size=(T, C))
    P = mha_parameters(rng, C)
    g_z = rng.normal(size=(T, C))                               # d z: the rest of the network

    print("\nFORWARD: by hand per head, vs minigrad's MultiHeadAttention")
    f = mha_forward(x, P, nh)
    mha = MultiHeadAttention(C, nh, causal=True, dropout=0.0, bias=True)
    mha.c_attn.weight.data, mha.c_attn.bias.data = P["Wattn"].copy(), P["battn"].copy()
    mha.c_proj.weight.data, mha.c_proj.bias.data = P["Wproj"].copy(), P["bproj"].copy()
    x_t = mg.tensor(x[None], requires_grad=True)                # (1, T, C)
    z_t, weights_t = mha(x_t, return_weights=True)              # (1, T, C), (1, nh, T, T)
    for h in range(nh):
        show(f"head {h} weights", f["heads"][h]["weights"])
        check.same(f"head {h} weights", f["heads"][h]["weights"], weights_t.numpy()[0, h])
    show("z", f["z"])
    check.same("z", f["z"], z_t.numpy()[0])

    print("\nBACKWARD: (a) by hand per head, (b) minigrad, (c) finite differences")
    print("-" * 100)
    (z_t * mg.tensor(g_z[None])).sum().backward()
    d = mha_backward(x, P, f, g_z, nh, rules)
    arrays = dict(P, x=x)

    def loss_of(**changed):  # L with some arrays replaced, the rest as above
        return float((mha_forward(changed.pop("x", x), {**P, **changed}, nh)["z"] * g_z).sum())

    rows = [
        ("d c_proj.weight = d z.T @ y", "Wproj", mha.c_proj.weight.grad),
        ("d c_proj.bias = d z summed over tokens", "bproj", mha.c_proj.bias.grad),
        ("d c_attn.weight = d qkv.T @ x", "Wattn", mha.c_attn.weight.grad),
        ("d c_attn.bias = d qkv summed over tokens", "battn", mha.c_attn.bias.grad),
        ("d x = d qkv @ Wattn", "x", x_t.grad[0]),
    ]
    for title, name, by_minigrad in rows:
        show(title, d[name])
        check.three_ways("multi-head " + title.split(" =")[0], d[name], by_minigrad.numpy(),
                         lambda a, name=name: loss_of(**{name: a}), arrays[name])
    key_bias = d["battn"][C:2 * C]                               # the middle third: keys
    print(f"\nThe key bias gets zero gradient (largest |d| = {np.abs(key_bias).max():.1e}): "
          "adding\n"
          "b_k to every key adds q_i . b_k to every score in row i, the same number across the\n"
          "row, and softmax does not change when a row is shifted by a constant.")


# --- Part 3: a whole pre-LN block, the loss, one SGD step ------------------------------

BLOCK_PARAMETERS = {  # our short name: the parameter's name in models.gpt.Block (or head)
    "g1": "ln_1.weight", "b1": "ln_1.bias",
    "Wattn": "attn.c_attn.weight", "battn": "attn.c_attn.bias",
    "Wproj": "attn.c_proj.weight", "bproj": "attn.c_proj.bias",
    "g2": "ln_2.weight", "b2": "ln_2.bias",
    "Wfc": "mlp.c_fc.weight", "bfc": "mlp.c_fc.bias",
    "Wmlp": "mlp.c_proj.weight", "bmlp": "mlp.c_proj.bias",
    "gf": "ln_f.weight", "bf": "ln_f.bias", "Wlm": "lm_head.weight",
}


def block_forward(x, P, targets, n_head):
    """x (T, C) through a pre-LN block, a final LayerNorm and lm_head, to the mean
    cross-entropy against targets (T,): every intermediate, by name."""
    f = dict(x=x)
    f["h1"] = layernorm(x, P["g1"], P["b1"])                     # (T, C)
    f["attn"] = mha_forward(f["h1"], P, n_head)                  # Part 2
    f["x1"] = x + f["attn"]["z"]                                 # (T, C): residual
    f["h2"] = layernorm(f["x1"], P["g2"], P["b2"])               # (T, C)
    f["u"] = f["h2"] @ P["Wfc"].T + P["bfc"]                     # (T, 4C)
    f["m"] = gelu(f["u"])                                        # (T, 4C)
    f["x2"] = f["x1"] + f["m"] @ P["Wmlp"].T + P["bmlp"]         # (T, C): residual
    f["hf"] = layernorm(f["x2"], P["gf"], P["bf"])               # (T, C)
    f["logits"] = f["hf"] @ P["Wlm"].T                           # (T, V)
    f["loss"] = cross_entropy(f["logits"], targets)
    return f


def block_backward(P, f, targets, n_head, rules=REFERENCE):
    """Every gradient of Part 3 by hand, from the loss back to x."""
    d = {}
    d["logits"] = rules.cross_entropy_backward(f["logits"], targets)      # (T, V)
    d["hf"], d_Wlm_t = rules.matmul_backward(f["hf"], P["Wlm"].T, d["logits"])
    d["Wlm"] = d_Wlm_t.T
    d["x2"], d["gf"], d["bf"] = rules.layernorm_backward(f["x2"], P["gf"], d["hf"])
    # x2 = x1 + mlp(h2): the residual hands d x2 to both terms unchanged
    d_m, d["Wmlp"], d["bmlp"] = linear_backward(f["m"], P["Wmlp"], d["x2"], rules)
    d["u"] = rules.gelu_backward(f["u"], d_m)
    d["h2"], d["Wfc"], d["bfc"] = linear_backward(f["h2"], P["Wfc"], d["u"], rules)
    d_x1_via_ln2, d["g2"], d["b2"] = rules.layernorm_backward(f["x1"], P["g2"], d["h2"])
    d["x1"] = d["x2"] + d_x1_via_ln2                                      # x1 used twice: a sum
    attn = mha_backward(f["h1"], P, f["attn"], d["x1"], n_head, rules)   # Part 2, d z = d x1
    d.update({name: attn[name] for name in ("Wattn", "battn", "Wproj", "bproj")})
    d_x_via_ln1, d["g1"], d["b1"] = rules.layernorm_backward(f["x"], P["g1"], attn["x"])
    d["x"] = d["x1"] + d_x_via_ln1                                        # x used twice: a sum
    return d


def block_parameters(rng, C, V):
    P = mha_parameters(rng, C)
    for ln in ("1", "2", "f"):
        P["g" + ln] = 1 + 0.1 * rng.normal(size=C)
        P["b" + ln] = 0.1 * rng.normal(size=C)
    P.update(Wfc=rng.normal(size=(4 * C, C)) / math.sqrt(C), bfc=0.1 * rng.normal(size=4 * C),
             Wmlp=rng.normal(size=(C, 4 * C)) / math.sqrt(4 * C), bmlp=0.1 * rng.normal(size=C),
             Wlm=rng.normal(size=(V, C)) / math.sqrt(C))
    return P


class BlockWithHead(Block):
    """models.gpt.Block, then a final LayerNorm and lm_head: Part 3's network in minigrad."""

    def __init__(self, config, vocab_size):
        super().__init__(config)
        self.ln_f = LayerNorm(config.n_embd)
        self.lm_head = Linear(config.n_embd, vocab_size, bias=False)

    def forward(self, x, targets):
        logits = self.lm_head(self.ln_f(super().forward(x)))          # (1, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)


def block_and_loss(sizes, rng, check, rules):
    T, C, nh, V = sizes["T"], sizes["C"], sizes["heads"], sizes["vocab"]
    print(f"\n\nPART 3: a whole pre-LayerNorm block, lm_head and the loss, then one SGD step "
          f"(T={T}, C={C}, {nh} heads, vocabulary {V})")
    print("=" * 100)
    say("""
    As models.gpt.Block, followed by what ends a GPT:
        h1 = LayerNorm_1(x);   x1 = x + attention(h1)                (Part 2's attention)
        h2 = LayerNorm_2(x1);  x2 = x1 + c_proj(GELU(c_fc(h2)))      (the MLP: C -> 4C -> C)
        logits = LayerNorm_f(x2) @ Wlm.T                             (T, V)
        L = mean over tokens t of -log softmax(logits[t])[target t]  (cross-entropy)

    Cross-entropy. With p = softmax(logits[t]), -log p[y] = -logits[t, y] + log sum exp,
    whose gradient is -onehot(y) + p: d logits = (p - onehot) / T (the mean over T tokens).
    It is small where the model already puts its probability on the target.

    LayerNorm over a row x of C numbers: mu = mean(x), s = sqrt(var(x) + eps),
    x_hat = (x - mu) / s, y = x_hat * gamma + beta. gamma, beta are used by every row:
        d beta = sum over rows of d y,   d gamma = sum over rows of d y * x_hat.
    d x_hat = d y * gamma, and since mu and s depend on every entry of the row,
        d x = (d x_hat - mean(d x_hat) - x_hat * mean(d x_hat * x_hat)) / s
    (the two means remove what a shift or a rescale of the row would do: LayerNorm's
    output cannot change under either).

    GELU (tanh form): g(u) = 0.5 u (1 + tanh(a (u + 0.044715 u^3))), a = sqrt(2/pi). With
    t = that tanh:  g'(u) = 0.5 (1 + t) + 0.5 u (1 - t^2) a (1 + 3 * 0.044715 u^2),
    and d u = d g * g'(u), entry by entry.

    The residual x1 = x + attention(h1): addition hands d x1 to both terms unchanged. x is
    used twice (the residual and LayerNorm_1), so d x = d x1 + (what LayerNorm_1 sends back);
    the same for x1 with the MLP's residual: gradients add where a value is used twice.""")
    x = rng.normal(size=(T, C))
    P = block_parameters(rng, C, V)
    targets = rng.integers(0, V, size=T)
    f = block_forward(x, P, targets, nh)
    show("logits = LayerNorm_f(x2) @ Wlm.T", f["logits"])
    print(f"targets {targets.tolist()}   L = {f['loss']:.6f}")

    model = BlockWithHead(GPTConfig(block_size=T, vocab_size=V, n_layer=1, n_head=nh,
                                    n_embd=C, dropout=0.0), V)
    named = dict(model.named_parameters())
    for short, long in BLOCK_PARAMETERS.items():
        named[long].data = P[short].copy()
    x_t = mg.tensor(x[None], requires_grad=True)                  # (1, T, C)
    loss_t = model(x_t, mg.tensor(targets))
    check.same("L of models.gpt.Block + ln_f + lm_head", f["loss"], loss_t.item())
    loss_t.backward()
    d = block_backward(P, f, targets, nh, rules)

    def loss_of(**changed):
        return block_forward(changed.pop("x", x), {**P, **changed}, targets, nh)["loss"]

    print("\nBACKWARD through the block: (a) by hand, (b) minigrad, (c) finite differences")
    print("-" * 100)
    show("d logits = (p - onehot) / T", d["logits"], "(cross-entropy)")
    print(f"  (row t is p - onehot over {T}: its target entry is p[target] - 1 < 0, the rest "
          f"p > 0; each row sums to 0, here up to {np.abs(d['logits'].sum(axis=1)).max():.0e})")
    for short, long in [*BLOCK_PARAMETERS.items(), ("x", "x")]:
        tensor = x_t if short == "x" else named[long]
        at = x if short == "x" else P[short]
        by_minigrad = tensor.grad.numpy()[0] if short == "x" else tensor.grad.numpy()
        print(f"d {long}  {np.shape(at)}:")
        check.three_ways(f"block d {long}", d[short], by_minigrad,
                         lambda a, short=short: loss_of(**{short: a}), at)
    sgd_step(model, P, d, x, targets, nh, f["loss"], check)


def sgd_step(model, P, d, x, targets, n_head, loss, check):
    say("""
    ONE SGD STEP. theta <- theta - lr * g, with g the gradient just checked. To first
    order (Taylor), L(theta - lr g) ~ L(theta) - lr * g.g, so the predicted change is
    -lr * |g|^2 (|g|^2: every parameter's squared gradient, summed). The gap is the
    second-order term, of size lr^2: it shrinks 100x for each 10x smaller lr.""")
    squared = sum(float((d[short] ** 2).sum()) for short in BLOCK_PARAMETERS)
    print(f"\n|g|^2 over the {sum(P[s].size for s in BLOCK_PARAMETERS)} parameters = {squared:.6f}")
    print(f"{'lr':>8} {'predicted -lr|g|^2':>20} {'actual change':>16} {'actual/predicted':>18}")
    for lr in (0.3, 0.1, 0.01, 0.001):
        stepped = {s: P[s] - lr * d[s] for s in BLOCK_PARAMETERS}
        actual = block_forward(x, {**P, **stepped}, targets, n_head)["loss"] - loss
        predicted = -lr * squared
        print(f"{lr:>8g} {predicted:>20.6e} {actual:>16.6e} {actual / predicted:>18.4f}")
    lr = 0.1
    SGD(model.parameters(), lr=lr).step()                          # minigrad's optimizer
    named = dict(model.named_parameters())
    stepped = {s: P[s] - lr * d[s] for s in BLOCK_PARAMETERS}
    with mg.no_grad():
        after = model(mg.tensor(x[None]), mg.tensor(targets)).item()
    by_hand = block_forward(x, {**P, **stepped}, targets, n_head)["loss"]
    worst = max(float(np.abs(named[long].data - stepped[short]).max())
                for short, long in BLOCK_PARAMETERS.items())
    print(f"\nminigrad.optim.SGD(lr={lr}).step() moves every parameter as by hand "
          f"(worst |difference| {worst:.1e}):")
    check.same(f"L after the step, by hand {by_hand:.6f} vs minigrad {after:.6f}", by_hand, after)


# --- Part 4: why divide by sqrt(head size) ---------------------------------------------

def sqrt_d_rows(head_sizes, T, trials, rng):
    """For each head size: mean largest weight and mean |d scores| with and without 1/sqrt(hs).

    q and k have independent N(0, 1) entries, as after LayerNorm and a projection at
    initialization, and so has d weights (the gradient arriving from out = weights @ v, the
    same at every head size); each query sees all T keys (no mask); the means are over every
    query row of `trials` draws."""
    rows = []
    for hs in head_sizes:
        top = {True: [], False: []}
        grad = {True: [], False: []}
        for _ in range(trials):
            q, k = rng.normal(size=(T, hs)), rng.normal(size=(T, hs))
            d_weights = rng.normal(size=(T, T))          # what arrives from "out = weights @ v"
            for scale in (True, False):
                scores = q @ k.T / (math.sqrt(hs) if scale else 1.0)      # (T, T)
                w = softmax_rows(scores)
                d_scores = softmax_backward(w, d_weights)               # d of softmax's input
                top[scale].append(w.max(axis=-1).mean())
                grad[scale].append(np.abs(d_scores).mean())
        rows.append((hs, *(float(np.mean(top[s])) for s in (True, False)),
                     *(float(np.mean(grad[s])) for s in (True, False))))
    return rows


def sqrt_d_table(quick, seed):
    T, trials = (16, 2) if quick else (32, 8)
    print(f"\n\nPART 4: why the scores are divided by sqrt(hs) (T={T} keys, {trials} random draws "
          "per size)")
    print("=" * 100)
    say("""
    With q and k of independent unit-variance entries, a score q . k is a sum of hs terms of
    variance 1: its standard deviation is sqrt(hs). Unscaled, the scores spread further as
    heads grow, softmax puts nearly all the weight on the largest one, and its gradient
    w * (dw - rowsum(dw * w)) vanishes (w is ~1 for one key and ~0 for the rest).
    Divided by sqrt(hs), the scores have variance 1 at every head size.
    Below, d weights has N(0, 1) entries at every head size, and "d scores" is the gradient
    softmax passes back to what it takes in (scores / sqrt(hs) with the scale, the raw
    scores without it): how much of the gradient survives softmax.""")
    rows = sqrt_d_rows((16, 32, 64, 128, 256, 512), T, trials, np.random.default_rng(seed))
    print(f"\n{'head size':>9} | {'largest weight':^27} | {'mean |d scores|':^27}")
    print(f"{'':>9} | {'with 1/sqrt(hs)':>15} {'without':>11} | {'with 1/sqrt(hs)':>15} "
          f"{'without':>11}")
    for hs, top_scaled, top_raw, grad_scaled, grad_raw in rows:
        print(f"{hs:>9} | {top_scaled:>15.3f} {top_raw:>11.3f} | {grad_scaled:>15.4f} "
              f"{grad_raw:>11.4f}")
    print(f"(uniform attention over {T} keys would give {1 / T:.3f})")
    return rows


# --- pictures ----------------------------------------------------------------------

def plot_heatmaps(head, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f'\n(no picture: matplotlib is not installed; pip install -e ".[viz]" to get '
              f"{path})")
        return
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    for ax, (title, array, cmap) in zip(axes, (("attention weights", head["weights"], "viridis"),
                                               ("d scores", head["d_scores"], "coolwarm"))):
        limit = np.abs(array).max() or 1.0
        image = ax.imshow(array, cmap=cmap, vmin=0 if cmap == "viridis" else -limit, vmax=limit)
        ax.set_title(title)
        ax.set_xlabel("key j")
        ax.set_ylabel("query i")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"\nheatmaps of Part 1's weights and d scores: {path}")


# --- exercise mode: grade each rule on its own ------------------------------------------

def grade(rules, check, rng):
    """Each of the seven rules on a small case of its own, against minigrad's autograd and
    finite differences; a wrong or missing rule is named, and the others still graded."""
    print("GRADING your backward rules, each on its own (a) yours, (b) minigrad, (c) finite "
          "differences")
    print("=" * 100)
    a, b, g = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    s, g_s = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    mask = future_mask(5)[:3]
    x, gamma, g_x = rng.normal(size=(3, 5)), 1 + 0.1 * rng.normal(size=5), rng.normal(size=(3, 5))
    beta = 0.1 * rng.normal(size=5)
    logits, targets = rng.normal(size=(4, 6)), rng.integers(0, 6, size=4)

    def autograd(loss_of, *arrays):
        """minigrad's gradients of loss_of(*tensors) with respect to each array."""
        tensors = [mg.tensor(array, requires_grad=True) for array in arrays]
        loss_of(*tensors).backward()
        return [t.grad.numpy() for t in tensors]

    def ln_t(x, gamma, beta):
        return F.layer_norm(x, gamma, beta, EPS)

    cases = [  # rule, its arguments, [(gradient name, loss of that input, the input, minigrad's)]
        ("matmul_backward", (a, b, g),
         lambda: autograd(lambda A, B: (A @ B * mg.tensor(g)).sum(), a, b),
         [("dA", lambda A: float((A @ b * g).sum()), a), ("dB", lambda B: float((a @ B * g).sum()), b)]),
        ("softmax_backward", (softmax_rows(s), g_s),
         lambda: autograd(lambda S: (F.softmax(S, axis=-1) * mg.tensor(g_s)).sum(), s),
         [("ds", lambda S: float((softmax_rows(S) * g_s).sum()), s)]),
        ("mask_backward", (g_s, mask),
         lambda: autograd(lambda X: (X.masked_fill(mask, 0.0) * mg.tensor(g_s)).sum(), s),
         [("dx", lambda X: float((np.where(mask, 0.0, X) * g_s).sum()), s)]),
        ("scale_backward", (g_s, 0.5),
         lambda: autograd(lambda X: (X * 0.5 * mg.tensor(g_s)).sum(), s),
         [("dx", lambda X: float((X * 0.5 * g_s).sum()), s)]),
        ("layernorm_backward", (x, gamma, g_x),
         lambda: autograd(lambda X, G, B: (ln_t(X, G, B) * mg.tensor(g_x)).sum(), x, gamma, beta),
         [("dx", lambda X: float((layernorm(X, gamma, beta) * g_x).sum()), x),
          ("dgamma", lambda G: float((layernorm(x, G, beta) * g_x).sum()), gamma),
          ("dbeta", lambda B: float((layernorm(x, gamma, B) * g_x).sum()), beta)]),
        ("gelu_backward", (x, g_x),
         lambda: autograd(lambda U: (F.gelu(U, "tanh") * mg.tensor(g_x)).sum(), x),
         [("du", lambda U: float((gelu(U) * g_x).sum()), x)]),
        ("cross_entropy_backward", (logits, targets),
         lambda: autograd(lambda Z: F.cross_entropy(Z, mg.tensor(targets)), logits),
         [("d logits", lambda Z: cross_entropy(Z, targets), logits)]),
    ]
    for name, arguments, by_minigrad, gradients in cases:
        print(f"\n{name}: {' '.join(getattr(REFERENCE, name).__doc__.split())}")
        try:
            answer = getattr(rules, name)(*arguments)
        except NotImplementedError as error:
            check.blank(name, error)
            continue
        answers = answer if isinstance(answer, tuple) else (answer,)
        if len(answers) != len(gradients):
            check.blank(name, TypeError(f"returned {len(answers)} arrays, expected "
                                        f"{len(gradients)}: {', '.join(n for n, *_ in gradients)}"))
            continue
        for (what, loss_of, at), mine, theirs in zip(gradients, answers, by_minigrad()):
            print(f"  {what}:", end="")
            check.three_ways(f"{name} {what}", mine, theirs, loss_of, at)


def exercise(args, sizes, fd_entries):
    rules = load_rules(args.exercise)
    check = Comparisons(TOLERANCE, None)
    grade(rules, check, np.random.default_rng(args.seed))
    print("\n" + "=" * 100)
    if check.failures:
        print(f"NOT YET: {len(check.failures)} of {check.count} gradients are missing or wrong: "
              f"{', '.join(check.failures)}")
        return 1
    print(f"All {check.count} gradients of your rules are right. Now the whole tour, on them:\n")
    return tour(args, sizes, fd_entries, rules)


def tour(args, sizes, fd_entries, rules):
    rng = np.random.default_rng(args.seed)
    check = Comparisons(TOLERANCE, fd_entries)
    head = one_head(sizes, rng, check, rules)
    multi_head(sizes, rng, check, rules)
    block_and_loss(sizes, rng, check, rules)
    sqrt_d_table(args.quick, args.seed)
    if args.plot:
        plot_heatmaps(head, args.plot)

    print("\n" + "=" * 100)
    if check.failures:
        print(f"FAILED: {len(check.failures)} of {check.count} comparisons differ by more than "
              f"{TOLERANCE:g}: {', '.join(check.failures)}")
        return 1
    print(f"All {check.count} comparisons agree to within {TOLERANCE:g}.")
    return 0


def main(argv=None):
    args = parse_args(argv)
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    if args.quick:
        sizes, fd_entries = dict(T=3, C=4, hs=2, heads=2, vocab=5), 4
    else:
        sizes, fd_entries = dict(T=4, C=6, hs=3, heads=2, vocab=7), None
    if args.exercise:
        return exercise(args, sizes, fd_entries)
    return tour(args, sizes, fd_entries, REFERENCE)


if __name__ == "__main__":
    sys.exit(main())
