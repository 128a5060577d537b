"""Evaluations of a discretized graph for :func:`~supernet.trials.run_trials`.

* :func:`tabular` -- look the architecture up in a tabular benchmark
  (:func:`supernet.tabular.load_benchmark`): ``bench.query(graph)``, free and exact.
* :func:`trained` -- train it briefly from scratch with
  :func:`supernet.train.retrain` and report its validation accuracy.

Both return picklable callables, as ``engine="ray"`` needs.

Examples:
    >>> import torch
    >>> from supernet import Graph
    >>> g = Graph("layer"); g.add_input("x", channels=4); g.add_node("h", channels=3)
    >>> g.add_edge("x", "h", "linear"); g.set_outputs(["h"])
    >>> x = torch.randn(32, 4); y = x[:, :3].argmax(1)
    >>> m = trained((x, y), (x, y), epochs=2, batch_size=16)(g)
    >>> sorted(m), 0.0 <= m["val_accuracy"] <= 1.0
    (['params', 'train_loss', 'val_accuracy'], True)
"""

from __future__ import annotations

from supernet.cost import weight_count
from supernet.errors import ConfigError
from supernet.train.retrain import retrain

__all__ = ["TabularEvaluate", "TrainedEvaluate", "tabular", "trained"]


class TabularEvaluate:
    """``bench.query(graph)``: the metrics a tabular benchmark holds for ``graph``."""

    def __init__(self, bench):
        if not callable(getattr(bench, "query", None)):
            raise ConfigError(f"tabular: {type(bench).__name__} has no query(graph); pass a "
                              "benchmark of supernet.tabular.load_benchmark(spec)")
        self.bench = bench

    def __call__(self, graph) -> dict:
        return self.bench.query(graph)

    def __repr__(self) -> str:
        return f"tabular({getattr(self.bench, 'name', type(self.bench).__name__)})"


def tabular(bench) -> TabularEvaluate:
    """The evaluate of a tabular benchmark: ``bench.query``."""
    return TabularEvaluate(bench)


class TrainedEvaluate:
    """Train ``graph`` from scratch (:func:`supernet.train.retrain`) and report
    ``val_accuracy`` (of the last epoch), ``train_loss`` and ``params``."""

    def __init__(self, train_data, val_data, epochs: int = 1, *, build=None, seed: int = 0,
                 **train_options):
        if val_data is None:
            raise ConfigError("trained: val_data is required (the search ranks by "
                              "val_accuracy)")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError(f"trained: epochs must be a positive int, got {epochs!r}")
        self.train_data, self.val_data, self.epochs = train_data, val_data, epochs
        self.build, self.seed, self.options = build, seed, dict(train_options)

    def __call__(self, graph) -> dict:
        result = retrain(graph, self.train_data, self.val_data, build=self.build,
                         seed=self.seed, epochs=self.epochs, **self.options)
        last = result.history[-1]
        params = weight_count(result.module)
        return {"val_accuracy": float(last["val_acc"]), "train_loss": float(last["loss"]),
                "params": float(params)}


def trained(train_data, val_data, epochs: int = 1, **options) -> TrainedEvaluate:
    """The evaluate that trains each architecture ``epochs`` epochs from scratch (same
    ``seed`` for every architecture) with :func:`supernet.train.retrain` ``options``
    (``batch_size``, ``lr``, ``steps_per_epoch``, ``build``, ``device``, ...)."""
    return TrainedEvaluate(train_data, val_data, epochs, **options)
