"""What a stabilizer of differentiable search is, and the hooks the search loop calls.

A stabilizer changes how a search trains, not what it searches: a regularizer of the
architecture loss (β-DARTS), a change of the mixing weights a relaxation's decisions carry
in one kind of pass (SDARTS' perturbations, DARTS-' auxiliary skip), extra passes around
the weight step (SDARTS-ADV's attack) or a change of the architecture gradient before the
optimizer steps (Λ-DARTS). Stabilizers compose with any relaxation and policy: a strategy
holds a list of them (``stabilizers=[...]``), applied in order.

:class:`Stabilizer` is an ``nn.Module`` whose hooks are all optional; the loop calls each
one only if the stabilizer has it (an attribute of that name that is not ``None``).

Hooks, in the order a search calls them:

* ``attach(module)``: once when the search starts, and again when it continues on a new
  module (:meth:`~supernet.search.loop.BilevelSearch.rebuild`, P-DARTS' stages). Policies
  edit the module between epochs (gates change); a hook that depends on the gates reads
  them when it is called.
* ``on_epoch_start(epoch, epochs)``: before each search epoch (0-based ``epoch`` of
  ``epochs``): schedules.
* ``decisions(module, decisions, phase) -> decisions``: rewrites the decisions (gate key ->
  :class:`~supernet.gates.Decision`) the module's relaxation made for one forward pass of
  ``phase``. It is called on every pass the loop runs, never outside the loop (a module
  called by the user after the search runs as the relaxation decides). Return new
  decisions rather than editing the given ones in place (:func:`with_weights`).
* ``before_weight_step(search, batch)``: before the forward pass of each weight step, with
  the train batch ``(inputs, context, target)``; may run extra forward and backward passes
  (SDARTS-ADV's attack). It must not step an optimizer; the weight step zeroes the
  weights' gradients after it.
* ``after_weight_backward(search, params, batch)``: in each weight step (and each
  single-level step), after the gradient of the training loss reached the weights
  ``params`` and before it is averaged over the processes of a data-parallel run, clipped
  and stepped; ``batch`` is the train batch ``(inputs, context, target)``. It may add to
  ``p.grad`` of any ``p`` in ``params`` and run extra forward and backward passes
  (Λ-DARTS' finite differences).
* ``loss(module, phase) -> tensor | float``: added to the architecture loss (``phase``
  ``"arch"``: the bilevel architecture step, first or second order) and to the one loss of
  a single-level step (``"joint"``).
* ``after_arch_backward(search, arch, batch)``: after the architecture gradient is
  computed (first or second order, averaged over the processes of a data-parallel run) and
  before it is checked and the optimizer steps; ``arch`` is the list of architecture
  parameters, ``batch`` the batch ``(inputs, context, target)`` the gradient came from
  (validation; the train batch in a single-level step). It may change ``p.grad`` of any
  ``p`` in ``arch`` and run extra forward and backward passes (through
  ``search.module``, ``search.loss_fn``); the weights' gradients it leaves are discarded.

The phases (``phase`` above, and the one :meth:`StabilizerSet.phase` is in) are
``"weights"`` (a weight step on the train split), ``"arch"`` (the architecture step on the
validation split, its unrolled virtual step included), ``"joint"`` (a single-level step)
and ``"eval"`` (measuring the super-network). Outside them the phase is ``None`` and
``decisions`` is not called.

State that must survive a checkpoint lives in buffers or in ``get_extra_state`` (the
search saves each stabilizer's ``state_dict``).

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> class Halve(Stabilizer):  # halves the mixing weights of the weight step
    ...     def decisions(self, module, decisions, phase):
    ...         if phase != "weights":
    ...             return decisions
    ...         return {k: with_weights(d, d.weights / 2) for k, d in decisions.items()}
    >>> g = Graph("layer"); g.add_input("x", channels=2); g.add_node("h", channels=2)
    >>> g.add_edge("x", "h", ["identity", "none"]); g.set_outputs(["h"])
    >>> m = compile(g); x = torch.ones(1, 2, 1, 1)
    >>> hooks = StabilizerSet([Halve()]); hooks.attach(m)
    >>> with hooks.in_phase("weights"):
    ...     round(float(m(x)[0, 0]), 3)  # softmax weight 1/2 on the identity, halved
    0.25
    >>> round(float(m(x)[0, 0]), 3)  # outside the loop's phases: the relaxation alone
    0.5
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
import torch.nn as nn

from supernet.errors import SearchError
from supernet.gates import Decision

__all__ = ["Stabilizer", "StabilizerSet", "STABILIZER_PHASES", "HOOKS", "with_weights"]

#: The passes a stabilizer's hooks are told about.
STABILIZER_PHASES = ("weights", "arch", "joint", "eval")

#: The optional hooks of a stabilizer, by name.
HOOKS = ("attach", "on_epoch_start", "decisions", "before_weight_step",
         "after_weight_backward", "loss", "after_arch_backward")


def with_weights(decision: Decision, weights: torch.Tensor | None) -> Decision:
    """A copy of ``decision`` (of the same class, so it mixes the same way) carrying
    ``weights`` instead of its own."""
    out = copy.copy(decision)
    out.weights = weights
    return out


class Stabilizer(nn.Module):
    """Base class of the stabilizers of :mod:`supernet.search.stabilizers`.

    It defines no hook: a subclass defines those it needs (see the module docstring), and
    the loop calls only those.
    """

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())

    def options(self) -> dict:
        """The keyword arguments that build it again (its repr; a strategy's checkpoint
        keeps a registered stabilizer as its name and these)."""
        return {}


def _hook(obj, name):
    fn = getattr(obj, name, None)
    return fn if callable(fn) else None


class StabilizerSet:
    """The stabilizers of one search, applied in order, and the phase the loop is in.

    :meth:`attach` registers a forward hook on the module's relaxation so that every
    decision it makes in a phase passes through the stabilizers' ``decisions`` hooks;
    :meth:`detach` removes it.
    """

    def __init__(self, stabilizers=()):
        self.items = list(stabilizers)
        self.phase: str | None = None
        self.module = None
        self._relaxation = None
        self._handle = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def _each(self, name):
        return [fn for fn in (_hook(s, name) for s in self.items) if fn is not None]

    def has(self, hook: str) -> bool:
        """Whether any of the stabilizers defines ``hook`` (one of :data:`HOOKS`)."""
        return bool(self._each(hook))

    # -------------------------------------------------------------- wiring
    def attach(self, module) -> None:
        """(Re)attach to ``module``: each stabilizer's ``attach``, then the hook on its
        relaxation (moved there if the relaxation changed)."""
        self.module = module
        for fn in self._each("attach"):
            fn(module)
        self._rehook(module)

    def _rehook(self, module) -> None:
        relax = getattr(module, "relaxation", None)
        if relax is self._relaxation and self._handle is not None:
            return
        self.detach()
        if relax is not None and self.has("decisions"):
            self._handle = relax.register_forward_hook(self._rewrite)
            self._relaxation = relax

    def detach(self) -> None:
        """Remove the hook from the relaxation (the module then runs as it decides)."""
        if self._handle is not None:
            self._handle.remove()
        self._handle, self._relaxation = None, None

    def _rewrite(self, relaxation, args, decisions):
        if self.phase is None:
            return None
        for fn in self._each("decisions"):
            decisions = fn(self.module, decisions, self.phase)
        return decisions

    @contextmanager
    def in_phase(self, phase: str):
        """Run the block in ``phase`` (one of :data:`STABILIZER_PHASES`), then return to
        the phase before."""
        if phase not in STABILIZER_PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {list(STABILIZER_PHASES)}")
        before, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = before

    # -------------------------------------------------------------- hooks
    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        for fn in self._each("on_epoch_start"):
            fn(epoch, epochs)

    def loss(self, module, phase: str):
        """The sum of the stabilizers' losses (``None``: none has one)."""
        fns = self._each("loss")
        if not fns:
            return None
        total = 0.0
        for fn in fns:
            total = total + fn(module, phase)
        return total

    def before_weight_step(self, search, batch) -> None:
        for fn in self._each("before_weight_step"):
            fn(search, batch)

    def after_weight_backward(self, search, params, batch) -> None:
        for fn in self._each("after_weight_backward"):
            fn(search, params, batch)

    def after_arch_backward(self, search, arch, batch) -> None:
        for fn in self._each("after_arch_backward"):
            fn(search, arch, batch)

    # -------------------------------------------------------------- state
    def state_dict(self) -> list:
        return [s.state_dict() for s in self.items]

    def load_state_dict(self, states) -> None:
        states = list(states or [])
        if states and len(states) != len(self.items):
            raise SearchError(
                f"checkpoint: the search had {len(states)} stabilizer(s), this one has "
                f"{len(self.items)} ({[type(s).__name__ for s in self.items]}); pass the same "
                "strategy to resume")
        for s, st in zip(self.items, states):
            s.load_state_dict(st)

    def to(self, device) -> "StabilizerSet":
        for s in self.items:
            if isinstance(s, nn.Module):
                s.to(device)
        return self
