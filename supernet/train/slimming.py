"""Network slimming's sparsity term: an L1 penalty on the batch-norm scale factors.

Liu, Li, Shen, Huang, Yan and Zhang, "Learning Efficient Convolutional Networks through
Network Slimming" (ICCV 2017), Eq. 1: train with

    L = sum over (x, y) of l(f(x, W), y) + λ sum over γ of |γ|

where ``γ`` are the scale factors of the batch norms after the convolutions, one per channel.
The penalty's subgradient ``λ·sign(γ)`` drives the scales of unneeded channels toward zero;
channels of smallest ``|γ|`` are then pruned
(:func:`supernet.search.scores.bn_scale` is the score) and the network fine-tuned.

:func:`slimming_loss` wraps a loss for :func:`supernet.train.train_module` (any loss of
``(output, target)``), so the term costs one sum per step and no change to the training loop;
:func:`bn_scales` lists the scale factors it penalizes, of a compiled channel-level module
(per batch-normalized node) or of any torch module (per ``BatchNorm`` layer).

Examples:
    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(3)
    >>> with torch.no_grad():
    ...     _ = bn.weight.copy_(torch.tensor([0.5, -2.0, 0.0]))
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), bn)
    >>> float(l1_scales(net, 0.1))
    0.25
    >>> l1_scales(net, 0.1).backward(); bn.weight.grad  # λ·sign(γ)
    tensor([ 0.1000, -0.1000,  0.0000])
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from supernet.errors import ConfigError
from supernet.train.training import default_loss

__all__ = ["bn_scales", "l1_scales", "slimming_loss"]


def bn_scales(module: nn.Module, nodes: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """The batch-norm scale factors ``γ`` of ``module``.

    Args:
        module: a compiled channel- or neuron-level module (keys: the graph's
            batch-normalized nodes) or any torch module (keys: the names of its affine
            ``BatchNorm`` layers).
        nodes: only these keys (default: all). A key that names no batch norm is refused.
    """
    graph = getattr(module, "graph", None)
    if graph is not None and getattr(graph, "level", None) in ("channel", "neuron"):
        found = {n: module.unit_params(n).norm_weight for n in graph.topological_order()
                 if graph.nx.nodes[n]["kind"] == "units" and module.unit_params(n).has_norm}
    else:
        found = {name: m.weight for name, m in module.named_modules()
                 if isinstance(m, nn.modules.batchnorm._NormBase) and m.weight is not None}
    if not found:
        raise ConfigError(f"{type(module).__name__}: no batch norm with a scale factor; network "
                          "slimming penalizes the γ of batch norms (build with norm='batchnorm')")
    if nodes is None:
        return found
    unknown = [n for n in nodes if n not in found]
    if unknown:
        raise ConfigError(f"bn_scales: {unknown} name(s) no batch-normalized node or layer; "
                          f"choose from {sorted(found)}")
    return {n: found[n] for n in nodes}


def _check_lam(lam) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise ConfigError(f"network slimming: the penalty λ must be a number >= 0, got {lam!r}")
    return float(lam)


def l1_scales(module: nn.Module, lam: float, nodes: Sequence[str] | None = None) -> torch.Tensor:
    """``λ Σ |γ|`` over the scale factors of :func:`bn_scales` (differentiable in them)."""
    lam = _check_lam(lam)
    return lam * sum(g.abs().sum() for g in bn_scales(module, nodes).values())


def slimming_loss(module: nn.Module, lam: float, loss_fn: Callable | None = None,
                  nodes: Sequence[str] | None = None) -> Callable:
    """``loss_fn(output, target) + λ Σ |γ|`` for training ``module`` (Liu et al., Eq. 1).

    Pass it as ``loss_fn=`` to :func:`~supernet.train.train_module`. The scale factors are
    looked up once, here: make a new loss after an edit that changes the module's units.
    """
    lam = _check_lam(lam)
    scales = list(bn_scales(module, nodes).values())
    base = loss_fn or default_loss

    def loss(output, target):
        return base(output, target) + lam * sum(g.abs().sum() for g in scales)

    return loss
