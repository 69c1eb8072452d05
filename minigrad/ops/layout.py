"""PyTorch's shape and layout ops: flip, roll, repeat, tile, repeat_interleave, pad,
tril, triu, diagonal, diag, flatten, unflatten, movedim, meshgrid, one_hot, clone,
contiguous, and einsum.

All but Clone and Einsum are composites of getitem, reshape, permute, broadcast,
concatenate and where, so their gradients come from those ops (a pick's gradient is a
scatter-add back to the places picked) and need no backward of their own.
"""
import string

from ..autograd import Function, as_tensor
from .indexing import ScatterAdd, getitem, index_select, where
from .shape import _axis, broadcast_to, concatenate, permute, reshape


def _dims(dims, ndim, op):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(_axis(d, ndim, op) for d in dims)


def flip(x, dims):
    """Reverse the order of elements along dims."""
    x = as_tensor(x)
    dims = _dims(dims, x.ndim, "flip")
    return getitem(x, tuple(slice(None, None, -1) if d in dims else slice(None)
                            for d in range(x.ndim)))


def roll(x, shifts, dims=None):
    """Shift elements along dims, wrapping around (over the flattened tensor without dims)."""
    x = as_tensor(x)
    if dims is None:
        return roll(x.reshape(-1), shifts, 0).reshape(x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = _dims(dims, x.ndim, "roll")
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    for shift, d in zip(shifts, dims):
        n = x.shape[d]
        if n:
            index = x.xp.roll(x.xp.arange(n), shift)
            x = index_select(x, d, index)
    return x


def repeat(x, *sizes):
    """Tile x: repeat(x, 2, 3) makes 2 copies along axis 0 and 3 along axis 1 (torch's
    Tensor.repeat; there may be more sizes than axes: new leading axes)."""
    x = as_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes for a tensor with {x.ndim} dimensions "
                         "(give at least one per dimension)")
    x = x.reshape((1,) * (len(sizes) - x.ndim) + x.shape)
    # (a, b) -> (1, a, 1, b) -> (r0, a, r1, b) -> (r0 a, r1 b)
    spread = x.reshape(tuple(n for side in x.shape for n in (1, side)))
    grown = broadcast_to(spread, tuple(n for r, side in zip(sizes, x.shape) for n in (r, side)))
    return grown.reshape(tuple(r * side for r, side in zip(sizes, x.shape)))


