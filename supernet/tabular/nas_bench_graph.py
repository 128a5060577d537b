"""NAS-Bench-Graph (Qin et al., "NAS-Bench-Graph: Benchmarking Graph Neural Architecture
Search", NeurIPS 2022 Datasets and Benchmarks): 26,206 GNN architectures trained on nine
node-classification data sets.

An architecture is a DAG of 4 computing nodes, each applying one of 9 ops (``gat, gcn,
gin, cheb, sage, arma, graph, fc, skip``; on ``proteins`` the 5 ops ``gcn, sage, arma, fc,
skip``) to one earlier node; the output reads every leaf. It is the discretized ``gnn``
space of :mod:`search_spaces.gnn` (one input and one op per computing node). The results
ship offline in the PyPI package ``nas-bench-graph`` as one ``.bench`` file per data set
(``light/{dataset}.bench``): a pickle of ``{hash: {'valid_perf', 'perf', 'latency',
'para'}}`` with numpy scalars. They are read here with a restricted unpickler
(:mod:`supernet.tabular.unpickle`) that resolves only the numpy scalar reconstruction, and
:func:`convert` writes them once to a JSON file that later loads with no unpickling at all.

The table key is the package's own ``Arch(link, ops).valid_hash()``, which maps isomorphic
DAGs (the same architecture with its nodes numbered otherwise) to one key. A query answers:

* ``val_accuracy``, ``test_accuracy``: the benchmark's ``valid_perf`` and ``perf`` (accuracy
  as a fraction; ROC-AUC on ``proteins``, as the benchmark reports it);
* ``params``: the parameter count (the benchmark's ``para`` is in millions: it is
  multiplied by 10**6 and rounded);
* ``latency``: the benchmark's inference time, in seconds.

Only the cell is looked up: the hidden width, pre- and post-processing layers and training
hyper-parameters behind the numbers are the benchmark's (tuned per data set), whatever the
rest of the queried graph holds. ``space_options`` builds the 4-node super-network of the
benchmark's ops with the data set's input width and classes.

Examples:
    >>> from search_spaces import gnn
    >>> from supernet.tabular import load_benchmark
    >>> bench = load_benchmark("nas-bench-graph:cora")
    >>> g = gnn.from_nas_bench_graph([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    >>> m = bench.query(g)
    >>> sorted(m), round(m["val_accuracy"], 4), m["params"]
    (['latency', 'params', 'test_accuracy', 'val_accuracy'], 0.79, 765191)
    >>> bench.query(gnn.from_nas_bench_graph([0, 1, 1, 2], ["skip"] * 4))
    Traceback (most recent call last):
        ...
    supernet.errors.BenchmarkError: nas-bench-graph:cora: architecture 'skip~0 skip~1 skip~1 skip~2' (link [0, 1, 1, 2], ops ['skip', 'skip', 'skip', 'skip']) is not in the table (it holds every 4-node DAG of its ops except the all-'skip' ones)
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
from collections.abc import Iterator

from supernet.errors import BenchmarkError, GenotypeError, SerializationError
from supernet.io import atomic_write, read_json
from supernet.spaces import decode, encode
from supernet.tabular.base import TabularBenchmark, register_benchmark
from supernet.tabular.unpickle import NUMPY_SCALARS, restricted_load

__all__ = ["DATASETS", "NasBenchGraph", "bench_file", "convert", "read_bench"]

#: data set -> (input features, classes) of the benchmark's data (Planetoid, Coauthor,
#: Amazon, OGB), for the super-network's ``in_channels`` and ``num_classes``.
DATASETS = {
    "cora": (1433, 7), "citeseer": (3703, 6), "pubmed": (500, 3),
    "cs": (6805, 15), "physics": (8415, 5), "photo": (745, 8), "computers": (767, 10),
    "arxiv": (128, 40), "proteins": (8, 112),
}
#: The benchmark's op names that the ``gnn`` space spells otherwise (its text form uses the
#: space's names; the core reads the space only through :mod:`supernet.spaces`).
_SPACE_NAMES = {"graph": "graphconv", "fc": "linear"}
_COLUMNS = ("valid_perf", "perf", "latency", "para")
_FORMAT = "supernet-tabular"
_VERSION = 1


def _package():
    try:
        from nas_bench_graph import architecture
    except ImportError:
        raise BenchmarkError("nas-bench-graph: the package is not installed; pip install "
                             "nas-bench-graph") from None
    return architecture


def bench_file(dataset: str) -> str:
    """The path of the package's ``light/{dataset}.bench`` file."""
    _check_dataset(dataset)
    _package()
    return os.fspath(importlib.resources.files("nas_bench_graph") / "light" /
                     f"{dataset}.bench")


