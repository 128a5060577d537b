"""The parts a search is composed of.

A search strategy = a :class:`~supernet.gates.Relaxation` (how gates act during training)
+ a :class:`DiscretizationPolicy` (when and how gates become graph edits: pruning of
candidate ops and edges) + optional :class:`CreationPolicy` objects (when and how the space
grows), driven by a bilevel loop that knows nothing about levels. Policies act only through
``state.editor``, so every structural change of a search is a recorded edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["SearchState", "DiscretizationPolicy", "CreationPolicy"]


@dataclass
class SearchState:
    """What policies see at their hooks.

    Attributes:
        graph: the super-network graph being searched (edited in place).
        module: its compiled module (``module.arch`` holds the gate logits).
        editor: a :class:`supernet.edits.Editor` bound to graph, module and both optimizers.
        epoch: epochs completed so far.
        epochs: total epochs planned.
        evaluate: ``evaluate() -> float``, validation accuracy of the current module.
        train: ``train(epochs) -> None``, weight-only training (fine-tuning between decisions).
        rebuild: ``rebuild(graph) -> None``, continue the search on a new graph (e.g. a
            deeper network with the pruned candidate sets, as in P-DARTS stages): the loop
            compiles it, moves the surviving architecture logits and rebuilds optimizers.
        history: per-epoch records (losses, accuracies, gate probabilities).
        config: the search configuration.
        arch_update: whether the loop makes architecture steps in the coming epoch; a
            policy clears it to train only the weights for a while (P-DARTS warms up the
            weights at the start of every stage).
        lr_cycle: ``(start, length)`` in epochs of the cosine learning-rate cycle the coming
            epochs follow (epoch ``e`` gets the rate of step ``e - start`` of ``length``);
            ``None``: one cycle over all epochs. P-DARTS restarts it at every stage.
    """

    graph: Any
    module: Any
    editor: Any
    epoch: int = 0
    epochs: int = 0
    evaluate: Callable[[], float] | None = None
    train: Callable[[int], None] | None = None
    rebuild: Callable[[Any], None] | None = None
    history: list = field(default_factory=list)
    config: Any = None
    arch_update: bool = True
    lr_cycle: tuple[int, int] | None = None


class DiscretizationPolicy:
    """Turns gates into pruning edits, during the search or at its end."""

    def on_epoch_end(self, state: SearchState) -> None:
        """Called after every search epoch; may apply edits through ``state.editor``."""

    def finalize(self, state: SearchState) -> None:
        """Discretize every gate left, so that the graph is a valid architecture."""
        raise NotImplementedError


class CreationPolicy:
    """Grows the space (candidate ops, nodes, units, connections) during the search."""

    def on_epoch_end(self, state: SearchState) -> None:
        """Called after every search epoch; may apply edits through ``state.editor``."""
