"""Λ-DARTS: the weights trained to align the gradients that the cells sharing architecture
parameters give them.

Movahedi, Adabinejad, Imani, Keshavarz, Dehghani, Shakery and Araabi, "Λ-DARTS: Mitigating
Performance Collapse by Harmonizing Operation Selection among Cells" (ICLR 2023). The
cells of a DARTS network share one table ``α`` per template, so the gradient of ``α`` is
the sum of per-cell gradients ``g_l = ∂L/∂ζ_l``, ``ζ_l`` the copy of the mixing weights
``softmax(α)`` that cell ``l`` uses. The paper shows that these disagree (the cells nearest
the output win, and DARTS collapses), and adds to the weights' training loss the term
``-λ Λ``, ``Λ = 2/(L(L-1)) Σ_{i<j} cos(g_i, g_j)`` the mean pairwise cosine similarity of
the ``L`` cells' gradients: the weights are trained to make the cells agree.

``∇_w Λ`` would need second derivatives; as the authors' code (their ``get_perturbations``
and ``get_reg_grads``), it is a central finite difference along the direction ``v_l =
∂Λ/∂g_l = 2/(L(L-1)) ||g_l||⁻¹ (I - u_l u_lᵀ) Σ_j u_j`` (``u_l = g_l / ||g_l||``):
``∇_w Λ ≈ (∇_w L(ζ + εv) - ∇_w L(ζ - εv)) / (2ε)`` with ``ε = ε₀ / ||v||`` (``v`` all the
cells' directions together), so each weight step runs three more forward and backward
passes: one for the ``g_l`` (the authors' take them from the weight step's own pass) and
the two of the difference. The weight gradient becomes ``∇_w L - λ_e ∇_w Λ``, clipped and
stepped as usual; the architecture step is DARTS'. ``λ`` ramps linearly over the search,
``λ_e = λ e / (E - 1)`` at epoch ``e`` of ``E``, as in the authors' runs.

Defaults are the authors' code's: ``λ = 0.125``, ``ε₀ = 1e-4`` (their search scripts use
``λ = 0.25``, with ``ε₀ = 1e-4`` on NAS-Bench-201 and ``1e-3`` in the DARTS spaces). Their
DARTS-space code
aligns the normal cells only (``cells=["normal"]``); by default every cell template that
more than one cell calls is aligned (its own ``Λ``, the terms summed). The three passes
mix with the weights the relaxation decided for the weight step, detached (``softmax(α)``
under DARTS), and replay the same random numbers (dropout, drop path), so the difference
measures ``ζ`` alone; they run in training mode, so batch-norm running statistics see
each batch four times, as in the authors' code. :attr:`LambdaDARTS.correlation` holds the
last step's ``Λ`` (summed over the templates). Single-level steps (SNAS) get the same term
on their weights' gradient.

Examples:
    >>> import torch
    >>> from supernet.search.stabilizers.lambda_ import gradient_correlation
    >>> g = [torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])]
    >>> round(float(gradient_correlation(g)), 4)  # (cos 45° + cos 90° + cos 45°) / 3
    0.4714
"""

from __future__ import annotations

import torch

from supernet.errors import ConfigError
from supernet.gates import Softmax
from supernet.search.base import require_layer
from supernet.search.discretize.layer import ArgmaxDiscretization
from supernet.search.stabilizers import register_stabilizer
from supernet.search.stabilizers.base import Stabilizer, with_weights

__all__ = ["LambdaDARTS", "PerCallGates", "call_counts", "correlation_direction",
           "gradient_correlation", "template_of"]


def call_counts(graph, times: int = 1, out: dict | None = None) -> dict[str, int]:
    """How many cells call each cell template of ``graph`` (nested calls included)."""
    out = {} if out is None else out
    for n in graph.topological_order():
        d = graph.nx.nodes[n]
        if d.get("kind") == "call":
            out[d["cell"]] = out.get(d["cell"], 0) + times
            template = graph.cells.get(d["cell"])
            if template is not None:
                call_counts(template, times, out)
    return out


def template_of(key: str) -> str | None:
    """The cell template a gate key belongs to (``"normal:p0->n2"`` -> ``"normal"``), or
    ``None`` for a gate of the top graph."""
    return key.rsplit(":", 1)[0] if ":" in key else None


def gradient_correlation(grads) -> torch.Tensor:
    """``Λ = 2/(L(L-1)) Σ_{i<j} cos(g_i, g_j)`` of the flat gradients ``grads`` (``L >= 2``),
    differentiable."""
    u = torch.stack([g / g.norm() for g in grads])
    n = len(grads)
    cos = u @ u.T
    return (cos.sum() - cos.diagonal().sum()) / (n * (n - 1))