def _check_dataset(dataset) -> None:
    if dataset not in DATASETS:
        raise BenchmarkError(f"nas-bench-graph: unknown data set {dataset!r}; it has "
                             f"{sorted(DATASETS)}")


def _rows(raw, where: str) -> dict[int, tuple[float, ...]]:
    """``{hash: (valid_perf, perf, latency, para)}`` as Python numbers, checked."""
    if not isinstance(raw, dict):
        raise SerializationError(f"{where}: expected a table {{hash: metrics}}, got "
                                 f"{type(raw).__name__}")
    rows = {}
    for key, entry in raw.items():
        try:
            row = tuple(float(entry[c]) for c in _COLUMNS)
            key = int(key)
        except (KeyError, TypeError, ValueError):
            raise SerializationError(
                f"{where}: entry {key!r:.40} is not {{hash: {{{', '.join(map(repr, _COLUMNS))}"
                f"}}}}: {entry!r:.80}") from None
        rows[key] = row
    return rows


def read_bench(path: str) -> dict[int, tuple[float, ...]]:
    """The rows of a ``.bench`` pickle, read with the restricted unpickler (no code of the
    file runs): ``{hash: (valid_perf, perf, latency, para)}``."""
    return _rows(restricted_load(path, NUMPY_SCALARS), path)


def _read_json(path: str) -> tuple[str, dict[int, tuple[float, ...]]]:
    doc = read_json(path, "NAS-Bench-Graph table")
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT \
            or doc.get("benchmark") != "nas-bench-graph":
        raise SerializationError(f"{path}: not a NAS-Bench-Graph table written by "
                                 "supernet.tabular.nas_bench_graph.convert")
    if doc.get("version") != _VERSION or list(doc.get("columns", ())) != list(_COLUMNS):
        raise SerializationError(f"{path}: table version {doc.get('version')!r} with columns "
                                 f"{doc.get('columns')!r}; this reader reads version "
                                 f"{_VERSION} with columns {list(_COLUMNS)}")
    table = doc.get("table")
    if not isinstance(table, dict):
        raise SerializationError(f"{path}: no 'table' mapping")
    return doc.get("dataset"), _rows({k: dict(zip(_COLUMNS, v)) if isinstance(v, list) else v
                                      for k, v in table.items()}, path)


def convert(path_or_dataset: str, out: str) -> str:
    """Write the table of a data set name (the package's file) or of a ``.bench`` path to
    ``out`` as JSON, which :class:`NasBenchGraph` (``path=out``) loads without unpickling;
    returns ``out``. Every number round-trips exactly (JSON keeps float64 digits)."""
    if path_or_dataset in DATASETS and not os.path.exists(path_or_dataset):
        path, dataset = bench_file(path_or_dataset), path_or_dataset
    else:
        path = os.fspath(path_or_dataset)
        dataset = os.path.basename(path).split(".")[0]
    rows = read_bench(path)
    doc = {"format": _FORMAT, "benchmark": "nas-bench-graph", "version": _VERSION,
           "dataset": dataset, "source": os.path.basename(path), "columns": list(_COLUMNS),
           "table": {str(k): list(v) for k, v in rows.items()}}
    atomic_write(out, json.dumps(doc, separators=(",", ":")).encode())
    return out


@functools.lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int, size: int):
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"{":
        return _read_json(path)
    return None, read_bench(path)


