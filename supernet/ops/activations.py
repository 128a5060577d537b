"""Per-unit activations of unit groups, resolved by name.

Examples:
    >>> import torch
    >>> from supernet.ops.activations import ACTIVATIONS, resolve_activation
    >>> "relu" in ACTIVATIONS
    True
    >>> resolve_activation("relu")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    >>> resolve_activation("rellu", "g: node 'h'")
    Traceback (most recent call last):
    ...
    supernet.errors.UnknownNameError: g: node 'h': could not resolve activation 'rellu' among
    [...]; did you mean 'relu'? register one with
    supernet.ops.activations.register_activation(name, fn)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from supernet.registry import Registry

__all__ = ["ACTIVATIONS", "register_activation", "resolve_activation"]

#: Activation name -> elementwise function (reads as a mapping: ``"relu" in ACTIVATIONS``,
#: ``ACTIVATIONS["relu"]``, ``sorted(ACTIVATIONS)``).
ACTIVATIONS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry(
    "activation",
    hint="register one with supernet.ops.activations.register_activation(name, fn)",
)

for _name, _fn in {
    "identity": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "silu": F.silu,
    "elu": F.elu,
    "softplus": F.softplus,
    "leaky_relu": F.leaky_relu,
}.items():
    ACTIVATIONS.register(_name, _fn)


def register_activation(name: str, fn: Callable, override: bool = False) -> Callable:
    """Make ``fn`` (elementwise, so that it acts per unit) available as ``act=name``.

    Returns ``fn``.

    Raises:
        DuplicateNameError: ``name`` is registered already and ``override`` is False.
    """
    return ACTIVATIONS.register(name, fn, override=override)


def resolve_activation(name, where: str = "") -> Callable:
    """The function of activation ``name``; fails with the list of known names."""
    return ACTIVATIONS.resolve(name, where)
