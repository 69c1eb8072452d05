"""A guided tour of causal self-attention, forward and backward, with every number printed.

    python examples/attention_tour.py            # T=4 tokens, C=6 channels, head size 3
    python examples/attention_tour.py --quick    # smaller, fewer finite-difference checks

Part 1 follows ONE attention head. Part 2 does the same for multi-head
attention (several heads side by side, then an output projection).

Every gradient is computed three ways and compared:
  (a) by hand: NumPy array math, following the derivation in the comments below;
  (b) by minigrad's autograd (retain_grad() keeps the gradients of intermediates);
  (c) by central finite differences, in float64:
          dL/da ~ (L(a + h) - L(a - h)) / (2h)   for one entry a at a time.
The script exits with status 1 if any two of them differ by more than 1e-6.

Notation. One sequence (a batch of 1, left out of the NumPy code): T tokens,
C channels per token, head size hs. L is a scalar loss; for any array A, "dA"
means dL/dA, an array of A's shape.

Two rules give every gradient below.

  Matmul. C = A @ B means C[i,j] = sum_k A[i,k] B[k,j]. A[i,k] appears in every
  C[i,j] (multiplied by B[k,j]), so dA[i,k] = sum_j dC[i,j] B[k,j], that is
        dA = dC @ B.T,    and by the same argument    dB = A.T @ dC.
  (Check the shapes: dA must have A's shape, and only one arrangement fits.)

  Several uses. A value used in several places gets the SUM of the gradients
  from each use (L changes through all of them at once).
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from models.attention import MultiHeadAttention, SelfAttention, causal_mask, masked_value  # noqa: E402

TOLERANCE = 1e-6  # float64 by hand vs autograd agree to ~1e-16; finite differences to ~1e-9
STEP = 1e-6       # h in the central difference


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="T=3, C=4, head size 2, and only a few finite-difference entries per array")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# --- printing and comparing -----------------------------------------------------------

def show(title, array, formula=""):
    print(f"\n{title} {formula}".rstrip() + f"    shape {array.shape}")
    print(np.array2string(np.asarray(array), prefix=""))


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
        numeric = finite_differences(loss_of, at, self.entries(at.shape))
        checked = ~np.isnan(numeric)
        worst_minigrad = float(np.max(np.abs(by_hand - by_minigrad)))
        worst_numeric = float(np.max(np.abs(by_hand - numeric)[checked]))
        agree = max(worst_minigrad, worst_numeric) <= self.tolerance
        self.count += 1
        if not agree:
            self.failures.append(what)
        entries = f"{int(checked.sum())} of {checked.size}"
        if checked.all():
            entries = f"all {checked.size}"
        print(f"  vs minigrad: {worst_minigrad:.1e}   vs finite differences ({entries} entries): "
              f"{worst_numeric:.1e}   {'agree' if agree else 'DISAGREE'}")

    def same(self, what, by_hand, by_minigrad):
        """A forward value: by hand vs minigrad."""
        worst = float(np.max(np.abs(by_hand - by_minigrad)))
        self.count += 1
        if worst > self.tolerance:
            self.failures.append(what)
        print(f"  {what}: by hand vs minigrad, worst |difference| = {worst:.1e}")


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


# --- one head, by hand ----------------------------------------------------------------

def softmax_rows(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))  # minus the row max: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def future_mask(T):
    """(T, T) bool, True above the diagonal: query i may not look at keys j > i."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)


def attention_forward(q, k, v):
    """One causal head: q, k, v (T, hs) -> every intermediate, by name."""
    T, hs = q.shape
    scores = q @ k.T                                         # (T, T): query i . key j
    scaled = scores / math.sqrt(hs)                          # (T, T): variance ~1 at init
    masked = np.where(future_mask(T), -np.inf, scaled)       # (T, T): no peeking ahead
    weights = softmax_rows(masked)                           # (T, T): each row sums to 1
    out = weights @ v                                        # (T, hs): a weighted mix of values
    return dict(scores=scores, scaled=scaled, masked=masked, weights=weights, out=out)


