"""Changing a tensor's dtype or device; the gradient goes back the same way."""
from .. import backend
from ..autograd import Function


class Cast(Function):
    needs_inputs = False

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):  # d cast: cast the gradient back
        return Cast(self.x_dtype)(gy)


class ToDevice(Function):
    needs_inputs = False

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.x_device = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):  # d move: move the gradient back
        return ToDevice(self.x_device)(gy)


def astype(x, dtype):
    return x if x.dtype == dtype else Cast(backend.numpy.dtype(dtype))(x)


def to_device(x, device):
    device = backend.normalize_device(device)
    return x if x.device == device else ToDevice(device)(x)