def tile(x, reps):
    """torch.tile: repeat, with reps padded by leading ones when shorter than x's rank."""
    x = as_tensor(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    return repeat(x, (1,) * (x.ndim - len(reps)) + reps)


def repeat_interleave(x, repeats, dim=None):
    """Each element (or slice along dim) repeated `repeats` times in place: [a, b] ->
    [a, a, b, b]. repeats: an int, or one count per slice. dim=None flattens first."""
    x = as_tensor(x)
    if dim is None:
        x, dim = x.reshape(-1), 0
    dim = _axis(dim, x.ndim, "repeat_interleave")
    counts = repeats.tolist() if hasattr(repeats, "creator") else repeats  # CuPy: int or list
    index = x.xp.repeat(x.xp.arange(x.shape[dim]), counts)
    return index_select(x, dim, index)


def _pad_index(xp, n, before, after, mode):
    """The source position of each padded position along one axis."""
    positions = xp.arange(-before, n + after)
    if mode == "replicate":
        return xp.clip(positions, 0, n - 1)
    period = 2 * (n - 1)  # reflect: ... 2 1 | 0 1 2 3 | 2 1 ...
    folded = xp.abs(positions) % period
    return xp.where(folded >= n, period - folded, folded)


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad: `pad` lists (before, after) pairs from the LAST axis
    backwards, (left, right, top, bottom, ...). mode 'constant' fills with value,
    'reflect' mirrors without repeating the edge, 'replicate' repeats the edge."""
    x = as_tensor(x)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {tuple(pad)} must have an even length of at most 2 x "
                         f"{x.ndim} (a (before, after) pair per padded axis)")
    if mode not in ("constant", "reflect", "replicate"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
    for k in range(len(pad) // 2):
        axis, before, after = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
        n = x.shape[axis]
        if min(before, after) < 0:
            raise ValueError(f"pad: negative padding {tuple(pad)} (cropping) is not supported")
        if mode == "constant":
            shape = list(x.shape)
            pieces = []
            for width in (before, 0, after):
                if width:
                    shape[axis] = width
                    pieces.append(as_tensor(x.xp.full(tuple(shape), value, x.dtype)))
                else:
                    pieces.append(None)
            x = concatenate([p for p in (pieces[0], x, pieces[2]) if p is not None], axis)
            continue
        if mode == "reflect" and max(before, after) >= n:
            raise ValueError(f"pad: reflect padding of {max(before, after)} needs an axis "
                             f"longer than that, axis {axis} has {n}")
        if n == 0:
            raise ValueError(f"pad: cannot {mode}-pad the empty axis {axis}")
        x = index_select(x, axis, _pad_index(x.xp, n, before, after, mode))
    return x


def _triangle(x, diagonal, lower):
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'} needs at least 2 dimensions, "
                         f"got shape {x.shape}")
    rows, cols = x.shape[-2:]
    make = x.xp.tri(rows, cols, diagonal, dtype=bool)  # below and on the diagonal
    keep = make if lower else ~x.xp.tri(rows, cols, diagonal - 1, dtype=bool)
    return where(as_tensor(keep), x, 0.0)


def tril(x, diagonal=0):
    """The lower triangle of the last two axes (on and below `diagonal`), zeros above."""
    return _triangle(x, diagonal, lower=True)


def triu(x, diagonal=0):
    """The upper triangle (on and above `diagonal`), zeros below."""
    return _triangle(x, diagonal, lower=False)


def diagonal(x, offset=0, dim1=0, dim2=1):
    """The diagonal of dims dim1, dim2 as the last axis (torch.diagonal)."""
    x = as_tensor(x)
    dim1, dim2 = _axis(dim1, x.ndim, "diagonal"), _axis(dim2, x.ndim, "diagonal")
    if dim1 == dim2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, both are {dim1}")
    rest = [d for d in range(x.ndim) if d not in (dim1, dim2)]
    moved = permute(x, *rest, dim1, dim2)
    rows, cols = moved.shape[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(0, min(rows - start_row, cols - start_col))
    i = x.xp.arange(length)
    return getitem(moved, (Ellipsis, i + start_row, i + start_col))


def diag(x, offset=0):
    """1-D x: a square matrix with x on diagonal `offset`; 2-D x: that diagonal
    (torch calls the argument `diagonal`, which is also the name of the op above)."""
    x = as_tensor(x)
    if x.ndim == 2:
        return diagonal(x, offset)
    if x.ndim != 1:
        raise ValueError(f"diag needs a 1-D or 2-D tensor, got shape {x.shape}")
    n = x.shape[0] + abs(offset)
    i = x.xp.arange(x.shape[0])
    rows, cols = i + max(-offset, 0), i + max(offset, 0)
    flat = rows * n + cols
    return ScatterAdd((flat,), (n * n,))(x).reshape(n, n)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the axes start_dim..end_dim into one."""
    x = as_tensor(x)
    if x.ndim == 0:
        return x.reshape(1)
    start, end = _axis(start_dim, x.ndim, "flatten"), _axis(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


def unflatten(x, dim, sizes):
    """Split axis dim into `sizes` (one of them may be -1)."""
    x = as_tensor(x)
    dim = _axis(dim, x.ndim, "unflatten")
    return reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


def movedim(x, source, destination):
    """Move axes `source` to positions `destination`; the others keep their order."""
    x = as_tensor(x)
    source, destination = _dims(source, x.ndim, "movedim"), _dims(destination, x.ndim, "movedim")
    if len(source) != len(destination):
        raise ValueError(f"movedim: {len(source)} source dims, {len(destination)} destinations")
    order = [d for d in range(x.ndim) if d not in source]
    for dst, src in sorted(zip(destination, source)):
        order.insert(dst, src)
    return permute(x, *order)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors; indexing 'ij' (matrix, torch's default) or 'xy'."""
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        tensors = tuple(tensors[0])
    tensors = [as_tensor(t) for t in tensors]
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    sizes = [t.shape[0] for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for k, t in enumerate(tensors):
        axis = {0: 1, 1: 0}.get(k, k) if indexing == "xy" and len(tensors) >= 2 else k
        shape = [1] * len(tensors)
        shape[axis] = t.shape[0]
        grids.append(broadcast_to(t.reshape(tuple(shape)), tuple(sizes)))
    return tuple(grids)


def one_hot(indices, num_classes=-1):
    """int64 tensor (..., num_classes) with a 1 at each index (num_classes=-1: max + 1)."""
    indices = as_tensor(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs integer indices, got dtype {indices.dtype}")
    if num_classes < 0:
        num_classes = int(indices.data.max()) + 1 if indices.numel() else 0
    if indices.numel() and (int(indices.data.min()) < 0 or int(indices.data.max()) >= num_classes):
        raise IndexError(f"one_hot: indices must lie in [0, {num_classes}), got "
                         f"{int(indices.data.min())}..{int(indices.data.max())}")
    xp = indices.xp
    return as_tensor((indices.data[..., None] == xp.arange(num_classes)).astype("int64"))


class Clone(Function):
    needs_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, gy):  # d copy = the same gradient
        return gy


def clone(x):
    """A copy with its own memory (and version counter), still in the graph."""
    return Clone()(as_tensor(x))


def contiguous(x):
    """x itself when its array is C-contiguous, else a contiguous copy (in the graph)."""
    x = as_tensor(x)
    return x if x.data.flags.c_contiguous else clone(x)


# --- einsum ---------------------------------------------------------------------------------

def _parse_einsum(equation, operands):
    equation = equation.replace(" ", "")
    if "." in equation:
        raise ValueError(f"einsum: '...' is not supported ({equation!r}); name every axis")
    inputs, arrow, output = equation.partition("->")
    subscripts = inputs.split(",")
    if len(subscripts) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(subscripts)} operands, "
                         f"got {len(operands)}")
    for sub, x in zip(subscripts, operands):
        if len(sub) != x.ndim:
            raise ValueError(f"einsum: subscripts {sub!r} for an operand of shape {x.shape}")
        if len(set(sub)) != len(sub):
            raise ValueError(f"einsum: repeated subscript in {sub!r} (diagonals) is not "
                             "supported; use diagonal() first")
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        letters = "".join(subscripts)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return subscripts, output


class Einsum(Function):
    """einsum(equation, *operands). Each operand's gradient is another einsum: the output's
    gradient contracted with the other operands, onto this operand's subscripts (letters
    summed in this operand alone are broadcast back)."""

    def __init__(self, subscripts, output):
        self.subscripts, self.output_letters = subscripts, output

    def forward(self, *operands):
        spec = ",".join(self.subscripts) + "->" + self.output_letters
        return self.xp.einsum(spec, *operands, optimize=len(operands) > 2)

    def backward(self, gy):  # d einsum(a, b) / da = einsum(gy, b -> a's letters)
        grads = []
        for i, x in enumerate(self.inputs):
            if not x.requires_grad:
                grads.append(None)
                continue
            others = [(s, t) for j, (s, t) in enumerate(zip(self.subscripts, self.inputs))
                      if j != i]
            reachable = set(self.output_letters).union(*[set(s) for s, _ in others])
            sub = self.subscripts[i]
            target = "".join(c for c in sub if c in reachable)
            g = Einsum([self.output_letters] + [s for s, _ in others], target)(
                gy, *[t for _, t in others])
            if target != sub:  # letters only x had were summed over: every place gets gy
                g = broadcast_to(g.reshape(tuple(x.shape[k] if c in target else 1
                                                 for k, c in enumerate(sub))), x.shape)
            grads.append(g)
        return tuple(grads)


def einsum(equation, *operands):
    """Einstein summation, e.g. einsum('bij,bjk->bik', a, b) (torch.einsum / numpy.einsum).
    Operands may also be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    operands = [as_tensor(t) for t in operands]
    subscripts, output = _parse_einsum(equation, operands)
    if not set(output) <= set("".join(subscripts)) or not set("".join(subscripts)) <= set(
            string.ascii_letters):
        raise ValueError(f"einsum: {equation!r} uses an output letter no operand has, or a "
                         "character that is not a letter")
    return Einsum(subscripts, output)(*operands)


__all__ = ["flip", "roll", "repeat", "tile", "repeat_interleave", "pad", "tril", "triu",
           "diagonal", "diag", "flatten", "unflatten", "movedim", "meshgrid", "one_hot",
           "clone", "contiguous", "einsum"]
