"""Keep optimizers in step with structural edits.

When an edit removes parameters, they leave every optimizer (with their state); when it
creates parameters, they join the param group of a sibling; when it resizes a parameter,
the new tensor takes over the old one's state, sliced the same way (momentum buffers, Adam
moments), so that training continues as if the removed entries had never existed.

A created entry of a resized tensor starts with zero state. Adam keeps one step count per
tensor, so such an entry's second moment starts at zero under the bias correction of the
tensor's many steps: its first updates are larger than a fresh optimizer's (up to
``(1 - β1) / sqrt(1 - β2)`` times the learning rate, about 16x with DARTS' betas), until
its second moment has built up (a few hundred steps at ``β2 = 0.999``).

An edit that fails puts the optimizers back as they were from :func:`save_state`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

__all__ = ["remove_params", "add_params", "replace_param", "save_state", "OptimizerState"]


def _as_list(optimizers) -> list[torch.optim.Optimizer]:
    if optimizers is None:
        return []
    if isinstance(optimizers, torch.optim.Optimizer):
        return [optimizers]
    return list(optimizers)


class OptimizerState:
    """What :func:`remove_params`, :func:`add_params` and :func:`replace_param` change in
    some optimizers: their param groups (the lists of parameters and the options) and their
    per-parameter state. :meth:`restore` puts them back in place, the very same objects.

    The functions above never write into a state tensor: they drop it or build a new one,
    so references (no copies) are enough to restore the state bitwise.
    """

    def __init__(self, optimizers):
        self.saved = []
        for opt in _as_list(optimizers):
            groups = [(g, dict(g), list(g["params"])) for g in opt.param_groups]
            state = [(p, s, dict(s)) for p, s in opt.state.items()]
            self.saved.append((opt, list(opt.param_groups), groups, state))

    def restore(self) -> None:
        for opt, group_list, groups, state in self.saved:
            for group, options, params in groups:
                group.clear()
                group.update(options)
                group["params"] = params
            opt.param_groups[:] = group_list
            opt.state.clear()
            for p, s, entries in state:
                s.clear()
                s.update(entries)
                opt.state[p] = s

    def tensors(self) -> list[torch.Tensor]:
        """Every state tensor saved (to check that none was written in place)."""
        return [v for _, _, _, state in self.saved for _, _, entries in state
                for v in entries.values() if torch.is_tensor(v)]


def save_state(optimizers) -> OptimizerState:
    """The param groups and state of ``optimizers``, to restore after a failed edit."""
    return OptimizerState(optimizers)


def remove_params(optimizers, params: Iterable[torch.Tensor]) -> None:
    """Drop ``params`` (and their state) from every optimizer."""
    ids = {id(p) for p in params}
    if not ids:
        return
    for opt in _as_list(optimizers):
        for group in opt.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in ids]
        for p in list(opt.state.keys()):
            if id(p) in ids:
                del opt.state[p]


def add_params(
    optimizers,
    params: Sequence[torch.Tensor],
    like: Iterable[torch.Tensor] = (),
    avoid: Iterable[torch.Tensor] | None = None,
) -> bool:
    """Add ``params`` to the param group holding any of ``like`` (first match wins).

    If no group holds any of ``like`` and ``avoid`` is given, they go to the first group of
    the first optimizer holding none of ``avoid`` (e.g. the weight optimizer, not the
    architecture one). Parameters already in an optimizer are left alone. Returns whether
    they were added.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        return True
    opts = _as_list(optimizers)
    like_ids = {id(p) for p in like}
    candidates = [g for o in opts for g in o.param_groups if like_ids & {id(p) for p in g["params"]}]
    if not candidates and avoid is not None:
        avoid_ids = {id(p) for p in avoid}
        candidates = [o.param_groups[0] for o in opts
                      if not avoid_ids & {id(p) for g in o.param_groups for p in g["params"]}]
    if not candidates:
        return False
    present = {id(p) for o in opts for g in o.param_groups for p in g["params"]}
    candidates[0]["params"].extend(p for p in params if id(p) not in present)
    return True


def replace_param(
    optimizers,
    old: torch.Tensor,
    new: torch.Tensor,
    index: torch.Tensor | None = None,
    dim: int = 0,
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """Put ``new`` where ``old`` was, carrying its state.

    Args:
        index: for each position of ``new`` along ``dim``, the position of ``old`` it
            continues, or ``-1`` for a created entry (its state starts at zero). ``None``
            means the shapes are equal and state is copied as is.
        fn: instead of ``index``, a map from a tensor shaped like ``old`` to one shaped like
            ``new`` (for resizes along several dims, or between storage layouts).
    """
    for opt in _as_list(optimizers):
        for group in opt.param_groups:
            for i, p in enumerate(group["params"]):
                if p is old:
                    group["params"][i] = new
        if old in opt.state:
            state = opt.state.pop(old)
            opt.state[new] = {k: _carry(v, old, new, index, dim, fn) for k, v in state.items()}


def _carry(value, old, new, index, dim, fn=None):
    if not torch.is_tensor(value) or value.shape != old.shape:
        return value  # scalars such as Adam's step
    if fn is not None:
        return fn(value)
    if index is None:
        return value.clone()
    out = value.new_zeros(new.shape)
    keep = index >= 0
    src = index.clamp(min=0)
    taken = value.index_select(dim, src.to(value.device))
    mask_shape = [1] * value.dim()
    mask_shape[dim] = -1
    out.copy_(torch.where(keep.view(mask_shape).to(value.device), taken, out))
    return out
