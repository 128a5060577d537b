"""The DARTS second-order architecture gradient.

Liu et al., "DARTS: Differentiable Architecture Search" (ICLR 2019), Eq. 6-8. With the
virtual step ``w' = w - ξ (μ m + ∇w L_train(w, α) + λ w)`` (``ξ`` the weight learning rate,
``m`` the momentum buffer of the weight optimizer, ``μ`` its momentum, ``λ`` its weight
decay, as in the reference code), the architecture gradient is

    ``∇α L_val(w', α) - ξ ∇²α,w L_train(w, α) ∇w' L_val(w', α)``

where the Hessian-vector product is the central finite difference
``(∇α L_train(w⁺, α) - ∇α L_train(w⁻, α)) / 2ε`` with ``w± = w ± ε ∇w' L_val(w', α)`` and
``ε = 0.01 / ‖∇w' L_val(w', α)‖``.

The weights are restored exactly (from a copy) after each perturbation, and so are the
module's buffers (batch-norm statistics): the extra forward passes leave no trace.

``L_train`` is one function of ``(w, α)`` in this formula: when its forward pass is
random (dropout, drop-path, Gumbel or path samples), the virtual step and both
finite-difference points draw the same sample (torch's generators are reseeded alike for
the three passes, with a seed drawn from the global generator); otherwise the difference of
two samples, divided by ``2ε``, would swamp the Hessian-vector product.

The finite difference is only as good as ``ε``: with ReLUs and max-pooling the training
gradient is piecewise smooth in ``w``, and a step of ``ε ∇w' L_val`` can cross kinks and
move far from the true Hessian-vector product. :class:`HypergradientCheck`
(``unrolled_arch_grads(..., check=HypergradientCheck())``, or ``check_hypergradient`` in
the search config) compares it, on the same batches and random draws, with the exact
hypergradient :func:`exact_arch_grads` (a double backward through the virtual step, Eq. 7
without the approximation of Eq. 8) and warns once (a :class:`SearchWarning`) naming the
cosine and relative error when the cosine falls below ``0.95`` or the relative error
``‖approx - exact‖ / ‖exact‖`` exceeds ``20%``.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

from supernet.search.base import SearchWarning

__all__ = ["unrolled_arch_grads", "virtual_step", "exact_arch_grads", "HypergradientCheck"]


def _grads(loss, params):
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def _one_draw(fn: Callable[[], torch.Tensor], weights) -> Callable[[], torch.Tensor]:
    """``fn`` made to draw the same random numbers at every call (for ``weights``' devices)."""
    seed = int(torch.randint(0, 2**62, (1,)))
    devices = sorted({w.device.index or 0 for w in weights if w.is_cuda})

    def call():
        with torch.random.fork_rng(devices=devices):
            # only the generators forked here: the others are left as they are
            torch.default_generator.manual_seed(seed)
            for i in devices:
                torch.cuda.default_generators[i].manual_seed(seed)
            return fn()

    return call


def virtual_step(weights, grads, optimizer, lr: float) -> list[torch.Tensor]:
    """``w - lr (μ m + g + λ w)`` per weight (the parameters of ``optimizer``), with ``μ, λ``
    from the weight's param group and ``m`` its momentum buffer (none before a first step)."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    for p, g in zip(weights, grads):
        w = p.detach()
        group = group_of.get(id(p), {"momentum": 0.0, "weight_decay": 0.0})
        d = g + group.get("weight_decay", 0.0) * w
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            d = d + group.get("momentum", 0.0) * buf
        out.append(w - lr * d)
    return out


@contextlib.contextmanager
def _substituted(module, weights, values):
    """``module`` computing with ``values`` (tensors, in the autograd graph) in place of the
    parameters ``weights``, wherever a submodule holds them."""
    by_id = {id(w): v for w, v in zip(weights, values)}
    swapped = []
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None and id(p) in by_id:
                swapped.append((sub, name, p))
                sub._parameters[name] = by_id[id(p)]
    try:
        yield
    finally:
        for sub, name, p in swapped:
            sub._parameters[name] = p


def exact_arch_grads(module, train_loss: Callable[[], torch.Tensor],
                     val_loss: Callable[[], torch.Tensor], optimizer, lr: float
                     ) -> list[torch.Tensor]:
    """The exact DARTS hypergradient ``d/dα L_val(w'(α), α)`` (Liu et al., ICLR 2019, Eq. 7)
    with ``w'(α) = w - ξ (μ m + ∇w L_train(w, α) + λ w)``, by a double backward through the
    virtual step: what Eq. 8's finite difference approximates. It costs a second-order
    backward pass through the network. Weights and buffers are left as they were.

    Data-parallel reduction is not applied: the check compares the two on one process's
    batches.
    """
    weights = [p for p in module.weights() if p.requires_grad]
    arch = module.arch_parameters()
    saved_b = [b.detach().clone() for b in module.buffers()]
    try:
        g = torch.autograd.grad(train_loss(), weights, create_graph=True, allow_unused=True)
        g = [torch.zeros_like(w) if gi is None else gi for w, gi in zip(weights, g)]
        stepped = virtual_step(weights, g, optimizer, lr)  # in α's graph through g
        with _substituted(module, weights, stepped):
            loss = val_loss()
        grads = torch.autograd.grad(loss, arch, allow_unused=True)
        return [torch.zeros_like(a) if d is None else d.detach() for a, d in zip(arch, grads)]
    finally:
        with torch.no_grad():
            for b, s in zip(module.buffers(), saved_b):
                b.copy_(s)


@dataclass
class HypergradientCheck:
    """Compares the finite-difference hypergradient with the exact one every ``every``-th
    second-order step and warns once when they disagree.

    Attributes:
        every: check the 1st, ``every+1``-th, ... call (``1``: every step).
        min_cosine, max_rel_error: the thresholds (``0.95``, ``0.2``); a check with a
            cosine below ``min_cosine`` or a relative error ``‖approx - exact‖ / ‖exact‖``
            above ``max_rel_error`` warns.
        records: ``(call, cosine, rel_error)`` of every check made.
        warned: whether the warning was issued (it is issued once).

    Examples:
        >>> check = HypergradientCheck()
        >>> check.compare([torch.tensor([1.0, 0.0])], [torch.tensor([1.0, 0.1])])
        (0.995..., 0.0995...)
    """

    every: int = 1
    min_cosine: float = 0.95
    max_rel_error: float = 0.2
    records: list = field(default_factory=list)
    warned: bool = False
    calls: int = 0

    def due(self) -> bool:
        """Whether this call is checked (counts the call)."""
        self.calls += 1
        return (self.calls - 1) % self.every == 0

    @staticmethod
    def compare(approx, exact) -> tuple[float, float]:
        """``(cosine, relative error)`` of two gradient lists, flattened together."""
        a = torch.cat([t.detach().double().reshape(-1) for t in approx])
        e = torch.cat([t.detach().double().reshape(-1) for t in exact])
        ne = float(e.norm())
        if ne == 0.0:
            return (1.0, 0.0) if float(a.norm()) == 0.0 else (0.0, float("inf"))
        cos = float(a @ e) / max(float(a.norm()) * ne, 1e-300)
        return cos, float((a - e).norm()) / ne

    def record(self, approx, exact, eps: float) -> tuple[float, float]:
        """Compare, keep the record, and warn (once) beyond the thresholds."""
        cos, rel = self.compare(approx, exact)
        self.records.append((self.calls, cos, rel))
        if (cos < self.min_cosine or rel > self.max_rel_error) and not self.warned:
            self.warned = True
            warnings.warn(
                f"second-order step {self.calls}: the finite-difference hypergradient "
                f"(eps = {eps:g} / ||grad_w' L_val||) is off the exact one: cosine {cos:.3f}, "
                f"relative error {100 * rel:.0f}% (it warns below cosine "
                f"{self.min_cosine:g} or above {100 * self.max_rel_error:.0f}%); lower "
                "unroll_eps, or take the result's architecture gradient as approximate",
                SearchWarning, stacklevel=3)
        return cos, rel


def unrolled_arch_grads(module, train_loss: Callable[[], torch.Tensor],
                        val_loss: Callable[[], torch.Tensor], optimizer, lr: float,
                        eps: float = 0.01, reduce_train: Callable | None = None,
                        reduce_val: Callable | None = None,
                        check: HypergradientCheck | None = None
                        ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The second-order gradient of every architecture parameter of ``module``.

    Args:
        train_loss: computes ``L_train`` at the module's current weights (a fresh forward;
            called three times, drawing the same random numbers each time).
        val_loss: computes ``L_val`` (plus any architecture regularizer).
        optimizer: the weight optimizer (its momentum buffers and weight decay enter the
            virtual step).
        lr: the current weight learning rate ``ξ``.
        reduce_train, reduce_val: ``f(grads, params) -> grads`` applied to every gradient
            of ``L_train`` / ``L_val`` (``None`` entries: no gradient) before it is used; a
            data-parallel run averages them over the processes here.
        check: a :class:`HypergradientCheck`; when it is due, the exact hypergradient is
            computed on the same batches and draws and compared (``val_loss`` then draws
            the same random numbers at each of its calls too).

    Returns:
        The gradients (one per ``module.arch_parameters()``) and ``L_val(w', α)``.
    """
    weights = [p for p in module.weights() if p.requires_grad]
    arch = module.arch_parameters()
    saved_w = [w.detach().clone() for w in weights]
    saved_b = [b.detach().clone() for b in module.buffers()]
    train_loss = _one_draw(train_loss, weights)
    checking = check is not None and check.due()
    if checking:
        val_loss = _one_draw(val_loss, weights)

    def grads_of(loss, params, reduce):
        if reduce is None:
            return _grads(loss, params)
        gs = reduce(list(torch.autograd.grad(loss, params, allow_unused=True)), params)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]

    try:
        g_train = grads_of(train_loss(), weights, reduce_train)
        with torch.no_grad():
            stepped = virtual_step(weights, g_train, optimizer, lr)
            for w, s in zip(weights, stepped):
                w.copy_(s)
        loss_val = val_loss()
        grads = grads_of(loss_val, arch + weights, reduce_val)
        d_alpha, d_w = grads[: len(arch)], grads[len(arch):]
        with torch.no_grad():
            for w, s in zip(weights, saved_w):
                w.copy_(s)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in d_w))
        r = eps / float(norm) if float(norm) > 0 else 0.0
        if r == 0.0:
            return d_alpha, loss_val.detach()
        hv = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, s, g in zip(weights, saved_w, d_w):
                    w.copy_(s + sign * r * g)
            hv.append(grads_of(train_loss(), arch, reduce_train))
        out = [da - lr * (gp - gn) / (2 * r) for da, gp, gn in zip(d_alpha, hv[0], hv[1])]
        if checking:
            with torch.no_grad():
                for w, s in zip(weights, saved_w):
                    w.copy_(s)
            check.record(out, exact_arch_grads(module, train_loss, val_loss, optimizer, lr),
                         eps)
        return out, loss_val.detach()
    finally:
        with torch.no_grad():
            for w, s in zip(weights, saved_w):
                w.copy_(s)
            for b, s in zip(module.buffers(), saved_b):
                b.copy_(s)
