"""Tabular benchmarks: query the published metrics of an architecture instead of training it.

* :mod:`~supernet.tabular.base` -- the interface (:class:`TabularBenchmark`), the registry
  (:data:`TABULAR`, :func:`register_benchmark`) and :func:`load_benchmark`
* :mod:`~supernet.tabular.nas_bench_graph` -- NAS-Bench-Graph (``"nas-bench-graph:cora"``)
* :mod:`~supernet.tabular.nas_bench_201` -- NAS-Bench-201 and NATS-Bench's topology space
  (``"nas-bench-201:cifar10"``, ``"nats-tss:cifar100"``) through their official APIs
* :mod:`~supernet.tabular.unpickle` -- reading a benchmark's pickle without running code
"""

from supernet.tabular.base import (
                                   LOWER_IS_BETTER,
                                   TABULAR,
                                   TabularBenchmark,
                                   list_benchmarks,
                                   load_benchmark,
                                   register_benchmark,
)
from supernet.tabular.nas_bench_201 import NasBench201, NatsTopology
from supernet.tabular.nas_bench_graph import NasBenchGraph

__all__ = [
    "LOWER_IS_BETTER",
    "TABULAR",
    "NasBench201",
    "NasBenchGraph",
    "NatsTopology",
    "TabularBenchmark",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
]
