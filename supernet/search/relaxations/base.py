"""What a search loop asks of a relaxation beyond :class:`supernet.gates.Relaxation`.

:class:`SearchRelaxation` adds named, optional hooks; the loop calls each one only if the
relaxation has it, so a plain :class:`supernet.gates.Relaxation` (such as
:class:`~supernet.gates.Softmax`) works as it is.

Hooks, in the order a search calls them:

* ``attach(module)`` (from :class:`~supernet.gates.Relaxation`): once, when the relaxation is
  set on the module; may add architecture parameters of its own to ``module.arch``.
* ``on_epoch_start(epoch, epochs)``: schedules (temperature annealing).
* ``set_phase(phase)``: before each pass, ``"weights"`` (training the weights on the train
  split), ``"arch"`` (training the architecture parameters on the validation split) or
  ``"eval"`` (measuring: sampling relaxations then run their most likely path).
* ``loss(module)``: a regularizer added to the architecture loss.
* ``after_arch_step(module)``: after each optimizer step on the architecture parameters.
* ``probabilities(module)``: per gate, the weights a discretization ranks candidates by.
* ``resync(module)``: after each structural edit (resize attached parameters).
* ``resized_index(key)``: for an attached parameter that ``resync`` replaced by a resized
  one, per new entry the old entry it continues (``-1``: new); the edit then carries its
  optimizer state over (:func:`supernet.edits.sync_module`). Without it the state restarts.

State that must survive a checkpoint lives in buffers, or in ``get_extra_state``.
"""

from __future__ import annotations

import torch

from supernet.gates import Decision, PathDecision, Relaxation, _gate_items, gate_probabilities

__all__ = ["SearchRelaxation", "PHASES", "gate_probabilities", "set_phase", "argmax_decision",
           "PathDecision",
           "use_relaxation"]

PHASES = ("weights", "arch", "eval")


class SearchRelaxation(Relaxation):
    """Base class of the relaxations of :mod:`supernet.search.relaxations`.

    Attributes:
        phase: the current pass, one of :data:`PHASES` (default ``"weights"``).
    """

    def __init__(self):
        super().__init__()
        self.phase = "weights"

    def set_phase(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASES)}")
        self.phase = phase

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Called before each search epoch (0-based ``epoch`` of ``epochs``)."""

    def after_arch_step(self, module) -> None:
        """Called after each optimizer step on the architecture parameters."""

    def probabilities(self, module) -> dict[str, torch.Tensor]:
        """Per gate key, ``(n, K)`` weights (detached) that discretization ranks by."""
        return {k: torch.softmax(a.detach(), -1) for k, a in _gate_items(module)}



def set_phase(module, phase: str) -> None:
    """Tell the module's relaxation which pass comes next (if it cares)."""
    fn = getattr(getattr(module, "relaxation", None), "set_phase", None)
    if fn is not None:
        fn(phase)


def use_relaxation(module, relaxation) -> None:
    """Set ``relaxation`` on ``module`` and let it attach its own parameters."""
    module.relaxation = relaxation
    if relaxation is not None:
        relaxation.attach(module)


def argmax_decision(alpha: torch.Tensor) -> Decision:
    """The most likely candidate of each gate, alone, with weight one."""
    idx = alpha.detach().argmax(-1)
    weights = torch.nn.functional.one_hot(idx, alpha.shape[-1]).to(alpha.dtype)
    return PathDecision(weights, [[int(i)] for i in idx])
