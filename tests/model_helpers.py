"""Helpers for the model tests: float64 copies of modules and gradchecks that
cover a module's parameters as well as its inputs."""
import numpy

import minigrad


def to_float64(module):
    """Cast every parameter of `module` to float64 in place; returns the module."""
    for p in module.parameters():
        p.data = p.data.astype(numpy.float64)
    return module


def _owner(module, dotted_name):
    """The module that holds the parameter `dotted_name`, and the attribute name there."""
    *path, attribute = dotted_name.split(".")
    for part in path:
        module = dict(module.named_children())[part]
    return module, attribute


def gradcheck_module(module, forward, inputs=(), **kwargs):
    """gradcheck forward(*inputs) with respect to the inputs that require grad AND every
    parameter of `module` (a tied parameter is one input, bound under all its names)."""
    unique = list(module.named_parameters())
    names_of = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names_of.setdefault(id(p), []).append(name)
    originals = {name: p for name, p in module.named_parameters(remove_duplicate=False)}
    inputs = list(inputs)

    def fn(*args):
        xs, params = args[:len(inputs)], args[len(inputs):]
        for (_, original), value in zip(unique, params):
            for name in names_of[id(original)]:
                setattr(*_owner(module, name), value)
        return forward(*xs)

    try:
        # every parameter requires grad, so gradcheck differentiates exactly the
        # parameters and the inputs marked requires_grad
        return minigrad.gradcheck(fn, [*inputs, *(p for _, p in unique)], **kwargs)
    finally:
        for name, p in originals.items():
            setattr(*_owner(module, name), p)
