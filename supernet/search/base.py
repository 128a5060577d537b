"""The parts a search is composed of.

A search strategy = a :class:`~supernet.gates.Relaxation` (how gates act during training)
+ a :class:`DiscretizationPolicy` (when and how gates become graph edits: pruning of
candidate ops and edges) + optional :class:`CreationPolicy` objects (when and how the space
grows), driven by a bilevel loop (:class:`~supernet.search.loop.BilevelSearch`) that knows
nothing about levels. Policies act only through ``state.editor``, so every structural change
of a search is a recorded edit.

Hooks of a policy, in the order the loop calls them:

1. ``on_search_start(state)``: once, before the first epoch (not again after a resume).
2. ``on_epoch_end(state)``: after every epoch, creation policies first, then the
   discretization policy; ``state.epoch`` already counts the finished epoch. A policy may
   apply edits (the editor keeps both optimizers in step), call ``state.train(n)`` to tune
   the weights, ``state.evaluate()`` to measure, or set ``state.stop = True``.
3. ``finalize(state)``: discretization only, once after the last epoch: every gate left
   must go, so that the graph is a valid architecture.

A checkpoint is written after each epoch's hooks; ``state_dict()`` / ``load_state_dict()``
carry a policy's own state (counters, schedules) through it. They must return and accept
plain Python data or tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from supernet.errors import SearchError
from supernet.units.build import UNIT_LEVELS

__all__ = ["SearchState", "SearchWarning", "DiscretizationPolicy", "CreationPolicy", "Policy",
           "require_layer", "require_unit"]


class SearchWarning(UserWarning):
    """A search finished, but its result should not be trusted as it is (weights at chance,
    a second-order hypergradient far from the exact one)."""


@dataclass
class SearchState:
    """What policies see at their hooks.

    Attributes:
        graph: the super-network graph being searched (edited in place).
        module: its compiled module (``module.arch`` holds the gate logits).
        editor: a :class:`supernet.edits.Editor` bound to graph, module and both optimizers;
            ``editor.log`` is the search's edit log.
        epoch: epochs completed so far.
        epochs: total epochs planned.
        evaluate: ``evaluate(gates=None, max_batches=None) -> float``: accuracy (or minus
            the loss, for outputs that are not class scores) on the validation split, in
            eval mode; ``gates`` runs a chosen path (``module(x, gates=gates)``).
        train: ``train(epochs) -> None``, weight-only training on the train split (tuning
            between decisions), at the current learning rate.
        rebuild: ``rebuild(graph) -> None``, continue the search on a new graph (e.g. a
            deeper network with the pruned candidate sets, as in P-DARTS stages): the loop
            compiles it, moves the surviving architecture logits and rebuilds optimizers.
        history: per-epoch records (losses, accuracies, gate probabilities).
        config: the search configuration (:class:`~supernet.search.config.SearchConfig`).
        train_batches: ``train_batches() -> iterator`` of ``(inputs, context, target)``
            from the train split (one pass), e.g. to recalibrate batch-norm statistics.
        val_batches: the same over the validation split.
        weight_optimizer: the optimizer of ``module.weights()``.
        arch_optimizer: the optimizer of ``module.arch_parameters()`` (``None`` when the
            strategy trains no architecture parameter).
        stop: set it to end the search after the current epoch.
        extra: free room for policies to share data within one run (not checkpointed).
        arch_update: whether the loop makes architecture steps in the coming epoch; a
            policy clears it to train only the weights for a while (P-DARTS warms up the
            weights at the start of every stage).
        lr_cycle: ``(start, length)`` in epochs of the cosine learning-rate cycle the coming
            epochs follow (epoch ``e`` gets the rate of step ``e - start`` of ``length``);
            ``None``: one cycle over all epochs. P-DARTS restarts it at every stage.
        batch_size: the batch size of the train and validation loaders from the coming
            epoch on (``None``: ``config.batch_size``); SGAS grows it after each decision.
        step: weight steps of the search's epochs done so far (the steps ``state.train``
            makes are not counted); policies' :meth:`Policy.on_step_end` reads it.
        total_steps: the weight steps the search plans at its start (epochs x steps per
            epoch), ``None`` when the loop does not know them.
    """

    graph: Any
    module: Any
    editor: Any
    epoch: int = 0
    epochs: int = 0
    evaluate: Callable[..., float] | None = None
    train: Callable[[int], None] | None = None
    rebuild: Callable[[Any], None] | None = None
    history: list = field(default_factory=list)
    config: Any = None
    train_batches: Callable[[], Iterator] | None = None
    val_batches: Callable[[], Iterator] | None = None
    weight_optimizer: Any = None
    arch_optimizer: Any = None
    stop: bool = False
    extra: dict = field(default_factory=dict)
    arch_update: bool = True
    lr_cycle: tuple[int, int] | None = None
    batch_size: int | None = None
    step: int = 0
    total_steps: int | None = None


class Policy:
    """Hooks shared by discretization and creation policies (all optional)."""

    def on_search_start(self, state: SearchState) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, state: SearchState) -> None:
        """Called after every search epoch; may apply edits through ``state.editor``."""

    def on_step_end(self, state: SearchState) -> None:
        """Called after every weight step of the search's epochs (``state.step`` counts
        them); may apply edits through ``state.editor``."""

    def state_dict(self) -> dict:
        """The policy's own state, saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (on resume)."""


class DiscretizationPolicy(Policy):
    """Turns gates into pruning edits, during the search or at its end."""

    def finalize(self, state: SearchState) -> None:
        """Discretize every gate left, so that the graph is a valid architecture."""
        raise NotImplementedError


class CreationPolicy(Policy):
    """Grows the space (candidate ops, nodes, units, connections) during the search."""


def require_layer(graph, what: str, instead: str) -> None:
    """Refuse a channel- or neuron-level graph for a part of a search that decides, mixes or
    samples the candidate ops of layer-level edges (unit-level gates keep or drop units and
    connections instead).

    Args:
        what: what the part does, as a clause (``"SGAS works on the candidate ops of
            layer-level edges"``).
        instead: what to use at the unit levels.
    """
    level = getattr(graph, "level", "layer")
    if level != "layer":
        raise SearchError(
            f"{graph.name}: {what}, but this graph is {level}-level (keep/drop gates of units "
            f"and connections); {instead}"
        )


def require_unit(graph, policy: str, instead: str, levels=UNIT_LEVELS) -> None:
    """Raise :class:`SearchError` unless ``graph`` is of one of the unit ``levels`` (default
    channel or neuron; a part that needs scalar weights passes ``("neuron",)``)."""
    if getattr(graph, "level", None) not in levels:
        works = ("removes units and connections of channel- or neuron-level graphs"
                 if tuple(levels) == tuple(UNIT_LEVELS) else
                 f"works on {' and '.join(levels)}-level graphs")
        raise SearchError(f"{graph.name}: {policy} {works}, but this graph is "
                          f"{graph.level}-level; {instead}")
