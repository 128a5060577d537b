"""SPOS's second stage: evolutionary search over a trained super-network.

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling"
(ECCV 2020), Algorithm 1: a population of ``P`` random architectures (50), for ``T``
iterations (20): keep the ``k`` best (10), make ``P/2`` children by mutation (each choice
resampled with probability 0.1) and ``P/2`` by crossover of two parents, drop candidates
that violate the cost constraint or were seen already. Every candidate is scored on the
validation split by running its path through ``module(x, gates=...)``, after recomputing
the batch-norm statistics for that path on training batches (they are meaningless for a
single path after weight sharing).
"""

from __future__ import annotations

import random
from typing import Callable

import torch
import torch.nn as nn

from supernet.errors import SearchError
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.choices.base import choice_space
from supernet.search.discretize.base import discretize
from supernet.train.training import progress_bar

__all__ = ["evolutionary_search", "recalibrate_bn", "EvolutionDiscretization"]


def recalibrate_bn(module, batches, gates=None, max_batches: int | None = None) -> None:
    """Reset every batch norm of ``module`` and recompute its statistics (cumulative
    average) on ``batches`` of ``(inputs, context, target)``, running ``gates``."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was = module.training
    module.train()
    try:
        with torch.no_grad():
            for i, (inputs, ctx, _) in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                module(*inputs, gates=gates, **ctx)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        module.train(was)


def evolutionary_search(space, score: Callable[[dict], float], *,
                        population: int = 50, iterations: int = 20, topk: int = 10,
                        mutation_prob: float = 0.1, rng: random.Random | None = None,
                        constraint: Callable[[dict], bool] | None = None,
                        max_tries: int = 1000) -> tuple[dict, float, list]:
    """Maximize ``score(choice)`` over ``space``.

    Returns the best choice, its score and the per-iteration best scores.
    """
    rng = rng or random.Random(0)
    ok = constraint or (lambda c: True)
    seen: dict[tuple, float] = {}
    ranked: list[tuple[float, int, dict]] = []

    def consider(choice):
        key = space.encode(choice)
        if key in seen or not ok(choice):
            return False
        seen[key] = s = float(score(choice))
        ranked.append((s, len(seen), choice))
        return True

    def fill(make, n):
        added = tries = 0
        while added < n and tries < max_tries:
            tries += 1
            added += consider(make())

    fill(lambda: space.sample(rng), population)
    curve = []
    for _ in range(iterations):
        ranked.sort(key=lambda t: (-t[0], t[1]))
        parents = [c for _, _, c in ranked[:topk]]
        if not parents:
            break
        curve.append(ranked[0][0])
        fill(lambda: space.mutate(rng.choice(parents), mutation_prob, rng), population // 2)
        fill(lambda: space.crossover(rng.choice(parents), rng.choice(parents), rng),
             population - population // 2)
    ranked.sort(key=lambda t: (-t[0], t[1]))
    if not ranked:
        raise SearchError("evolutionary search: no candidate satisfies the constraint")
    return ranked[0][2], ranked[0][0], curve


class EvolutionDiscretization(DiscretizationPolicy):
    """SPOS: at the end of the search, find the best path by evolution, then keep it.

    Args:
        population, iterations, topk, mutation_prob: Algorithm 1 of the paper.
        bn_batches: training batches used to recalibrate batch norm per candidate.
        val_batches: validation batches per candidate (``None``: the whole split).
        constraint: ``constraint(choice) -> bool`` (e.g. a FLOPs budget).
        seed: seeds the evolution.
    """

    def __init__(self, population: int = 50, iterations: int = 20, topk: int = 10,
                 mutation_prob: float = 0.1, bn_batches: int = 20,
                 val_batches: int | None = None, constraint=None, seed: int = 0):
        self.population, self.iterations, self.topk = population, iterations, topk
        self.mutation_prob, self.bn_batches, self.val_batches = mutation_prob, bn_batches, val_batches
        self.constraint, self.seed = constraint, seed
        self.best = None
        self.best_score = None
        self.curve: list = []

    def finalize(self, state: SearchState) -> None:
        module = state.module
        space = choice_space(state.graph, module)
        like = next(iter(module.arch.values()))

        config = state.config
        # at most population * (iterations + 1) candidates, each recalibrated and measured
        bar = progress_bar(bool(config is not None and config.progress),
                           self.population * (self.iterations + 1), "evolution")

        def score(choice):
            gates = space.decisions(choice, like)
            recalibrate_bn(module, state.train_batches(), gates, self.bn_batches)
            value = state.evaluate(gates=gates, max_batches=self.val_batches)
            if bar is not None:
                bar.update(1)
            return value

        try:
            self.best, self.best_score, self.curve = evolutionary_search(
                space, score, population=self.population, iterations=self.iterations,
                topk=self.topk, mutation_prob=self.mutation_prob, rng=random.Random(self.seed),
                constraint=self.constraint)
        finally:
            if bar is not None:
                bar.close()
        recalibrate_bn(module, state.train_batches(), space.decisions(self.best, like),
                       self.bn_batches)
        state.extra["evolution"] = {"best": self.best, "score": self.best_score,
                                    "curve": self.curve}
        discretize(state.graph, module, state.editor, choice=self.best)

    def state_dict(self):
        return {"best": self.best, "best_score": self.best_score, "curve": self.curve}

    def load_state_dict(self, state):
        self.best = state.get("best")
        self.best_score = state.get("best_score")
        self.curve = list(state.get("curve", []))
