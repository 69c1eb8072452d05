"""minigrad.save(obj, path) / minigrad.load(path): torch.save's job, without pickle.

obj may nest dicts, lists and tuples of tensors, NumPy arrays and plain values (None,
bool, int, float, str), e.g. {'model': model.state_dict(), 'optim': optimizer.state_dict(),
'step': 100}. The arrays go into the same atomic .npz checkpoint format as
minigrad/checkpoint.py; the structure around them is JSON in its header. Loading never
runs code from the file, so a file from anywhere is safe to open.
"""
import numpy

from . import backend
from .checkpoint import CheckpointError, load_arrays, save_arrays
from .nn import Parameter
from .tensor import Tensor

__all__ = ["save", "load"]

_PLAIN = (type(None), bool, int, float, str)


def save(obj, path):
    """Write obj (nested dicts/lists/tuples of tensors, arrays and plain values) to path."""
    arrays = {}
    tree = _encode(obj, arrays, "obj")
    save_arrays(path, arrays, {"saved": "minigrad.save", "tree": tree})


def load(path, map_location=None, weights_only=True):
    """Read what save() wrote. Tensors come back on map_location ('cpu' or 'cuda'; default:
    the default device). weights_only is accepted for torch's sake: loading is always safe."""
    arrays, metadata = load_arrays(path)
    if metadata.get("saved") != "minigrad.save":
        raise CheckpointError(f"{path}: a minigrad checkpoint, but not one written by "
                              "minigrad.save (use Module.load or load_arrays)")
    device = backend.normalize_device(map_location)
    return _decode(metadata["tree"], arrays, device)


def _encode(obj, arrays, where):
    if isinstance(obj, Tensor):
        name = f"a{len(arrays)}"
        arrays[name] = obj.numpy()
        return {"tensor": name, "requires_grad": obj.requires_grad,
                "parameter": isinstance(obj, Parameter)}
    if backend.is_array(obj) or isinstance(obj, numpy.generic):
        name = f"a{len(arrays)}"
        arrays[name] = backend.to_numpy(obj if backend.is_array(obj) else numpy.asarray(obj))
        return {"array": name, "scalar": isinstance(obj, numpy.generic)}
    if isinstance(obj, _PLAIN):
        return {"value": obj}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays, f"{where} key"), _encode(v, arrays, f"{where}[{k!r}]")]
                         for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"minigrad.save: {where} is a {type(obj).__name__}; only tensors, arrays, "
                    "None, bool, int, float, str and dicts/lists/tuples of them can be saved "
                    "(save a module's state_dict(), not the module)")


def _decode(node, arrays, device):
    if "tensor" in node:
        array = backend.to_device(arrays[node["tensor"]], device)
        if node.get("parameter"):
            return Parameter(array, requires_grad=node["requires_grad"])
        return Tensor(array, requires_grad=node["requires_grad"])
    if "array" in node:
        array = arrays[node["array"]]
        return array[()] if node.get("scalar") else array
    if "value" in node:
        return node["value"]
    if "dict" in node:
        return {_decode(k, arrays, device): _decode(v, arrays, device) for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays, device) for v in node["list"]]
    return tuple(_decode(v, arrays, device) for v in node["tuple"])