def correlation_direction(grads) -> list[torch.Tensor]:
    """``∂Λ/∂g_l = 2/(L(L-1)) ||g_l||⁻¹ (s - u_l (u_l · s))`` per gradient, ``u_l = g_l /
    ||g_l||``, ``s = Σ_j u_j``: the authors' ``P_l Σ_j u_j`` (their projection ``P_l =
    ||g_l||⁻¹ (I - u_l u_lᵀ)``) without the ``n × n`` matrix."""
    n = len(grads)
    norms = [g.norm() for g in grads]
    u = [g / r for g, r in zip(grads, norms)]
    s = sum(u)
    scale = 2.0 / (n * (n - 1))
    return [scale / r * (s - ul * torch.dot(ul, s)) for ul, r in zip(u, norms)]


class PerCallGates(dict):
    """Decisions (gate key -> :class:`~supernet.gates.Decision`) that hand every cell call
    its own copy of the mixing weights.

    The compiled module reads ``gates[key]`` once per gated edge it runs, so the ``n``-th
    read of a key is the template's ``n``-th call. Each read returns a copy of the
    decision whose weights are the detached weights, a leaf of their own when ``leaf``
    (their gradient is that cell's ``g_l``: :attr:`copies`), minus ``shifts[key][n]``
    when given.
    """

    def __init__(self, decisions, leaf: bool = False, shifts: dict | None = None):
        super().__init__(decisions)
        self.leaf, self.shifts = leaf, shifts
        self.copies: dict[str, list[torch.Tensor]] = {k: [] for k in decisions}

    def __getitem__(self, key):
        d = super().__getitem__(key)
        calls = self.copies[key]
        w = d.weights.detach()
        if self.leaf:
            w = w.clone().requires_grad_(True)
        shift = self.shifts.get(key) if self.shifts is not None else None
        if shift is not None and len(calls) < len(shift):
            out = with_weights(d, w - shift[len(calls)])
        else:
            out = with_weights(d, w)
        calls.append(w)
        return out


