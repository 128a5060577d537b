"""Iterative magnitude pruning (Han et al.): train, prune, retrain, repeat.

Han, Pool, Tran and Dally, "Learning both Weights and Connections for Efficient Neural
Networks" (NeurIPS 2015), Section 3 and Figure 2: a network is trained, the connections of
small magnitude are removed, and the network is retrained with the surviving weights as
they are (not re-initialized: "it is better to retain the weights from the initial training
phase", Section 3.3); pruning and retraining alternate ("iterative pruning", Section 3.3),
each round pruning more.

Here round ``k = 1..R`` is made at the end of epoch ``start + (k - 1) Δt`` and brings every
block (``scope="layer"``, as the paper prunes each layer by its own threshold) to the
sparsity

    ``s_k = 1 - (1 - s_f)^(k / R)``,

so that every round removes the same fraction of the connections still left, and the last
round reaches ``s_f`` exactly (``N - round(s_f N)`` connections per block); the epochs after
it retrain the final mask. The paper sets each layer's threshold as a multiple of the
standard deviation of its weights, chosen by a sensitivity analysis; this class takes the
threshold as the quantile that gives the scheduled sparsity instead, so one setting prunes
every layer alike. The surviving weights carry on from their trained values (the Adam or
momentum state with them): no rewinding, which is what the lottery-ticket procedure of
Frankle & Carbin (2019) would add. ``scope="global"`` ranks all blocks together.

Pruned connections leave through :class:`~supernet.edits.RemoveConnections` edits,
sharing :class:`~supernet.search.progressive.gradual.GradualMagnitude`'s pruning step; only
the schedule differs (geometric rounds after training, not a cubic ramp).

Examples:
    >>> imp = IterativeMagnitude(0.9, rounds=3, start=4, interval=2)
    >>> [round(imp.round_sparsity(k), 4) for k in (1, 2, 3)]
    [0.5358, 0.7846, 0.9]
    >>> [e for e in range(12) if imp.round_at(e)]
    [4, 6, 8]
"""

from __future__ import annotations

from supernet.errors import ConfigError
from supernet.search.base import SearchState
from supernet.search.progressive.gradual import GradualMagnitude

__all__ = ["IterativeMagnitude"]


class IterativeMagnitude(GradualMagnitude):
    """Rounds of magnitude pruning with retraining between them (module docstring).

    Args:
        sparsity: final sparsity ``s_f`` of every block (``scope="layer"``) or of all.
        rounds: ``R``, pruning rounds.
        start: epochs of training before the first round (at least one: Han et al. prune
            a trained network).
        interval: epochs ``Δt`` of retraining between rounds.
        scope: ``"layer"`` (the paper) or ``"global"``.
        edges: ``[(u, v), ...]`` to prune; ``None``: every dense or conv block without gates.

    Attributes:
        history: one record per round: epoch, sparsity, connections removed and left.
    """

    def __init__(self, sparsity: float, rounds: int = 5, start: int = 1, interval: int = 1,
                 scope: str = "layer", edges=None):
        for name, v, low in (("rounds", rounds, 1), ("start", start, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ConfigError(f"IterativeMagnitude: {name} must be an int >= {low}, got "
                                  f"{v!r}")
        super().__init__(sparsity, 0.0, start, interval, rounds, scope, edges)
        self.rounds = rounds

    def round_sparsity(self, k: int) -> float:
        """``s_k = 1 - (1 - s_f)^(k / R)``."""
        return 1.0 - (1.0 - self.sparsity) ** (k / self.rounds)

    def round_at(self, epoch: int) -> int | None:
        """The round ``k`` made at the end of ``epoch`` (completed epochs), or ``None``."""
        k, r = divmod(epoch - self.start, self.interval)
        return k + 1 if r == 0 and 0 <= k < self.rounds else None

    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        k = self.round_at(state.epoch)
        if k is not None:
            self.prune_to(state, self.round_sparsity(k))
            self.history[-1]["round"] = k
