"""Memory-lean evaluation of a mixed edge: its candidate ops are recomputed in backward.

A mixing relaxation (DARTS, PC-DARTS, SNAS, ...) runs every candidate op of every gated
edge, and autograd keeps what each of them saves for backward: that is most of a
super-network step's peak memory. In the memory-lean mode (``memory: lean`` in the search
config, :data:`MEMORY_MODES`) a gated edge is evaluated as one activation checkpoint
(Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016): the forward pass keeps
only the edge's input and output, and the backward pass runs the candidates again to get
what they would have saved (``torch.utils.checkpoint`` without reentrance). The values and
gradients are those of the normal mode; a step costs one more forward of the candidate ops.

Three things a forward does must not happen twice or differently:

* **Batch-norm running statistics** are updated once, by the forward. The recompute runs
  the same computation (a batch norm in training mode normalizes by its batch's
  statistics), and the buffers of the candidate modules (running mean, variance,
  ``num_batches_tracked``, any other state) are put back as they were before it.
* **Randomness** (dropout inside an op) is the same in the recompute: the generators'
  states are saved at the forward and restored for the recompute. Drop-path and the
  relaxation's samples (Gumbel noise) are drawn outside the edge, once.
* **Constants**: parameters a step held constant in its forward (``requires_grad`` off, as
  the weight step holds the architecture) are constants in the recompute too.

Only edges whose decision runs several candidates are recomputed: a path-sampling
decision (GDAS, SPOS, ProxylessNAS) runs one op, which costs what a standalone layer costs.

Examples:
    >>> import torch, torch.nn as nn
    >>> from supernet.gates import Decision
    >>> ops = [nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)), nn.Identity()]
    >>> d = Decision(torch.softmax(torch.zeros(1, 2, requires_grad=True), -1))
    >>> x = torch.randn(4, 2, 5, 5, requires_grad=True)
    >>> y = recompute_mix(d, 0, ops, [False, False], x)
    >>> y.sum().backward()
    >>> int(ops[0][1].num_batches_tracked)  # the forward's update, not the recompute's
    1
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from supernet.errors import ConfigError

__all__ = ["MEMORY_MODES", "LEAN_SHARED_PREFIXES", "check_memory_mode", "use_memory_mode",
           "recompute_mix", "lean_shared", "runs_several", "running_stats_frozen"]

#: ``"normal"``: autograd keeps what every candidate saves; ``"lean"``: gated edges that run
#: several candidates are recomputed in backward.
MEMORY_MODES = ("normal", "lean")


def check_memory_mode(mode, where: str = "memory") -> str:
    """``mode`` if it is one of :data:`MEMORY_MODES`, else a :class:`ConfigError`.

    Examples:
        >>> check_memory_mode("lean")
        'lean'
        >>> check_memory_mode("low")
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: memory='low' is unknown; use one of ['normal', 'lean']
    """
    if mode not in MEMORY_MODES:
        raise ConfigError(f"{where}={mode!r} is unknown; use one of {list(MEMORY_MODES)}")
    return mode


def use_memory_mode(module, mode: str, where: str = "memory") -> None:
    """Set the memory mode of a compiled ``module``: ``"lean"`` needs a layer-level module
    (the mixed edges it recomputes); ``"normal"`` fits every module."""
    check_memory_mode(mode, where)
    if hasattr(module, "memory"):
        module.memory = mode
    elif mode == "lean":
        graph = getattr(module, "graph", None)
        level = getattr(graph, "level", type(module).__name__)
        raise ConfigError(
            f"{where}='lean' recomputes the candidate ops of layer-level gates; "
            f"{getattr(graph, 'name', 'the module')} is a {level}-level graph, whose gates "
            "scale units and connections; use memory='normal' there")


@contextlib.contextmanager
def running_stats_frozen(modules: Sequence):
    """Run the forward passes inside without a trace in the buffers of ``modules`` (and of
    their submodules): batch-norm running means, variances and ``num_batches_tracked``, or
    any other state a module updates in its forward, are put back as they were on exit.

    The forwards inside compute what they computed before (a batch norm in training mode
    normalizes by its batch's statistics and saves the same tensors for backward); only
    their update of the buffers is undone. Non-modules (e.g. context-binding closures) are
    skipped.
    """
    buffers = [b for op in modules if isinstance(op, nn.Module) for b in op.buffers()]
    with torch.no_grad():
        saved = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in zip(buffers, saved):
                b.copy_(value)


#: The prefixes (:mod:`supernet.ops.prefix`) a recomputed edge takes from the node's shared
#: value instead of recomputing them: a ReLU's output is one tensor of the node's size,
#: kept until backward, which spares every ReLU-conv-BN candidate its own ReLU in the
#: forward and in the recompute; a pooling's output (and a max-pooling's indices) is
#: recomputed with its candidate.
LEAN_SHARED_PREFIXES = ("ReLU",)


def lean_shared(shared, active):
    """The candidates of ``active`` whose prefix (``shared[k]``: ``(key, prefix, rest)`` or
    ``None``) a recomputed edge takes from the node (:data:`LEAN_SHARED_PREFIXES`)."""
    return [k for k in active if shared[k] is not None
            and shared[k][0][0] in LEAN_SHARED_PREFIXES]


def runs_several(decision, i: int = 0) -> bool:
    """Whether gate ``i`` of ``decision`` runs more than one candidate (what is recomputed)."""
    return decision.active is None or len(decision.active[i]) > 1


def recompute_mix(decision, i: int, ops: Sequence[Callable], zero: Sequence[bool],
                  x: torch.Tensor, modules: Sequence | None = None) -> torch.Tensor:
    """``decision.mix(i, ops, zero, x)``, its candidates recomputed in backward.

    Args:
        modules: the candidate modules when ``ops`` wraps them (ops bound to a context such
            as ``edge_index``); their running statistics are frozen in the recompute.
    """
    watched = [m for m in (ops if modules is None else modules) if isinstance(m, nn.Module)]
    # a step may hold some parameters constant for its forward only (``constants``): the
    # recompute, run in backward, sees them as the forward did
    flags = [(p, p.requires_grad) for m in watched for p in m.parameters()]

    def contexts():
        return contextlib.nullcontext(), _as_in_forward(watched, flags)

    return checkpoint(decision.mix, i, ops, zero, x, use_reentrant=False,
                      context_fn=contexts, preserve_rng_state=True)


@contextlib.contextmanager
def _as_in_forward(modules, flags):
    now = [(p, p.requires_grad) for p, _ in flags]
    for p, flag in flags:
        p.requires_grad_(flag)
    try:
        with running_stats_frozen(modules):
            yield
    finally:
        for p, flag in now:
            p.requires_grad_(flag)
