"""The steps of the search loop: the two of the bilevel loop, and the single-level one.

* :func:`arch_step`: the architecture parameters on a validation batch, first order (the
  gradient of ``L_val + relaxation.loss`` (+ a budget's resource term), back-propagated to the architecture parameters
  only) or second order (:mod:`supernet.search.unrolled`); then the stabilizers'
  ``after_arch_backward``, the optimizer step and the relaxation's ``after_arch_step``. Non-finite losses, gradients or results stop the search (the
  parameters are put back first).
* :func:`weight_step`: the stabilizers' ``before_weight_step``, then the weights on a train
  batch (the stabilizers' ``after_weight_backward`` on their gradient, SGD, gradient
  clipping).
* :func:`joint_step`: single level (SNAS, Xie et al., ICLR 2019): one loss on one train
  batch, ``L_train + relaxation.loss`` (+ a budget's resource term), back-propagated once to
  the weights and the architecture parameters, then both optimizers step.

Each step runs in its phase of the search's stabilizers (``"arch"``, ``"weights"``,
``"joint"``; :mod:`supernet.search.stabilizers.base`), their losses are part of the
regularizer, and their ``decisions`` rewrite the relaxation's decisions of every pass.

Both take the :class:`~supernet.search.loop.BilevelSearch` they belong to. In a
data-parallel run (:mod:`supernet.distributed`) each process computes the gradients
of its part of the batch and they are averaged over the processes before anything is
checked or stepped, so every process checks and steps alike.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from supernet.search.relaxations.base import set_phase
from supernet.search.unrolled import HypergradientCheck, unrolled_arch_grads
from supernet.train.training import sample_count, top1_correct

__all__ = ["arch_step", "weight_step", "joint_step", "constants"]


def arch_step(self, val_batch, train_batch, lr: float, step: int):
    """One architecture step of search ``self`` on ``val_batch`` (raw, from the loader);
    ``train_batch`` (unpacked) serves the second-order virtual step. Returns
    ``(loss, correct, n)``."""
    with self.stabilizers.in_phase("arch"):
        return _arch_step(self, val_batch, train_batch, lr, step)


def _arch_step(self, val_batch, train_batch, lr: float, step: int):
    m, cfg = self.module, self.config
    e = self.state.epoch
    val_batch = self.batch_fn(val_batch)
    arch = m.arch_parameters()
    set_phase(m, "arch")
    reg = self.arch_regularizer("arch")  # relaxation, budget and stabilizers' terms
    self.a_opt.zero_grad(set_to_none=True)
    replicas = self.replicas
    replicas.sync_rng()
    if cfg.second_order:
        def train_loss():
            set_phase(m, "weights")
            return self._loss(train_batch)[0]

        def val_loss():
            set_phase(m, "arch")
            loss = self._loss(val_batch)[0]
            return loss + (reg(m) if reg else 0.0)

        def average(n):  # the gradients of every process's part of the batch, averaged
            if not replicas.active:
                return None
            return lambda grads, params: replicas.average(grads, params, torch.zeros(()), n)[0]

        check = None
        if cfg.check_hypergradient and not replicas.active:
            check = getattr(self, "hypergradient_check", None)
            if check is None:
                check = self.hypergradient_check = HypergradientCheck(
                    every=int(cfg.check_hypergradient))
        grads, loss = unrolled_arch_grads(m, train_loss, val_loss, self.w_opt, lr,
                                          cfg.unroll_eps, average(sample_count(train_batch[2])),
                                          average(sample_count(val_batch[2])), check)
        loss = replicas.average([], [], loss, sample_count(val_batch[2]))[1]
        self._check_finite(loss, e, step, "the validation loss (unrolled)")
        for p, g in zip(arch, grads):
            p.grad = g
        correct = None
    else:
        with constants(p for g in self.w_opt.param_groups for p in g["params"]):
            loss, out = self._loss(val_batch)  # no graph for the weights' gradients
        total = loss + (reg(m) if reg else 0.0)
        if torch.is_tensor(total) and total.requires_grad:  # else no arch parameter is used
            torch.autograd.backward(total, inputs=arch)
        total = replicas.average_grads(arch, total, sample_count(val_batch[2]))[0]
        self._check_finite(total, e, step, "the architecture loss")
        correct = top1_correct(out, val_batch[2])
    self.stabilizers.after_arch_backward(self, arch, val_batch)
    _step_arch(self, arch, step)
    return loss.detach(), correct, sample_count(val_batch[2])


@contextmanager
def constants(params):
    """Within the block, ``params`` are constants of the autograd graph: a forward run in it
    saves nothing for their gradients (the weight step never uses the architecture
    parameters' gradient, the first-order architecture step never uses the weights'). Their
    ``requires_grad`` flags are put back on leaving.

    Examples:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> with constants([w]):
        ...     y = (w * 2).sum()
        >>> y.requires_grad, w.requires_grad
        (False, True)
    """
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _step_arch(self, arch, step: int) -> None:
    """Step the architecture optimizer on the gradients in place, then the relaxation's
    ``after_arch_step``; a non-finite gradient or result stops the search (the parameters
    put back first)."""
    m, e = self.module, self.state.epoch
    grads = [p.grad for p in arch if p.grad is not None]
    if grads and not all(torch.isfinite(g).all() for g in grads):
        self._fail(f"non-finite architecture gradient at epoch {e + 1}, step {step}")
    backup = [p.detach().clone() for p in arch]
    try:
        self.a_opt.step()
        if hasattr(m.relaxation, "after_arch_step"):
            m.relaxation.after_arch_step(m)
        finite = all(torch.isfinite(p).all() for p in arch)
    except RuntimeError:  # e.g. an update that overflows the parameters' dtype
        finite = False
    if not finite:
        with torch.no_grad():
            for p, b in zip(arch, backup):
                p.copy_(b)
        self._fail(f"the architecture parameters became non-finite at epoch {e + 1}, "
                   f"step {step} (arch_lr={self.config.arch_lr})")


def weight_step(self, inputs, ctx, y, step: int = 0):
    """One weight step of search ``self``; returns ``(loss, correct, n)``."""
    with self.stabilizers.in_phase("weights"):
        return _weight_step(self, inputs, ctx, y, step)


def _weight_step(self, inputs, ctx, y, step: int):
    m = self.module
    e = self.state.epoch
    set_phase(m, "weights")
    self.replicas.sync_rng()
    self.stabilizers.before_weight_step(self, (inputs, ctx, y))
    with constants(m.arch_parameters()):  # no graph for the mixing weights' gradients
        out = m(*inputs, **ctx)
    loss = self.loss_fn(out, y)
    self.w_opt.zero_grad(set_to_none=True)
    params = [p for g in self.w_opt.param_groups for p in g["params"]]
    torch.autograd.backward(loss, inputs=params)
    self.stabilizers.after_weight_backward(self, params, (inputs, ctx, y))
    self._check_finite(self.replicas.average_grads(params, loss, sample_count(y))[0], e, step,
                       "the training loss")
    _step_weights(self, params, step)
    return loss.detach(), top1_correct(out, y), sample_count(y)


def _step_weights(self, params, step: int) -> None:
    """Clip the weight gradients (``grad_clip``) and step the weight optimizer."""
    if self.config.grad_clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if not torch.isfinite(norm):
            self._fail(f"non-finite weight gradient at epoch {self.state.epoch + 1}, "
                       f"step {step}")
    self.w_opt.step()


def joint_step(self, inputs, ctx, y, step: int = 0):
    """One single-level step of search ``self`` on the train batch ``(inputs, ctx, y)``:
    the gradient of ``L_train + reg`` (``reg``: the relaxation's loss and a budget's
    resource term) reaches the weights and the architecture parameters in one backward
    pass, and both optimizers step. Returns ``(loss, correct, n)`` of ``L_train``."""
    with self.stabilizers.in_phase("joint"):
        return _joint_step(self, inputs, ctx, y, step)


def _joint_step(self, inputs, ctx, y, step: int):
    m = self.module
    set_phase(m, "arch")
    reg = self.arch_regularizer("joint")
    self.replicas.sync_rng()
    out = m(*inputs, **ctx)
    loss = self.loss_fn(out, y)
    total = loss + (reg(m) if reg else 0.0)
    self.w_opt.zero_grad(set_to_none=True)
    self.a_opt.zero_grad(set_to_none=True)
    params = [p for g in self.w_opt.param_groups for p in g["params"]]
    arch = m.arch_parameters()
    torch.autograd.backward(total, inputs=params + arch)
    self.stabilizers.after_weight_backward(self, params, (inputs, ctx, y))
    total = self.replicas.average_grads(params + arch, total, sample_count(y))[0]
    self._check_finite(total, self.state.epoch, step, "the single-level loss")
    self.stabilizers.after_arch_backward(self, arch, (inputs, ctx, y))
    _step_weights(self, params, step)
    _step_arch(self, arch, step)
    return loss.detach(), top1_correct(out, y), sample_count(y)
