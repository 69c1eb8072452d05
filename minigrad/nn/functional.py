"""torch.nn.functional's place: `import minigrad.nn.functional as F` gives the same
functions as minigrad.functional."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