def attention_backward(q, k, v, weights, d_out):
    """The head's gradients, given d_out (T, hs): the derivation, one line per step."""
    T, hs = q.shape
    # out = weights @ v: the matmul rule, with A = weights and B = v.
    d_weights = d_out @ v.T                                  # (T, T)  dA = dC @ B.T
    d_v = weights.T @ d_out                                  # (T, hs) dB = A.T @ dC
    # weights = softmax(masked), row by row. For one row w = softmax(s):
    #   w_i = e^(s_i) / sum_j e^(s_j)   gives   dw_i/ds_j = w_i (delta_ij - w_j),
    # so ds_j = sum_i dw_i w_i (delta_ij - w_j) = w_j (dw_j - sum_i dw_i w_i).
    # In array form (the sum is one number per row):
    d_masked = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
    # masked = scaled, except -inf above the diagonal. Where the mask wrote -inf,
    # the scaled score was thrown away: its gradient is 0. (softmax already gave
    # 0 there: those weights are exactly 0, and d_masked has the factor w_j.)
    d_scaled = np.where(future_mask(T), 0.0, d_masked)       # (T, T)
    # scaled = scores / sqrt(hs): a constant factor passes straight through.
    d_scores = d_scaled / math.sqrt(hs)                      # (T, T)
    # scores = q @ k.T: the matmul rule with A = q and B = k.T, so
    #   dq = d_scores @ (k.T).T = d_scores @ k,  and  d(k.T) = q.T @ d_scores,
    #   which transposed is dk = d_scores.T @ q.
    d_q = d_scores @ k                                       # (T, hs)
    d_k = d_scores.T @ q                                     # (T, hs)
    return dict(weights=d_weights, v=d_v, masked=d_masked, scaled=d_scaled,
                scores=d_scores, q=d_q, k=d_k)


# --- Part 1: one head ---------------------------------------------------------------------

def one_head(sizes, rng, check):
    T, C, hs = sizes["T"], sizes["C"], sizes["hs"]
    print(f"PART 1: one causal self-attention head, T={T} tokens, C={C} channels, "
          f"head size hs={hs}, float64")
    print("=" * 100)
    x = rng.normal(size=(T, C))                       # one sequence of T token vectors
    # weights stored (out, in) as Linear does, with Linear's scale 1/sqrt(C)
    W = {name: rng.normal(size=(hs, C)) / math.sqrt(C) for name in ("Wq", "Wk", "Wv")}
    # The loss. Whatever comes after the head, its gradient with respect to `out`
    # is some (T, hs) array; L = sum(out * g_out) is the simplest loss with
    # d out = g_out, so g_out plays "the rest of the network".
    g_out = rng.normal(size=(T, hs))

    by_hand = head_forward_by_hand(x, W, g_out)
    by_minigrad = head_forward_by_minigrad(x, W, g_out, check, by_hand)
    print("\nBACKWARD: each gradient (a) by hand, (b) by minigrad, (c) by finite differences")
    print("-" * 100)
    print("Each gradient is printed as computed by hand; under it, the worst absolute difference\n"
          "from minigrad's gradient and from the finite-difference estimate.")
    by_minigrad["loss"].backward()
    head_backward_three_ways(x, W, g_out, by_hand, by_minigrad, check)


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
    t["scores"] = t["q"] @ t["k"].swapaxes(-1, -2)    # (1, T, T)
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


def head_backward_three_ways(x, W, g_out, f, t, check):
    """Every gradient of Part 1: (a) f's numbers by hand, (b) t's by minigrad, (c) numeric."""
    T, hs = g_out.shape
    q, k, v = f["q"], f["k"], f["v"]
    d = attention_backward(q, k, v, f["weights"], g_out)

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

    show("d out", g_out, "= g_out (L = sum(out * g_out))")
    check.three_ways("d out", g_out, by_minigrad("out"), loss_after_out, f["out"])
    show("d weights = d out @ v.T", d["weights"], "(matmul rule)")
    print("  (not 0 above the diagonal: L would change if those weights changed; but no score\n"
          "   can change them, so d scaled below is 0 there)")
    check.three_ways("d weights", d["weights"], by_minigrad("weights"), loss_after_weights,
                     f["weights"])
    show("d v = weights.T @ d out", d["v"], "(matmul rule)")
    check.three_ways("d v", d["v"], by_minigrad("v"), lambda a: loss_after_qkv(v=a), v)
    show("d scaled = weights * (d weights - rowsum(d weights * weights)), 0 where masked",
         d["scaled"], "(softmax)")
    check.three_ways("d scaled", d["scaled"], by_minigrad("scaled"), loss_after_scaled,
                     f["scaled"])
    show("d scores = d scaled / sqrt(hs)", d["scores"])
    check.three_ways("d scores", d["scores"], by_minigrad("scores"),
                     lambda a: loss_after_scaled(a / math.sqrt(hs)), f["scores"])
    show("d q = d scores @ k", d["q"], "(matmul rule with B = k.T)")
    check.three_ways("d q", d["q"], by_minigrad("q"), lambda a: loss_after_qkv(q=a), q)
    show("d k = d scores.T @ q", d["k"], "(matmul rule, transposed)")
    check.three_ways("d k", d["k"], by_minigrad("k"), lambda a: loss_after_qkv(k=a), k)

    # q = x @ Wq.T: the matmul rule with A = x and B = Wq.T gives d(Wq.T) = x.T @ dq,
    # so dWq = dq.T @ x. The same for k and v.
    layers = {"Wq": t["head"].query, "Wk": t["head"].key, "Wv": t["head"].value}
    for name, layer in layers.items():
        d_W = d[name[1]].T @ x                        # (hs, C)
        show(f"d {name} = d {name[1]}.T @ x", d_W, "(matmul rule, transposed)")
        check.three_ways(f"d {name}", d_W, layer.weight.grad.numpy(),
                         lambda a, name=name: loss_of(**{name: a}), W[name])

    # x feeds q, k AND v: three uses, so three gradients add up (the second rule).
    # Each use is a matmul x @ W.T, whose rule gives dx = d(use) @ W.
    d_x = d["q"] @ W["Wq"] + d["k"] @ W["Wk"] + d["v"] @ W["Wv"]  # (T, C)
    show("d x = d q @ Wq + d k @ Wk + d v @ Wv", d_x, "(x is used three times: the sum)")
    check.three_ways("d x", d_x, by_minigrad("x"), lambda a: loss_of(x=a), x)


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