class LambdaDARTS(Stabilizer):
    """Λ-DARTS (Movahedi et al., ICLR 2023): ``-λ ∇_w Λ`` added to each weight gradient,
    by the authors' finite difference (see the module docstring).

    Args:
        weight: ``λ`` (0.125; 0 is DARTS).
        epsilon: ``ε₀``, the length of the finite difference's step (1e-4).
        cells: the templates whose cells are aligned (``None``: every template called by
            more than one cell).
        ramp: ``λ`` linear in the epochs from 0 (the authors'); ``False``: ``λ`` throughout.
    """

    def __init__(self, weight: float = 0.125, epsilon: float = 1e-4, cells=None,
                 ramp: bool = True):
        super().__init__()
        for name, value, low in (("weight", weight, 0.0), ("epsilon", epsilon, None)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not (value > 0 if low is None else value >= low):
                raise ConfigError(f"stabilizer lambda: {name} must be a number "
                                  f"{'> 0' if low is None else '>= 0'}, got {value!r}")
        if cells is not None:
            cells = [cells] if isinstance(cells, str) else list(cells)
            if not cells or not all(isinstance(c, str) for c in cells):
                raise ConfigError(f"stabilizer lambda: cells must be a non-empty list of cell "
                                  f"template names, got {cells!r}")
        self.weight, self.epsilon, self.cells, self.ramp = float(weight), float(epsilon), \
            cells, bool(ramp)
        self.register_buffer("lam", torch.tensor(0.0 if ramp else float(weight)))
        self.correlation: float | None = None

    def options(self) -> dict:
        return {"weight": self.weight, "epsilon": self.epsilon, "cells": self.cells,
                "ramp": self.ramp}

    def attach(self, module) -> None:
        require_layer(module.graph, "Λ-DARTS aligns the cells that share the candidate ops "
                      "of layer-level edges", "use another stabilizer")
        calls = call_counts(module.graph)
        gated = {template_of(k) for k in module.gates()} - {None}
        shared = sorted(t for t in gated if calls.get(t.rsplit(":", 1)[-1], 0) > 1)
        if not shared:
            raise ConfigError(
                f"stabilizer lambda: {module.graph.name} has no gated cell template that more "
                f"than one cell calls (gated templates and their calls: "
                f"{ {t: calls.get(t.rsplit(':', 1)[-1], 0) for t in sorted(gated)} }); Λ-DARTS "
                "aligns the gradients of cells that share architecture parameters")
        missing = [c for c in self.cells or () if c not in shared]
        if missing:
            raise ConfigError(f"stabilizer lambda: cells {missing} are no gated cell template "
                              f"that more than one cell of {module.graph.name} calls; known: "
                              f"{shared}")

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        if self.ramp:
            self.lam.fill_(self.weight * epoch / max(1, epochs - 1))

    def _aligned(self, key: str) -> bool:
        t = template_of(key)
        return t is not None and (self.cells is None or t in self.cells)

    def cell_gradients(self, module, decisions, run) -> dict[str, tuple[list, list]]:
        """Per template, its gate keys and the flat gradient ``g_l`` (those keys' entries,
        in that order) of each of its calls; ``run(gates)`` is the loss of a forward pass
        with ``gates``."""
        gates = PerCallGates(decisions, leaf=True)
        loss = run(gates)
        keys = [k for k in module.arch if k in gates and self._aligned(k)
                and gates.copies[k]]
        leaves = [w for k in keys for w in gates.copies[k]]
        grads = iter(torch.autograd.grad(loss, leaves, allow_unused=True) if leaves else [])
        per_template: dict[str, list] = {}
        for k in keys:
            rows = [torch.zeros_like(w) if g is None else g
                    for w, g in zip(gates.copies[k], [next(grads) for _ in gates.copies[k]])]
            per_template.setdefault(template_of(k), []).append((k, rows))
        out = {}
        for t, items in per_template.items():
            calls = {len(rows) for _, rows in items}
            if len(calls) != 1 or calls == {1}:
                continue  # one call (nothing to align), or keys read unevenly
            n = calls.pop()
            out[t] = ([k for k, _ in items],
                      [torch.cat([rows[i].reshape(-1) for _, rows in items]) for i in range(n)])
        return out

    def directions(self, module, grads: dict) -> dict[str, list[torch.Tensor]] | None:
        """Per gate key, per call, the direction ``v_l`` restricted to the key's entries
        (``None`` when no template has cells of non-zero gradients); ``grads`` as
        :meth:`cell_gradients` returns them."""
        out = {}
        for keys, g in grads.values():
            if any(float(x.norm()) == 0.0 for x in g):
                continue
            v = correlation_direction(g)
            offset = 0
            for k in keys:
                shape = module.arch[k].shape
                n = shape.numel()
                out[k] = [vl[offset:offset + n].reshape(shape) for vl in v]
                offset += n
        return out or None

    @torch.no_grad()
    def _correlation(self, grads) -> float:
        return sum(float(gradient_correlation(g)) for _, g in grads.values())

    def after_weight_backward(self, search, params, batch) -> None:
        lam = float(self.lam)
        m = search.module
        if lam == 0.0 or not len(m.arch):
            return
        inputs, ctx, y = batch
        with torch.no_grad():
            decisions = m.relaxation(dict(m.arch.items()))
        rng = _rng_state(next(iter(m.arch.values())).device)

        def run(gates):
            rng()
            return search.loss_fn(m(*inputs, gates=gates, **ctx), y)

        grads = self.cell_gradients(m, decisions, run)
        self.correlation = self._correlation(grads) if grads else None
        v = self.directions(m, grads)
        if v is None:
            rng()
            return
        eps = self.epsilon / float(torch.cat([x.reshape(-1) for d in v.values() for x in d]).norm())
        plus = {k: [eps * x for x in d] for k, d in v.items()}
        minus = {k: [-x for x in d] for k, d in plus.items()}
        used = [p for p in params if p.requires_grad]
        f = torch.autograd.grad(run(PerCallGates(decisions, shifts=plus)), used,
                                allow_unused=True)  # ζ - εv, the authors' "forward"
        b = torch.autograd.grad(run(PerCallGates(decisions, shifts=minus)), used,
                                allow_unused=True)  # ζ + εv
        rng()  # the passes leave the random numbers as they found them
        for p, gf, gb in zip(used, f, b):
            if gf is None or gb is None:
                continue
            step = (gf - gb).mul_(lam / (2 * eps))
            if p.grad is None:
                p.grad = step
            else:
                p.grad.add_(step)


def _rng_state(device):
    """A function that puts the random generators (CPU, and ``device``'s) back to where
    they are now."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore():
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)

    return restore


register_stabilizer("lambda")(LambdaDARTS)


def register_strategies(register_strategy, Strategy) -> None:
    """Register the strategy ``lambda_darts`` (called by :mod:`supernet.search.strategies`)."""

    @register_strategy("lambda_darts")
    def _lambda_darts(weight: float = 0.125, epsilon: float = 1e-4, cells=None,
                      ramp: bool = True):
        """Λ-DARTS (Movahedi et al., ICLR 2023): DARTS whose weights align the cells' α-gradients.

        First order; the weight steps align the gradients of the cells that share ``α``
        (the stabilizer ``lambda``,
        :class:`~supernet.search.stabilizers.lambda_.LambdaDARTS`: ``weight`` ``λ``,
        ``epsilon`` ``ε₀``, ``cells``, ``ramp``); DARTS' loop settings, as the authors' search
        (their scripts: batch 96, ``weight=0.25``)."""
        return Strategy("lambda_darts", Softmax(), ArgmaxDiscretization(),
                        stabilizers=[LambdaDARTS(weight, epsilon, cells, ramp)],
                        levels=("layer",))
