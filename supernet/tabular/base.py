"""Tabular benchmarks: the evaluated metrics of every architecture of a search space.

A tabular benchmark (NAS-Bench-201, Dong & Yang, ICLR 2020; NAS-Bench-Graph, Qin et al.,
NeurIPS 2022 Datasets and Benchmarks) trained every architecture of a small space once and
published the results. A search queries it instead of training: ``bench.query(graph)``
returns the metrics of a discretized graph of the benchmark's space in a lookup, so that a
multi-trial search of hundreds of trials runs in seconds and its regret against
``bench.best()`` is exact.

:func:`load_benchmark` resolves ``"name:dataset"`` in the :data:`TABULAR` registry; a
benchmark class registered with :func:`register_benchmark` takes the data set as its first
argument. Every benchmark answers the same interface (:class:`TabularBenchmark`):

* ``name``, ``dataset``, ``spec`` (``"name:dataset"``);
* ``space`` and ``space_options``: ``supernet.spaces.create_space(bench.space,
  **bench.space_options)`` builds the super-network whose discretized graphs it accepts;
* ``metric``: the default objective (``"val_accuracy"``); ``metrics``: the keys of a query;
* ``query(graph) -> dict``: ``val_accuracy`` and ``test_accuracy`` as fractions in [0, 1],
  ``params`` (a count), and the benchmark's extras (``latency``, ``flops``, ``train_time``);
* ``len(bench)``, ``bench.keys()``, ``bench.metrics_of(key)``, ``bench.graph(key)``;
* ``best(metric=None) -> (key, metrics)``: the best architecture of the table (highest
  accuracy; lowest for the costs in :data:`LOWER_IS_BETTER`).

A graph outside the table fails with :class:`~supernet.errors.BenchmarkError` naming the
node, op or input at fault and what the benchmark accepts.

Examples:
    >>> from supernet.tabular import load_benchmark
    >>> bench = load_benchmark("nas-bench-graph:cora")
    >>> bench.spec, bench.space, bench.metric, len(bench)
    ('nas-bench-graph:cora', 'gnn', 'val_accuracy', 26206)
    >>> load_benchmark("nas-bench-graph")
    Traceback (most recent call last):
        ...
    supernet.errors.BenchmarkError: benchmark spec 'nas-bench-graph': expected 'name:dataset', e.g. 'nas-bench-graph:cora'; data sets of nas-bench-graph: ['arxiv', 'citeseer', 'computers', 'cora', 'cs', 'photo', 'physics', 'proteins', 'pubmed']
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

from supernet.errors import BenchmarkError
from supernet.registry import Registry, decorator

__all__ = [
    "LOWER_IS_BETTER",
    "TABULAR",
    "TabularBenchmark",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
]

#: Benchmark name -> class taking ``(dataset, **options)``.
TABULAR: Registry = Registry(
    "tabular benchmark", hint="register one with @supernet.tabular.register_benchmark")

#: ``@register_benchmark(name)``: register a :class:`TabularBenchmark` class.
register_benchmark = decorator(TABULAR)

#: Metrics of which the lowest value is the best (costs); every other metric is maximized.
LOWER_IS_BETTER = frozenset({"params", "flops", "latency", "train_time"})


def list_benchmarks() -> list[str]:
    """Every ``"name:dataset"`` spec that :func:`load_benchmark` accepts."""
    return [f"{name}:{d}" for name, cls in TABULAR.items() for d in cls.datasets]


def load_benchmark(spec: str, **options) -> TabularBenchmark:
    """The benchmark of ``spec`` (``"nas-bench-graph:cora"``, ``"nas-bench-201:cifar10"``);
    ``options`` go to its class (e.g. ``path=`` a converted file).

    Raises:
        UnknownNameError: the benchmark name is not registered (the message lists them).
        BenchmarkError: ``spec`` has no data set or an unknown one (the message lists them).
    """
    if not isinstance(spec, str):
        raise BenchmarkError(f"benchmark spec {spec!r}: expected a string 'name:dataset', "
                             "e.g. 'nas-bench-graph:cora'")
    name, _, dataset = spec.partition(":")
    cls = TABULAR.resolve(name, where=f"benchmark spec {spec!r}")
    if not dataset:
        raise BenchmarkError(
            f"benchmark spec {spec!r}: expected 'name:dataset', e.g. 'nas-bench-graph:cora'; "
            f"data sets of {name}: {list(cls.datasets)}")
    return cls(dataset, **options)


class TabularBenchmark(abc.ABC):
    """The table of one benchmark on one data set.

    A subclass sets the class attributes, fills ``self.dataset``, ``self.space_options``
    and implements the four hooks: :meth:`key` (graph -> table key, refusing what is not in
    the table), :meth:`keys`, :meth:`metrics_of` (key -> metrics) and :meth:`graph`
    (key -> discretized graph).

    Attributes:
        name: the registered name (``"nas-bench-graph"``).
        datasets: the data sets it has.
        space: the supernet space of its architectures (``"gnn"``).
        metric: the default objective of a search.
        metrics: the keys of every :meth:`query` answer.
    """

    name: str = ""
    datasets: tuple[str, ...] = ()
    space: str = ""
    metric: str = "val_accuracy"
    metrics: tuple[str, ...] = ("val_accuracy", "test_accuracy", "params")

    def __init__(self, dataset: str):
        if dataset not in self.datasets:
            raise BenchmarkError(
                f"{self.name}: unknown data set {dataset!r}; it has {list(self.datasets)}")
        self.dataset = dataset
        self.space_options: dict = {}

    @property
    def spec(self) -> str:
        """``"name:dataset"``, as :func:`load_benchmark` takes it."""
        return f"{self.name}:{self.dataset}"

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def key(self, graph):
        """The table key of a discretized graph of :attr:`space`.

        Raises:
            BenchmarkError: the graph is of another space, not discretized, or not in the
                table; the message names the node, op or input and what is accepted.
        """

    @abc.abstractmethod
    def keys(self) -> Iterator:
        """Every key of the table, in the table's order."""

    @abc.abstractmethod
    def metrics_of(self, key) -> dict:
        """The metrics of table key ``key`` (a new dict)."""

    @abc.abstractmethod
    def graph(self, key):
        """A discretized graph of :attr:`space` with table key ``key``."""

    # ------------------------------------------------------------------ queries
    def query(self, graph) -> dict:
        """The metrics of discretized graph ``graph`` (see the module docstring)."""
        return self.metrics_of(self.key(graph))

    def check_graph_space(self, graph) -> None:
        """Raise :class:`BenchmarkError` unless ``graph`` is a graph of :attr:`space`."""
        meta = getattr(graph, "meta", None)
        space = meta.get("space") if isinstance(meta, dict) else None
        if space != self.space:
            what = (f"graph {graph.name!r} is of space {space!r}" if isinstance(meta, dict)
                    else f"got a {type(graph).__name__}, not a supernet Graph")
            raise BenchmarkError(
                f"{self.spec}: {what}; this benchmark answers discretized graphs of space "
                f"{self.space!r} (supernet.spaces.create_space({self.space!r}, "
                "**bench.space_options), then discretize)")

    def check_metric(self, metric: str | None) -> str:
        """``metric`` (the default :attr:`metric` when None), if the benchmark has it."""
        metric = self.metric if metric is None else metric
        if metric not in self.metrics:
            raise BenchmarkError(f"{self.spec}: no metric {metric!r}; it has "
                                 f"{list(self.metrics)}")
        return metric

    def best(self, metric: str | None = None) -> tuple:
        """``(key, metrics)`` of the best architecture of the table under ``metric`` (the
        highest value; the lowest for :data:`LOWER_IS_BETTER`); ties go to the first key."""
        metric = self.check_metric(metric)
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        best_key, best_value = None, None
        for key in self.keys():
            value = sign * self.metrics_of(key)[metric]
            if best_value is None or value > best_value:
                best_key, best_value = key, value
        if best_key is None:
            raise BenchmarkError(f"{self.spec}: the table is empty")
        return best_key, self.metrics_of(best_key)

    def __contains__(self, graph) -> bool:
        try:
            self.key(graph)
        except BenchmarkError:
            return False
        return True

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, {len(self)} architectures)"
