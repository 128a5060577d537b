"""Initialization policies for what an edit creates.

* ``"random"``: the layer's own default initialization.
* ``"zero"``: the created entity starts with zero output (function-preserving): the last
  linear map of a new op is zeroed, a new connection starts at weight zero.
* ``"split"`` (copy-and-split, Net2Net / network morphism): the created entity copies an
  existing one (kernels are zero-padded to a larger size, which computes the same
  function) and the two share the original's contribution, so the output is unchanged;
  ``noise`` adds Gaussian noise to the copy to break the symmetry (then the output changes
  by about that much).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from supernet.errors import EditError

__all__ = ["POLICIES", "check_policy", "zero_output", "morph_into"]

POLICIES = ("random", "zero", "split")


def check_policy(init: str) -> str:
    if init not in POLICIES:
        raise EditError(f"unknown init policy {init!r}; expected one of {list(POLICIES)}")
    return init


def zero_output(spec, module: nn.Module, where: str) -> None:
    """Make ``module`` (a freshly built op ``spec``) output zeros, keeping it trainable."""
    if spec.zero:
        return
    if spec.zero_output is None:
        raise EditError(
            f"{where}: op {spec.name!r} has no zero_output hook, so it cannot start at zero "
            "output; use init='split' from a candidate it can copy, init='random', or register "
            "the op with zero_output=..."
        )
    try:
        spec.zero_output(module)
    except (ValueError, AttributeError) as exc:
        raise EditError(f"{where}: op {spec.name!r} cannot start at zero output: {exc}") from None


def _pad_center(src: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """Zero-pad ``src`` symmetrically in its trailing (kernel) dims to ``shape``."""
    if src.dim() != len(shape) or src.dim() < 3 or src.shape[:2] != shape[:2]:
        return None
    pads = []
    for s, t in zip(reversed(src.shape[2:]), reversed(shape[2:])):
        d = t - s
        if d < 0 or d % 2:
            return None
        pads += [d // 2, d // 2]
    return F.pad(src, pads)


def morph_into(src: nn.Module, dst: nn.Module, where: str, noise: float = 0.0,
               generator: torch.Generator | None = None) -> None:
    """Copy ``src``'s parameters and buffers into ``dst`` (same structure, kernels may grow).

    Raises :class:`EditError` naming the first tensor that cannot be carried.
    """
    s_state = src.state_dict()
    d_state = dst.state_dict()
    if list(s_state) != list(d_state):
        raise EditError(
            f"{where}: cannot copy {type(src).__name__} into {type(dst).__name__}: their "
            "tensors differ; split from a candidate of the same structure"
        )
    with torch.no_grad():
        for name, value in s_state.items():
            target = d_state[name]
            if value.shape == target.shape:
                new = value.clone()
            else:
                new = _pad_center(value, target.shape)
                if new is None:
                    raise EditError(
                        f"{where}: tensor {name!r} of shape {tuple(value.shape)} cannot grow "
                        f"into {tuple(target.shape)} (only kernels grow, symmetrically)"
                    )
            if noise and new.is_floating_point() and name in dict(dst.named_parameters()):
                new = new + noise * torch.randn(new.shape, generator=generator).to(new)
            target.copy_(new)
