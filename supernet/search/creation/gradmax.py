"""GradMax: new neurons with zero fan-in and the fan-out that maximizes their fan-in gradient.

Evci, van Merriënboer, Unterthiner, Vladymyrov and Pedregosa, "GradMax: Growing Neural
Networks using Gradient Information" (ICLR 2022), Section 3. New units of a node ``n``
(input ``a``, consumers' pre-activations ``acc``) start with zero incoming weights and bias,
so their output is ``σ(0) = 0`` and the network computes the same function. Their fan-out
``V`` (one column per new unit, over the concatenated consumers) does not change the
outputs, but it sets the gradient of their fan-in weights:

    ∂L/∂W_new = σ'(0) Vᵀ G,    G = E[∂L/∂acc · aᵀ]   (K × d, the gradient of a direct
                                                       linear map from a to acc)

GradMax chooses ``V`` to maximize ``‖∂L/∂W_new‖_F²`` under a norm constraint; with the
spectral-norm constraint ``‖V‖₂ ≤ c`` of the paper the maximizer is ``V = c U_k``, the ``k``
top left singular vectors of ``G`` (their Eq. 9), and the squared gradient norm is
``σ'(0)² c² Σ_{i≤k} s_i²`` (``s_i`` the singular values). (Under a Frobenius constraint
the optimum puts every new unit on the top singular vector: duplicate units.)

``G`` is averaged over ``batches`` training batches. ``scale=None`` takes ``c`` equal to the
mean norm of the node's existing fan-out columns, so that new units enter at the scale of
the others. The activation must satisfy ``σ(0) = 0`` (function preserved) and
``σ'(0) ≠ 0`` (a non-zero fan-in gradient): ``tanh``, ``leaky_relu``, ``identity``; ReLU
has ``σ'(0) = 0`` in PyTorch (the new fan-in would never move) and ``softplus`` has
``σ(0) ≠ 0``: both are refused with an error naming the node.

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
    >>> before = net(x)
    >>> GradMax(count=2, at=1).on_epoch_end(state)
    >>> len(g.node("h1")["units"]), bool((net(x) - before).abs().max() < 1e-6)
    (5, True)
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
    dense_layer,
    fan_out,
    layer_values,
    write_units,
)

__all__ = ["GradMax", "gradient_matrix", "gradmax_fan_out"]


def gradient_matrix(module, layer: DenseLayer, batches, loss_fn) -> torch.Tensor:
    """``G = E[∂L/∂acc aᵀ]`` (K × d): consumers' pre-activation gradients (stacked in the
    order of ``layer.consumers``) times the node's input, averaged over ``batches``."""
    total = None
    for inputs, y in batches:
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        module.zero_grad(set_to_none=True)
        out, a, _, accs, _ = layer_values(module, layer, inputs, grad_of=layer.consumers)
        loss_fn(out, y).backward()
        g = torch.cat([accs[w].grad.detach() for w in layer.consumers], 1)
        m = g.T @ a  # the batch mean is in ∂L/∂acc already
        total = m if total is None else total + m
    module.zero_grad(set_to_none=True)
    return total / len(batches)


def gradmax_fan_out(grad: torch.Tensor, count: int, scale: float) -> torch.Tensor:
    """``V = c U_k``: the top ``count`` left singular vectors of ``grad``, times ``scale``
    (where ``count`` exceeds the rank, the remaining columns are orthonormal too, of zero
    gain).

    Examples:
        >>> import torch
        >>> G = torch.diag(torch.tensor([3.0, 1.0, 2.0]))
        >>> gradmax_fan_out(G, 2, 1.0).abs()
        tensor([[1., 0.],
                [0., 0.],
                [0., 1.]])
    """
    u, _, _ = torch.linalg.svd(grad.double(), full_matrices=True)
    if count > u.shape[1]:
        raise SearchError(f"GradMax: {count} new units but the consumers have only "
                          f"{u.shape[1]} pre-activations; at most that many orthogonal "
                          "fan-out directions exist")
    return (scale * u[:, :count]).to(grad.dtype)


class GradMax(Widening):
    """Add units of zero fan-in whose fan-out maximizes their gradient (module docstring).

    Args:
        count: units added per node at each growth.
        at: epoch(s) at whose end to grow.
        nodes: hidden nodes to grow (default: all).
        max_units: the width a node may reach (int or ``{node: int}``).
        scale: ``c``, the spectral norm of the new fan-out (``None``: the mean norm of the
            node's existing fan-out columns).
        batches: training batches ``G`` is averaged over.
        loss_fn: the loss (cross-entropy by default).
    """

    policy = "GradMax"

    def __init__(self, count: int = 1, at: int | Iterable[int] | None = None,
                 nodes: Sequence[str] | None = None, max_units: int | dict | None = None,
                 scale: float | None = None, batches: int = 1, loss_fn: Callable | None = None):
        super().__init__(count, at, nodes, max_units, batches, loss_fn)
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                                  or scale <= 0):
            raise ConfigError(f"{self.policy}: scale must be a number > 0 or None, got "
                              f"{scale!r}")
        self.scale = scale

    def check_activation(self, graph, layer: DenseLayer) -> float:
        """``σ'(0)``; refuses an activation with ``σ(0) ≠ 0`` or ``σ'(0) = 0``."""
        s, d1, _ = activation_derivatives(layer.act, torch.zeros(1))
        where = f"{graph.name}: {self.policy}: node {layer.node!r} has act={layer.act!r}"
        if float(s) != 0:
            raise SearchError(f"{where} with act(0) = {float(s):.4g}: units of zero fan-in "
                              "would change the outputs; use an activation with act(0) = 0 "
                              "and act'(0) != 0 (tanh, leaky_relu)")
        if float(d1) == 0:
            raise SearchError(f"{where} with act'(0) = 0: the zero fan-in of new units would "
                              "get no gradient and never move; use tanh or leaky_relu")
        return float(d1)

    def check(self, graph, epochs=None) -> None:
        """Also refuse an activation without ``σ(0) = 0, σ'(0) ≠ 0`` and a ``count`` above
        the pre-activations a node feeds (only that many fan-outs are orthogonal)."""
        super().check(graph, epochs)
        for n in self.targets(graph):
            layer = dense_layer(graph, n, self.policy)
            self.check_activation(graph, layer)
            k = sum(len(graph.node(w)["units"]) for w in layer.consumers)
            if self.count > k:
                raise ConfigError(
                    f"{self.policy}: count={self.count} exceeds the {k} pre-activations node "
                    f"{n!r} feeds (consumers {layer.consumers}): at most {k} new units have "
                    f"orthogonal fan-outs (the top singular vectors of G); give count <= {k} "
                    "and grow more often")

    def grow(self, state: SearchState, layer: DenseLayer, count: int) -> dict:
        module = state.module
        slope = self.check_activation(state.graph, layer)
        with self.measuring(state):
            grad = gradient_matrix(module, layer, self.score_batches(state), self.loss_fn)
        c = self.scale
        if c is None:
            c = float(fan_out(module, layer).norm(dim=0).mean())
        v = gradmax_fan_out(grad, count, c)
        result = state.editor.apply(AddUnits(layer.node, count=count, init="zero"))
        created = result.report["created"][layer.node]
        d = grad.shape[1] + (1 if layer.bias else 0)
        write_units(module, layer, created, incoming=grad.new_zeros(count, d), outgoing=v)
        gain = slope ** 2 * float((v.T @ grad).pow(2).sum())
        return {"created": created.tolist(), "scale": c, "gradient_norm2": gain,
                "singular_values": torch.linalg.svdvals(grad).tolist()}
