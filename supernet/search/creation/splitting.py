"""Splitting steepest descent: split the neurons whose splitting matrix has the most negative
eigenvalue, along its eigenvector.

Liu, Wu, Wang and Liu, "Splitting Steepest Descent for Growing Neural Architectures"
(NeurIPS 2019), Section 3 and Algorithm 1. A neuron ``h = σ(θᵀã)`` (``ã = [a, 1]``, its
input with the bias coordinate; ``θ = (W_i, b_i)``) is replaced by two copies
``θ + ε δ`` and ``θ - ε δ``, each with half of its outgoing weights. The first-order change
of the loss cancels, and (their Theorem 2.2)

    L(split) - L = ε²/2 · δᵀ S(θ) δ + O(ε³),    S(θ) = E[∂L/∂h · σ''(θᵀã) ã ãᵀ],

where ``∂L/∂h`` is the loss gradient through the neuron (the *splitting matrix*). The best
direction is the eigenvector ``v_min`` of the smallest eigenvalue ``λ_min`` of ``S``, and the
loss can decrease only where ``λ_min < 0``. At each growth :class:`SplittingSteepestDescent`
computes ``S`` of every unit of a node on ``batches`` training batches, and splits the
``count`` units of most negative ``λ_min`` (only those below zero; the paper's selection by
the splitting index) along ``± ε v_min`` (``‖v_min‖ = 1``).

ReLU: ``σ'' = 0`` almost everywhere, so ``S = 0`` and no split would ever decrease the loss
to second order; the paper uses smooth activations for this reason, and so does this
policy: a node whose activation has ``σ'' = 0`` on the batch (ReLU, identity) is refused
with an error naming it. Use ``act="tanh"`` or ``"softplus"`` for the grown nodes.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.edits import Editor
    >>> from supernet.search.base import SearchState
    >>> from supernet.units import mlp
    >>> g = mlp([4, 3, 2], act="tanh", seed=0); net = compile(g, seed=0)
    >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    >>> state = SearchState(g, net, Editor(g, net), epoch=1, epochs=3,
    ...                     train_batches=lambda: iter([((x,), {}, y)]))
    >>> ssd = SplittingSteepestDescent(count=1, at=1, epsilon=0.05)
    >>> ssd.on_epoch_end(state)
    >>> len(g.node("h1")["units"]), len(ssd.grown[0]["eigenvalues"])
    (4, 3)
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from supernet.edits.units import AddUnits
from supernet.errors import ConfigError, SearchError
from supernet.search.base import SearchState
from supernet.search.creation.widening import (
    DenseLayer,
    Widening,
    activation_derivatives,
    augment,
    layer_values,
    write_units,
)

__all__ = ["SplittingSteepestDescent", "splitting_matrices"]


def splitting_matrices(module, layer: DenseLayer, batches, loss_fn) -> torch.Tensor:
    """``S_i = E[∂L/∂h_i · σ''(z_i) ã ãᵀ]`` of every unit ``i`` of ``layer.node``, averaged
    over ``batches`` (``(inputs, target)`` pairs): a ``(m, d̃, d̃)`` tensor."""
    total = None
    for inputs, y in batches:
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        module.zero_grad(set_to_none=True)
        out, a, z, _, values = layer_values(module, layer, inputs)
        h = values[layer.node]
        h.retain_grad()
        loss_fn(out, y).backward()
        g = h.grad.detach()  # ∂L/∂h of the batch's mean loss: E over the batch built in
        _, _, d2 = activation_derivatives(layer.act, z)
        at = augment(layer, a)
        s = torch.einsum("ni,nj,nk->ijk", g * d2, at, at)
        total = s if total is None else total + s
    module.zero_grad(set_to_none=True)
    return total / len(batches)


class SplittingSteepestDescent(Widening):
    """Split units along the minimum eigenvector of their splitting matrix (module docstring).

    Args:
        count: units split per node at each growth (each split adds one unit).
        at: epoch(s) at whose end to grow.
        nodes: hidden nodes to grow (default: all).
        max_units: the width a node may reach (int or ``{node: int}``).
        epsilon: the split step ``ε`` on the unit eigenvector.
        batches: training batches ``S`` is averaged over.
        loss_fn: the loss (cross-entropy by default).
    """

    policy = "SplittingSteepestDescent"

    def __init__(self, count: int = 1, at: int | Iterable[int] | None = None,
                 nodes: Sequence[str] | None = None, max_units: int | dict | None = None,
                 epsilon: float = 0.1, batches: int = 1, loss_fn: Callable | None = None):
        super().__init__(count, at, nodes, max_units, batches, loss_fn)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ConfigError(f"{self.policy}: epsilon must be a number > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def grow(self, state: SearchState, layer: DenseLayer, count: int) -> dict:
        module = state.module
        with self.measuring(state):
            s = splitting_matrices(module, layer, self.score_batches(state), self.loss_fn)
        if not torch.any(s != 0):
            raise SearchError(
                f"{state.graph.name}: {self.policy}: node {layer.node!r} has act="
                f"{layer.act!r}, whose second derivative is zero on the batch, so every "
                "splitting matrix is zero and no split can decrease the loss; give the node a "
                "smooth activation (tanh, softplus, gelu, silu, sigmoid, elu)")
        lam, vec = torch.linalg.eigh(s.double())
        lam_min, v_min = lam[:, 0], vec[:, :, 0]
        order = torch.argsort(lam_min, stable=True)
        chosen = order[:count][lam_min[order[:count]] < 0]
        record = {"eigenvalues": lam_min.tolist(), "split": [], "created": []}
        if not len(chosen):
            return record  # no split decreases the loss at second order
        chosen = torch.sort(chosen).values
        ids = state.graph.node(layer.node)["units"][chosen.numpy()]
        result = state.editor.apply(AddUnits(layer.node, init="split", source=ids.tolist()))
        created = result.report["created"][layer.node]
        step = self.epsilon * v_min[chosen]
        write_units(module, layer, ids, incoming=step, add=True)
        write_units(module, layer, created, incoming=-step, add=True)
        record.update(split=ids.tolist(), created=created.tolist(),
                      directions=v_min[chosen].tolist())
        return record

