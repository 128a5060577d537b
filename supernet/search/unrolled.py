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
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["unrolled_arch_grads", "virtual_step"]


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


def unrolled_arch_grads(module, train_loss: Callable[[], torch.Tensor],
                        val_loss: Callable[[], torch.Tensor], optimizer, lr: float,
                        eps: float = 0.01, reduce_train: Callable | None = None,
                        reduce_val: Callable | None = None
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

    Returns:
        The gradients (one per ``module.arch_parameters()``) and ``L_val(w', α)``.
    """
    weights = [p for p in module.weights() if p.requires_grad]
    arch = module.arch_parameters()
    saved_w = [w.detach().clone() for w in weights]
    saved_b = [b.detach().clone() for b in module.buffers()]
    train_loss = _one_draw(train_loss, weights)

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
        return out, loss_val.detach()
    finally:
        with torch.no_grad():
            for w, s in zip(weights, saved_w):
                w.copy_(s)
            for b, s in zip(module.buffers(), saved_b):
                b.copy_(s)
