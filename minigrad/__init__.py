"""minigrad: a small, readable autograd framework on NumPy (CPU) or CuPy (GPU).

    import minigrad as mg
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x @ x.T).sum()
    y.backward()          # x.grad == 2 * x

Where things live:
  tensor.py     the Tensor class          autograd.py  Function and the backward pass
  ops/          every op, forward and backward side by side
  backend.py    NumPy/CuPy                gradcheck.py finite-difference checks
  nn.py         Module, Parameter         optim.py     SGD, Adam, AdamW, schedules
  threads.py    threads at run time (BLAS held at one; ops split their own work)
"""
# tensor first: it loads autograd, then the ops, which build on both
from .tensor import Tensor, as_tensor, tensor  # noqa: F401, I001

from . import functional, nn, optim, threads  # noqa: F401
from .autograd import enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .backend import cuda_available, get_default_device, set_default_device  # noqa: F401
from .debug import detect_anomaly, profile  # noqa: F401
from .creation import *  # noqa: F401,F403 - zeros, ones, randn, float32, ...
from .dtypes import *  # noqa: F401,F403 - torch's dtype names: float, long, double, half ...
from .functional import *  # noqa: F401,F403 - every op as a function
from . import cuda, gradcheck  # noqa: F401 - gradcheck: the module, callable as its function
from .gradcheck import GradcheckError, gradgradcheck  # noqa: F401
from .random import Generator, manual_seed  # noqa: F401
from .serialization import load, save  # noqa: F401
from .threads import get_num_threads, set_num_threads  # noqa: F401

__version__ = "0.1.0"

# every public name above, for help(minigrad) and `from minigrad import *` (keep last)
__all__ = sorted(name for name in dir() if not name.startswith("_"))
