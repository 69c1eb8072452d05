"""PyTorch's argument names next to NumPy's: dim= for axis=, keepdim= for keepdims=.

One decorator, `torch_names`, applied to every op (and Tensor method) that takes an
axis: both spellings work, giving both is an error.
"""
import functools

ALIASES = (("dim", "axis"), ("keepdim", "keepdims"))


def torch_names(fn):
    """Let fn(..., axis=, keepdims=) also be called as fn(..., dim=, keepdim=)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for torch_name, numpy_name in ALIASES:
            if torch_name in kwargs:
                if numpy_name in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {torch_name}= and {numpy_name}= "
                                    "(they are the same argument; pass one)")
                kwargs[numpy_name] = kwargs.pop(torch_name)
        return fn(*args, **kwargs)

    return wrapper


__all__ = ["torch_names"]