def mha_backward(x, P, f, d_z, n_head):
    """Multi-head attention's gradients by hand, given d z (T, C)."""
    T, C = x.shape
    hs = C // n_head
    # z = y @ Wproj.T + bproj. The bias is added to every row (T uses), so its
    # gradient is the sum over rows; the rest is the matmul rule.
    d_Wproj = d_z.T @ f["y"]                                    # (C, C)
    d_bproj = d_z.sum(axis=0)                                   # (C,)
    d_y = d_z @ P["Wproj"]                                      # (T, C)
    # y is the heads' outputs side by side, so head h's d out is its slice of d y;
    # each head then backpropagates exactly as in Part 1.
    d_q, d_k, d_v = np.zeros((T, C)), np.zeros((T, C)), np.zeros((T, C))
    for h in range(n_head):
        cols = head_channels(h, hs)
        d_head = attention_backward(f["q"][:, cols], f["k"][:, cols], f["v"][:, cols],
                                    f["heads"][h]["weights"], d_y[:, cols])
        d_q[:, cols], d_k[:, cols], d_v[:, cols] = d_head["q"], d_head["k"], d_head["v"]
    # q, k, v are thirds of qkv: their gradients glue back together the same way.
    d_qkv = np.concatenate([d_q, d_k, d_v], axis=1)             # (T, 3C)
    return dict(Wproj=d_Wproj, bproj=d_bproj,
                Wattn=d_qkv.T @ x,                              # (3C, C)
                battn=d_qkv.sum(axis=0),                        # (3C,)
                x=d_qkv @ P["Wattn"])                           # (T, C)


def multi_head(sizes, rng, check):
    T, C, nh = sizes["T"], sizes["C"], sizes["heads"]
    print(f"\n\nPART 2: multi-head attention, {nh} heads of size {C // nh}, as in "
          "models.attention.MultiHeadAttention")
    print("=" * 100)
    print("""
c_attn makes q, k and v of every head in one matmul; head h owns channels
h*hs:(h+1)*hs of each. Each head runs Part 1's attention on its own channels;
their outputs sit side by side in y, and c_proj mixes them:
    qkv = x @ Wattn.T + battn           (T, 3C)
    q, k, v = the three C-wide thirds   (T, C) each
    y[:, head h's channels] = attention(q, k, v restricted to those channels)
    z = y @ Wproj.T + bproj             (T, C)      L = sum(z * g_z)""")
    x = rng.normal(size=(T, C))
    P = dict(Wattn=rng.normal(size=(3 * C, C)) / math.sqrt(C), battn=rng.normal(size=3 * C) * 0.1,
             Wproj=rng.normal(size=(C, C)) / math.sqrt(C), bproj=rng.normal(size=C) * 0.1)
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
    d = mha_backward(x, P, f, g_z, nh)
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


def main(argv=None):
    args = parse_args(argv)
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    if args.quick:
        sizes, fd_entries = dict(T=3, C=4, hs=2, heads=2), 4
    else:
        sizes, fd_entries = dict(T=4, C=6, hs=3, heads=2), None
    rng = np.random.default_rng(args.seed)
    check = Comparisons(TOLERANCE, fd_entries)
    one_head(sizes, rng, check)
    multi_head(sizes, rng, check)

    print("\n" + "=" * 100)
    if check.failures:
        print(f"FAILED: {len(check.failures)} of {check.count} comparisons differ by more than "
              f"{TOLERANCE:g}: {', '.join(check.failures)}")
        return 1
    print(f"All {check.count} comparisons agree to within {TOLERANCE:g}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