@register_benchmark("nas-bench-graph")
class NasBenchGraph(TabularBenchmark):
    """NAS-Bench-Graph on one data set (see the module docstring).

    Args:
        dataset: one of :data:`DATASETS`.
        path: a table file: the JSON of :func:`convert` (read with no unpickling) or a
            ``.bench`` pickle (restricted unpickler); default: the package's file.
    """

    name = "nas-bench-graph"
    datasets = tuple(sorted(DATASETS))
    space = "gnn"
    metrics = ("val_accuracy", "test_accuracy", "params", "latency")

    def __init__(self, dataset: str, *, path: str | None = None):
        super().__init__(dataset)
        arch = _package()
        self._arch = arch
        self.bench_ops = tuple(arch.gnn_list_proteins if dataset == "proteins"
                               else arch.gnn_list)
        self.path = bench_file(dataset) if path is None else os.fspath(path)
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise SerializationError(f"cannot read {self.path!r}: {exc.strerror}") from None
        found, self._rows = _load(os.path.abspath(self.path), st.st_mtime_ns, st.st_size)
        if found is not None and found != dataset:
            raise BenchmarkError(f"{self.path}: holds the table of data set {found!r}, not "
                                 f"{dataset!r}")
        self.ops = tuple(_SPACE_NAMES.get(op, op) for op in self.bench_ops)
        features, classes = DATASETS[dataset]
        self.space_options = {"in_channels": features, "num_classes": classes, "nodes": 4,
                              "ops": list(self.ops)}

    # ------------------------------------------------------------------ graph -> key
    def arch(self, graph) -> tuple[list[int], list[str]]:
        """``(link, ops)`` of ``Arch`` for a discretized ``gnn`` graph, checked against
        the benchmark's DAG and op list."""
        self.check_graph_space(graph)
        try:
            text = encode(graph)
        except GenotypeError as exc:
            raise BenchmarkError(f"{self.spec}: {exc}") from None
        tokens = text.split()
        if len(tokens) != 4:
            raise BenchmarkError(
                f"{self.spec}: graph {graph.name!r} has {len(tokens)} computing node(s) "
                f"({text!r}); the benchmark's architectures have 4 (space option nodes=4)")
        link, ops = [], []
        for i, token in enumerate(tokens, start=1):
            parts = token.split("+")
            if len(parts) != 1:
                raise BenchmarkError(
                    f"{self.spec}: node n{i} has {len(parts)} inputs ({token!r}); a "
                    "benchmark node reads exactly one earlier node (max_inputs=1)")
            op, _, j = parts[0].partition("~")
            if op not in self.ops:
                raise BenchmarkError(
                    f"{self.spec}: node n{i}: op {op!r} is not an op of the benchmark on "
                    f"{self.dataset}; accepted ops: {list(self.ops)}")
            link.append(int(j))
            ops.append(self.bench_ops[self.ops.index(op)])
        return link, ops

    def key(self, graph) -> int:
        """The table key ``Arch(link, ops).valid_hash()`` of a discretized ``gnn`` graph."""
        link, ops = self.arch(graph)
        key = self._arch.Arch(link, ops).valid_hash()
        if key not in self._rows:
            text = " ".join(f"{self.ops[self.bench_ops.index(o)]}~{j}"
                            for j, o in zip(link, ops))
            raise BenchmarkError(
                f"{self.spec}: architecture {text!r} (link {link}, ops {ops}) is not in the "
                "table (it holds every 4-node DAG of its ops except the all-'skip' ones)")
        return key

    # ------------------------------------------------------------------ table
    def keys(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def metrics_of(self, key) -> dict:
        try:
            valid, test, latency, para = self._rows[key]
        except (KeyError, TypeError):
            raise BenchmarkError(f"{self.spec}: no table key {key!r:.40}") from None
        return {"val_accuracy": valid, "test_accuracy": test,
                "params": round(para * 1e6), "latency": latency}

    def link_ops(self, key) -> tuple[list[int], list[str]]:
        """The canonical ``(link, ops)`` of table key ``key`` (the inverse of
        ``Arch.hash_arch``: base-10 digits of the ops under the index of the link)."""
        if key not in self._rows:
            raise BenchmarkError(f"{self.spec}: no table key {key!r:.40}")
        names = self._arch.gnn_list  # valid_hash numbers ops in the full list, always
        base = len(names) + 1
        ops = []
        for _ in range(4):
            key, digit = divmod(key, base)
            ops.append(names[digit])
        return list(self._arch.link_list[key]), ops[::-1]

    def graph(self, key, **options):
        """The ``gnn`` graph of table key ``key`` (the space's ``decode``; ``options`` as
        its, e.g. ``hidden=``; by default the data set's input width and classes)."""
        link, ops = self.link_ops(key)
        text = " ".join(f"{_SPACE_NAMES.get(op, op)}~{j}" for j, op in zip(link, ops))
        kw = {k: v for k, v in self.space_options.items() if k not in ("nodes", "ops")}
        return decode(self.space, text, **{**kw, **options})

    def archs(self, as_graphs: bool = True, **options) -> Iterator:
        """Every architecture of the table, in its order: graphs (``options`` as
        :meth:`graph`'s) or, with ``as_graphs=False``, ``(link, ops)`` pairs."""
        for key in self._rows:
            yield self.graph(key, **options) if as_graphs else self.link_ops(key)
