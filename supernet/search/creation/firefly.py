"""Firefly: optimize a neighbourhood of candidate growths, keep those of largest first-order
loss decrease.

Wu, Liu, Stone and Liu, "Firefly Neural Architecture Descent: a General Approach for Growing
Neural Networks" (NeurIPS 2020), Section 3 (growing wider). Around the current network the
method opens an ``ε``-neighbourhood of candidate growths of node ``n``, each with its own
scale ``ε_c`` and trainable direction:

* a *split* of unit ``i``: two offspring with half of its outgoing weights each, one keeping
  ``θ_i`` (incoming weights and bias) and one at ``θ_i + ε_i δ_i``; the consumers'
  pre-activations move by ``½ V_i (σ(z_i + ε_i δ_iᵀã) - σ(z_i))``;
* a *new unit* ``c``: incoming weights ``δ_c`` and outgoing weights ``ε_c δ'_c``, adding
  ``ε_c δ'_c σ(δ_cᵀã)``.

With every ``ε_c = 0`` the network is unchanged, and to first order
``L(ε) ≈ L + Σ_c ε_c s_c`` with ``s_c = ∂L/∂ε_c`` at ``ε = 0`` (the paper's Taylor
approximation). Firefly first optimizes the directions ``δ`` by a few gradient steps on the
loss of the neighbourhood network (all candidates at ``ε_c = ε``, each direction kept at
unit norm), then scores every candidate by ``|s_c|``, the first-order loss decrease per unit
of ``ε``, keeps the ``count`` best (greedy selection) and applies them with
``ε_c = -ε sign(s_c)``, so that each decreases the loss to first order.

The two offspring of a split differ by ``ε δ`` (only one moves), so that a split's gain is
first order in ``ε`` like a new unit's, and the two kinds are ranked on one scale; splitting
both offspring symmetrically (``θ ± ε δ``) has no first-order term
(:mod:`~supernet.search.creation.splitting`).

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
    >>> ff = Firefly(count=2, at=1, steps=3, seed=0)
    >>> ff.on_epoch_end(state)
    >>> len(g.node("h1")["units"]), len(ff.grown[0]["scores"])
    (5, 6)
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

from supernet.edits.units import AddUnits
from supernet.errors import ConfigError
from supernet.ops.activations import resolve_activation
from supernet.search.base import SearchState
from supernet.search.creation.widening import (
    DenseLayer,
    Widening,
    augment,
    fan_out,
    layer_values,
    write_units,
)

__all__ = ["Firefly"]


class Firefly(Widening):
    """Grow the candidates of largest first-order loss decrease (module docstring).

    Args:
        count: candidates kept per node at each growth (each adds one unit).
        at: epoch(s) at whose end to grow.
        nodes: hidden nodes to grow (default: all).
        max_units: the width a node may reach (int or ``{node: int}``).
        epsilon: ``ε``, the scale of the candidates while their directions are optimized
            and when they are applied.
        candidates: new-unit candidates (default: as many as the node has units); every
            existing unit is a split candidate.
        steps: gradient steps on the directions before scoring.
        lr: the learning rate of those steps (Adam).
        batches: training batches the steps and scores use.
        seed: seed of the initial directions.
        loss_fn: the loss (cross-entropy by default).
    """

    policy = "Firefly"

    def __init__(self, count: int = 1, at: int | Iterable[int] | None = None,
                 nodes: Sequence[str] | None = None, max_units: int | dict | None = None,
                 epsilon: float = 0.1, candidates: int | None = None, steps: int = 10,
                 lr: float = 0.05, batches: int = 1, seed: int = 0,
                 loss_fn: Callable | None = None):
        super().__init__(count, at, nodes, max_units, batches, loss_fn)
        p = self.policy
        for name, v in (("epsilon", epsilon), ("lr", lr)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"{p}: {name} must be a number > 0, got {v!r}")
        for name, v in (("candidates", candidates), ("steps", steps)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0
                                  or (name == "candidates" and v < 1)):
                least = 1 if name == "candidates" else 0
                raise ConfigError(f"{p}: {name} must be an int >= {least}, got {v!r}")
        self.epsilon, self.lr, self.steps = float(epsilon), float(lr), steps
        self.candidates, self.seed = candidates, int(seed)

    # ------------------------------------------------------------------ the neighbourhood
    def _contribution(self, layer, act, a, z, v, eps, d_split, d_in, d_out):
        """What the candidates at scales ``eps`` add to the consumers' pre-activations."""
        at = augment(layer, a)
        m = z.shape[1]
        moved = act(z + eps[:m] * (at @ d_split.T)) - act(z)
        new = act(at @ d_in.T) * eps[m:]
        return 0.5 * moved @ v.T + new @ d_out.T

    def _loss(self, module, layer, batch, eps, dirs, v, act):
        inputs, y, a, z = batch
        extra = self._contribution(layer, act, a, z, v, eps, *dirs)
        rows, handles = 0, []
        for w in layer.consumers:
            k = len(module.graph.node(w)["units"])

            def hook(mod, args, sl=slice(rows, rows + k)):
                return (args[0] + extra[:, sl],) + tuple(args[1:])
            handles.append(module.unit_params(w).register_forward_pre_hook(hook))
            rows += k
        try:
            values = module.run(inputs)
        finally:
            for h in handles:
                h.remove()
        outs = tuple(values[o] for o in module.graph.outputs)
        return self.loss_fn(outs[0] if len(outs) == 1 else outs, y)

    def scores(self, state: SearchState, layer: DenseLayer):
        """Optimize the candidates' directions, then ``(s, directions)``: ``s_c = ∂L/∂ε_c``
        at ``ε = 0`` per candidate (the node's units first, then the new-unit candidates)."""
        module = state.module
        act = resolve_activation(layer.act)
        batches = []
        with torch.no_grad():
            for inputs, y in self.score_batches(state):
                inputs = inputs if isinstance(inputs, tuple) else (inputs,)
                _, a, z, _, _ = layer_values(module, layer, inputs)
                batches.append((inputs, y, a, z))
        v = fan_out(module, layer)
        m, d = batches[0][3].shape[1], augment(layer, batches[0][2]).shape[1]
        n_new = self.candidates or m
        gen = torch.Generator().manual_seed(self.seed + len(self.grown))
        dtype = v.dtype
        dirs = [F.normalize(torch.randn(m, d, generator=gen, dtype=dtype), dim=1),
                F.normalize(torch.randn(n_new, d, generator=gen, dtype=dtype), dim=1),
                F.normalize(torch.randn(v.shape[0], n_new, generator=gen, dtype=dtype), dim=0)]
        for t in dirs:
            t.requires_grad_(True)
        for p in module.parameters():
            p.requires_grad_(False)
        try:
            opt = torch.optim.Adam(dirs, lr=self.lr)
            eps = torch.full((m + n_new,), self.epsilon, dtype=dtype)
            for step in range(self.steps):
                opt.zero_grad()
                batch = batches[step % len(batches)]
                self._loss(module, layer, batch, eps, dirs, v, act).backward()
                opt.step()
                with torch.no_grad():  # directions stay on the unit sphere
                    for t, dim in zip(dirs, (1, 1, 0)):
                        t.copy_(F.normalize(t, dim=dim))
            eps = torch.zeros(m + n_new, dtype=dtype, requires_grad=True)
            total = torch.zeros(m + n_new, dtype=dtype)
            fixed = [t.detach() for t in dirs]
            for batch in batches:
                (g,) = torch.autograd.grad(self._loss(module, layer, batch, eps, fixed, v, act),
                                           eps)
                total += g
        finally:
            for p in module.parameters():
                p.requires_grad_(True)
        return total / len(batches), fixed

    # ------------------------------------------------------------------ growth
    def grow(self, state: SearchState, layer: DenseLayer, count: int) -> dict:
        module, g = state.module, state.graph
        with self.measuring(state):
            s, (d_split, d_in, d_out) = self.scores(state, layer)
        m = d_split.shape[0]
        best = torch.argsort(-s.abs(), stable=True)[:count]
        eps = -self.epsilon * torch.sign(s)
        splits = torch.sort(best[best < m]).values
        news = torch.sort(best[best >= m]).values - m
        created = []
        if len(splits):
            ids = g.node(layer.node)["units"][splits.numpy()]
            result = state.editor.apply(AddUnits(layer.node, init="split", source=ids.tolist()))
            copies = result.report["created"][layer.node]
            write_units(module, layer, copies, incoming=eps[splits, None] * d_split[splits],
                        add=True)
            created += copies.tolist()
        if len(news):
            result = state.editor.apply(AddUnits(layer.node, count=len(news), init="zero"))
            fresh = result.report["created"][layer.node]
            write_units(module, layer, fresh, incoming=d_in[news],
                        outgoing=d_out[:, news] * eps[m + news])
            created += fresh.tolist()
        return {"created": created, "scores": s.tolist(), "kept": best.tolist(),
                "splits": len(splits), "new": len(news),
                "predicted_change": float((eps[best] * s[best]).sum())}
