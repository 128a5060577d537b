"""Predictor-guided search: a GIN regressor over the graph IR picks what to evaluate.

The loop of BANANAS (White, Neiswanger, Savani, "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search", AAAI 2021, Algorithm 1) with the graph
predictor of NPENAS (Wei, Niu, Tang, Wang, Hu, "NPENAS: Neural Predictor Guided
Evolution for Neural Architecture Search", IEEE TNNLS 2022): the first ``initial`` asks
are uniform random architectures; then, each round,

1. an ensemble of ``ensemble`` GIN regressors (Xu et al., "How Powerful are Graph Neural
   Networks?", ICLR 2019; ``torch_geometric.nn.GINConv``, sum pooling) is trained from
   scratch on every told architecture, encoded by
   :class:`~supernet.trials.encoding.GraphEncoder` (nodes = tensors, features = the ops of
   their in-edges), targets standardized, mean squared error, full-batch Adam;
2. candidates are made as BANANAS optimizes its acquisition: ``candidates`` mutations
   (one decision changed, :func:`~supernet.trials.moves.mutate_one`) of the ``parents``
   best architectures told so far, round robin, plus ``random_candidates`` uniform random
   architectures (our addition, for exploration); candidates asked already are dropped;
3. the ``batch`` candidates of highest predicted metric are asked, best first.

Where it differs from BANANAS: the acquisition is the ensemble *mean* (greedy), not
independent Thompson sampling, and the encoding is the graph itself (a GIN, as NPENAS),
not the path encoding; from NPENAS it takes the GIN predictor, not its exact training
schedule. Layer-level super-networks only (the encoding reads ops on edges).

Examples:
    >>> from supernet.spaces import create_space
    >>> g = create_space("gnn", in_channels=4, hidden=8, num_classes=2, nodes=2)
    >>> s = PredictorSearch(g, initial=4, batch=2, candidates=8, epochs=5, seed=0)
    >>> for i in range(6):
    ...     t = s.ask(); s.tell(t, {"val_accuracy": i / 10})
    >>> s.rounds, len(s.history)
    (1, 6)
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINConv, global_add_pool

from supernet.errors import SearchError
from supernet.trials.base import Trial, TrialStrategy, register_trial_strategy
from supernet.trials.encoding import GraphEncoder
from supernet.trials.moves import mutate_one

__all__ = ["GINRegressor", "PredictorSearch"]


class GINRegressor(nn.Module):
    """``layers`` GIN convolutions of width ``hidden`` (each a two-layer MLP), sum pooling
    per graph, then a two-layer MLP to one number."""

    def __init__(self, num_features: int, hidden: int = 32, layers: int = 3):
        super().__init__()
        dims = [num_features] + [hidden] * layers
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)))
            for a, b in itertools.pairwise(dims))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, batch) -> torch.Tensor:
        h = batch.x
        for conv in self.convs:
            h = torch.relu(conv(h, batch.edge_index))
        return self.head(global_add_pool(h, batch.batch)).squeeze(-1)


def _positive(key, value, lo=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise SearchError(f"predictor: {key} must be an int >= {lo}, got {value!r}")


@register_trial_strategy("predictor")
class PredictorSearch(TrialStrategy):
    """Predictor-guided search (module docstring).

    Args:
        initial: random asks before the first predictor (BANANAS: 10).
        batch: asks per round (BANANAS: k = 10).
        candidates: mutations scored per round; ``parents``: how many of the best told
            architectures are mutated (BANANAS: 100 candidates from the 10 best).
        random_candidates: uniform random candidates added per round.
        ensemble: regressors averaged (BANANAS: 5).
        hidden, layers: of each :class:`GINRegressor`.
        epochs, lr, weight_decay: full-batch Adam steps of each training.
        **kwargs: of :class:`~supernet.trials.base.TrialStrategy`.
    """

    def __init__(self, supernet_graph, *, initial: int = 10, batch: int = 10,
                 candidates: int = 100, parents: int = 10, random_candidates: int = 20,
                 ensemble: int = 3, hidden: int = 32, layers: int = 3, epochs: int = 100,
                 lr: float = 3e-3, weight_decay: float = 1e-4, **kwargs):
        for key, value, lo in (("initial", initial, 2), ("batch", batch, 1),
                               ("candidates", candidates, 0), ("parents", parents, 1),
                               ("random_candidates", random_candidates, 0),
                               ("ensemble", ensemble, 1), ("hidden", hidden, 1),
                               ("layers", layers, 1), ("epochs", epochs, 1)):
            _positive(key, value, lo)
        if candidates + random_candidates < 1:
            raise SearchError("predictor: candidates + random_candidates must be >= 1")
        super().__init__(supernet_graph, **kwargs)
        self.encoder = GraphEncoder(supernet_graph, self.space)
        self.initial, self.batch, self.candidates = initial, batch, candidates
        self.parents, self.random_candidates, self.ensemble = parents, random_candidates, ensemble
        self.hidden, self.layers, self.epochs = hidden, layers, epochs
        self.lr, self.weight_decay = lr, weight_decay
        self.models: list[GINRegressor] = []
        self.rounds = 0
        self.queue: list[dict] = []
        self._data: dict[int, object] = {}
        self._scale = (0.0, 1.0)

    # ------------------------------------------------------------------ predictor
    def fit(self, trials: list[Trial] | None = None) -> None:
        """Train the ensemble afresh on ``trials`` (default: every told trial)."""
        trials = list(self.history) if trials is None else trials
        if len(trials) < 2:
            raise SearchError(f"predictor: fit needs at least 2 told trials, got {len(trials)}")
        data = [self._encoded(t) for t in trials]
        y = torch.tensor([self.value(t) for t in trials], dtype=torch.float32)
        mean, std = float(y.mean()), float(y.std())
        std = std if std > 1e-12 else 1.0
        self._scale = (mean, std)
        target = (y - mean) / std
        batch = Batch.from_data_list(data)
        self.models = []
        for k in range(self.ensemble):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed * 7919 + self.rounds * 101 + k)
                model = GINRegressor(self.encoder.num_features, self.hidden, self.layers)
            opt = torch.optim.Adam(model.parameters(), lr=self.lr,
                                   weight_decay=self.weight_decay)
            model.train()
            for _ in range(self.epochs):
                opt.zero_grad(set_to_none=True)
                loss = torch.mean((model(batch) - target) ** 2)
                loss.backward()
                opt.step()
            model.eval()
            self.models.append(model)

    def predict(self, choices: list[dict]) -> torch.Tensor:
        """The ensemble's mean predicted objective of each choice (larger is better; in
        the metric's units, negated for ``mode="min"``)."""
        if not self.models:
            raise SearchError("predictor: predict before fit; tell at least 2 trials and "
                              "call fit()")
        batch = Batch.from_data_list([self.encoder.from_choice(c) for c in choices])
        with torch.no_grad():
            out = torch.stack([m(batch) for m in self.models]).mean(0)
        mean, std = self._scale
        return out * std + mean

    def _encoded(self, trial: Trial):
        if trial.id not in self._data:
            self._data[trial.id] = self.encoder.from_choice(trial.choice)
        return self._data[trial.id]

    # ------------------------------------------------------------------ asks
    def _refill(self) -> None:
        self.fit()
        self.rounds += 1
        told = sorted(self.history, key=lambda t: (-self.value(t), t.id))[: self.parents]
        pool, keys = [], set()

        def add(c):
            k = self.space.encode(c)
            if k not in keys and not self.asked(c):
                keys.add(k)
                pool.append(c)

        for i in range(self.candidates):
            add(mutate_one(self.space, told[i % len(told)].choice, self.rng))
        for _ in range(self.random_candidates):
            add(self.space.sample(self.rng))
        if not pool:
            return
        scores = self.predict(pool)
        order = sorted(range(len(pool)), key=lambda i: (-float(scores[i]), i))
        self.queue = [pool[i] for i in order[: self.batch]][::-1]  # popped from the end

    def propose(self) -> dict:
        asked = len(self.history) + len(self.pending)
        if asked < self.initial or len(self.history) < 2:
            return self.space.sample(self.rng)
        if not self.queue:
            self._refill()
        return self.queue.pop() if self.queue else self.space.sample(self.rng)
