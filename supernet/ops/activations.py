"""Per-unit activations of unit groups, resolved by name.

Examples:
    >>> import torch
    >>> from supernet.units import ACTIVATIONS, resolve_activation
    >>> "relu" in ACTIVATIONS
    True
    >>> resolve_activation("relu")(torch.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from supernet.errors import DuplicateNameError, UnknownNameError, did_you_mean

__all__ = ["ACTIVATIONS", "register_activation", "resolve_activation"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "silu": F.silu,
    "elu": F.elu,
    "softplus": F.softplus,
    "leaky_relu": F.leaky_relu,
}


def register_activation(name: str, fn: Callable, override: bool = False) -> None:
    """Make ``fn`` (elementwise, so that it acts per unit) available as ``act=name``."""
    if name in ACTIVATIONS and not override:
        raise DuplicateNameError(f"activation {name!r} is registered already; pass override=True")
    ACTIVATIONS[name] = fn


def resolve_activation(name, where: str = "") -> Callable:
    """The function of activation ``name``; fails with the list of known names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        at = f"{where}: " if where else ""
        raise UnknownNameError(
            f"{at}unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}."
            f"{did_you_mean(name, ACTIVATIONS)} Add your own with register_activation()."
        ) from None
