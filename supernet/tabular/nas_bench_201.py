"""NAS-Bench-201 (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020) and the topology space of NATS-Bench (Dong et al., "NATS-
Bench: Benchmarking NAS Algorithms for Architecture Topology and Size", TPAMI 2021): the
15,625 cells of the ``nasbench201`` space trained on CIFAR-10, CIFAR-100 and
ImageNet16-120, read through their official API packages (``nas-bench-201`` ->
``nas_201_api``, ``nats_bench``).

A discretized ``nasbench201`` graph is mapped to the benchmark's arch string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (the space's text form, a pruned edge written as
``none``) and queried with the API's ``query_index_by_arch`` and ``get_more_info(index,
dataset, hp=hp, is_random=False)`` (the mean over the benchmark's seeds). A query answers:

* ``val_accuracy``, ``test_accuracy``: the benchmark's accuracies (percent) as fractions.
  For ``cifar10``, whose networks were trained on train + valid, the validation accuracy is
  that of ``cifar10-valid`` (trained on train only, as the NAS-Bench-201 paper reports it)
  and the test accuracy that of ``cifar10``; ``cifar10-valid`` answers its own validation
  and test accuracies; ``cifar100`` and ``ImageNet16-120`` their ``x-valid`` and ``x-test``;
* ``params``: the parameter count (the benchmark's ``params`` is in millions, "MB");
* ``flops``: the benchmark's own, in its convention (millions of FLOPs);
* ``train_time``: the benchmark's total training time of ``hp`` epochs (seconds);
* ``latency``: its inference latency (seconds), where recorded.

The official files are pickles: NAS-Bench-201 ``NAS-Bench-201-v1_0-e61699.pth`` /
``NAS-Bench-201-v1_1-096897.pth`` (``torch.load``), NATS-Bench ``NATS-tss-v1_0-3ffb9
.pickle.pbz2`` or the directory ``NATS-tss-v1_0-3ffb9-simple``. Loading one runs code from
the file, so it is refused unless ``trust=True``; :func:`convert` writes the metrics used
here once to a JSON file that later loads with no unpickling (and without the API).

Examples:
    >>> import os, pickle, tempfile
    >>> from supernet.tabular import load_benchmark
    >>> path = os.path.join(tempfile.mkdtemp(), "NAS-Bench-201-v1_1-096897.pth")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"meta_archs": []}, f)
    >>> load_benchmark("nas-bench-201:cifar10", path=path)
    Traceback (most recent call last):
        ...
    supernet.errors.BenchmarkError: ...NAS-Bench-201-v1_1-096897.pth: the official nas-bench-201 file is a pickle; unpickling runs code from the file, so it is not loaded. Pass trust=True if you trust its source, or convert it once ...
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator

from supernet.errors import BenchmarkError, SerializationError, SupernetError
from supernet.io import atomic_write, read_json
from supernet.spaces import decode, encode
from supernet.tabular.base import TabularBenchmark, register_benchmark

__all__ = ["NasBench201", "NatsTopology", "arch_string", "convert"]

#: data set -> classes (the ``num_classes`` of the super-network).
CLASSES = {"cifar10": 10, "cifar10-valid": 10, "cifar100": 100, "ImageNet16-120": 120}
#: data set of a query -> (data set, ``get_more_info`` key) of its val and test accuracies.
_SPLITS = {
    "cifar10": (("cifar10-valid", "valid-accuracy"), ("cifar10", "test-accuracy")),
    "cifar10-valid": (("cifar10-valid", "valid-accuracy"), ("cifar10-valid", "test-accuracy")),
    "cifar100": (("cifar100", "valid-accuracy"), ("cifar100", "test-accuracy")),
    "ImageNet16-120": (("ImageNet16-120", "valid-accuracy"), ("ImageNet16-120", "test-accuracy")),
}
_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_FORMAT, _VERSION = "supernet-tabular", 1
_METRICS = ("val_accuracy", "test_accuracy", "params", "flops", "train_time", "latency")


def arch_string(graph, where: str = "") -> str:
    """The official arch string of a discretized ``nasbench201`` graph: the space's text
    form with each node's inputs in order (``|op~0|op~1|``), every edge present.

    Raises:
        BenchmarkError: the graph is not discretized, or a node lacks an input.
    """
    at = f"{where}: " if where else ""
    try:
        text = encode(graph)
    except SupernetError as exc:  # GenotypeError: the space's own message, naming the edge
        raise BenchmarkError(f"{at}{exc}") from None
    groups = []
    for i, node in enumerate(text.split("+"), start=1):
        items = sorted((int(j), op) for op, _, j in
                       (p.partition("~") for p in node.strip("|").split("|")))
        if [j for j, _ in items] != list(range(i)):
            raise BenchmarkError(f"{at}cell node {i} reads inputs {[j for j, _ in items]}; a "
                                 f"NAS-Bench-201 node reads every earlier node {list(range(i))}")
        bad = [op for _, op in items if op not in _OPS]
        if bad:
            raise BenchmarkError(f"{at}cell node {i}: op {bad[0]!r} is not a NAS-Bench-201 op; "
                                 f"accepted ops: {list(_OPS)}")
        groups.append("|" + "|".join(f"{op}~{j}" for j, op in items) + "|")
    return "+".join(groups)


# ---------------------------------------------------------------------- sources
class _ApiSource:
    """The official API over an official file (unpickled: the caller checked trust)."""

    def __init__(self, kind: str, path: str):
        self.kind, self.path = kind, path
        self.api = self._open(kind, path)
        self.archs = list(self.api.meta_archs)
        # fast mode reads each architecture's file when it is queried: all may be there
        self._evaluated = (list(range(len(self.archs))) if getattr(self.api, "fast_mode", False)
                           else sorted(self.api.arch2infos_dict))
        self._evaluated_set = set(self._evaluated)

    @staticmethod
    def _open(kind, path):
        try:
            if kind == "nas-bench-201":
                import torch
                from nas_201_api import NASBench201API

                data = torch.load(path, map_location="cpu", weights_only=False)
                return NASBench201API(data, verbose=False)
            import nats_bench

            return nats_bench.create(path, "tss", fast_mode=os.path.isdir(path),
                                     verbose=False)
        except ImportError as exc:
            package = "nas-bench-201" if kind == "nas-bench-201" else "nats_bench"
            raise BenchmarkError(f"{kind}: the official API package is not installed ({exc}); "
                                 f"pip install {package}") from None
        except (OSError, ValueError, KeyError, AssertionError, EOFError, RuntimeError,
                pickle.UnpicklingError) as exc:
            raise SerializationError(f"{path}: not a readable {kind} file "
                                     f"({type(exc).__name__}: {exc})") from None

    def evaluated(self) -> list[int]:
        return self._evaluated

    def index_of(self, arch: str) -> int:
        """The benchmark's index of arch string ``arch`` (-1: not in its space)."""
        return self.api.query_index_by_arch(arch)

    def metrics(self, index: int, dataset: str, hp: str) -> dict | None:
        """The metrics of ``index`` on ``dataset``, or None if it was not evaluated."""
        if index not in self._evaluated_set:
            return None
        (vds, vkey), (tds, tkey) = _SPLITS[dataset]
        try:
            val = self.api.get_more_info(index, vds, hp=hp, is_random=False)
            test = self.api.get_more_info(index, tds, hp=hp, is_random=False)
            own = test if tds == dataset else self.api.get_more_info(index, dataset, hp=hp,
                                                                      is_random=False)
            cost = self.api.get_cost_info(index, dataset, hp=hp)
        except (KeyError, ValueError, AssertionError) as exc:
            raise BenchmarkError(f"{self.path}: no {dataset} results of hp={hp!r} for "
                                 f"architecture {index} ({type(exc).__name__}: {exc})") \
                from None
        latency = cost.get("latency")
        return {"val_accuracy": float(val[vkey]) / 100, "test_accuracy": float(test[tkey]) / 100,
                "params": round(float(cost["params"]) * 1e6), "flops": float(cost["flops"]),
                "train_time": float(own["train-all-time"]),
                "latency": None if latency is None else float(latency)}


class _JsonSource:
    """A file written by :func:`convert`: no unpickling, no API."""

    def __init__(self, kind: str, path: str, dataset: str, hp: str):
        self.kind, self.path = kind, path
        doc = read_json(path, f"{kind} table")
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or \
                doc.get("benchmark") != kind:
            raise SerializationError(f"{path}: not a {kind} table written by "
                                     "supernet.tabular.nas_bench_201.convert")
        if doc.get("version") != _VERSION:
            raise SerializationError(f"{path}: table version {doc.get('version')!r}; this "
                                     f"reader reads version {_VERSION}")
        self.archs = list(doc.get("archs", ()))
        self.index = {a: i for i, a in enumerate(self.archs)}
        tables = doc.get("metrics", {})
        if hp not in tables or dataset not in tables[hp]:
            have = {h: sorted(t) for h, t in tables.items()}
            raise BenchmarkError(f"{path}: no table of hp={hp!r} on {dataset!r}; it has {have}")
        self.columns = tables[hp][dataset]
        if not isinstance(self.columns, dict) or sorted(self.columns) != sorted(_METRICS) or \
                any(len(c) != len(self.archs) for c in self.columns.values()):
            raise SerializationError(f"{path}: the {dataset} table of hp={hp!r} does not have "
                                     f"one value of each of {list(_METRICS)} per architecture")

        self._evaluated = [i for i, v in enumerate(self.columns["val_accuracy"])
                           if v is not None]

    def evaluated(self) -> list[int]:
        return self._evaluated

    def index_of(self, arch: str) -> int:
        return self.index.get(arch, -1)

    def metrics(self, index: int, dataset: str, hp: str) -> dict | None:
        if self.columns["val_accuracy"][index] is None:
            return None
        return {m: self.columns[m][index] for m in _METRICS}


def _is_converted(path: str) -> bool:
    if os.path.isdir(path):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"{"
    except OSError as exc:
        raise SerializationError(f"cannot read {path!r}: {exc.strerror or exc}") from None


def _refuse(kind: str, path: str):
    return BenchmarkError(
        f"{path}: the official {kind} file is a pickle; unpickling runs code from the file, "
        "so it is not loaded. Pass trust=True if you trust its source, or convert it once "
        f"with supernet.tabular.nas_bench_201.convert({os.path.basename(path)!r}, out, "
        f"benchmark={kind!r}, trust=True) and load out, which needs no unpickling")


# ---------------------------------------------------------------------- benchmarks
@register_benchmark("nas-bench-201")
class NasBench201(TabularBenchmark):
    """NAS-Bench-201 on one data set (see the module docstring).

    Args:
        dataset: ``cifar10``, ``cifar10-valid``, ``cifar100`` or ``ImageNet16-120``.
        path: the official file (a pickle: needs ``trust=True``) or the JSON of
            :func:`convert` (no unpickling). Default: the environment variable
            ``SUPERNET_NAS_BENCH_201`` (``SUPERNET_NATS_TSS`` for NATS-Bench).
        trust: allow unpickling an official file.
        hp: the training schedule of the benchmark: ``"200"`` epochs (default, the
            published results) or ``"12"``.
    """

    name = "nas-bench-201"
    datasets = tuple(CLASSES)
    space = "nasbench201"
    metrics = _METRICS
    env = "SUPERNET_NAS_BENCH_201"
    files = "NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth"

    def __init__(self, dataset: str, *, path: str | None = None, trust: bool = False,
                 hp: str = "200"):
        super().__init__(dataset)
        hp = str(hp)
        if hp not in ("12", "200"):
            raise BenchmarkError(f"{self.name}: hp={hp!r}; the benchmark trained with "
                                 "hp='12' or hp='200' epochs")
        self.hp = hp
        path = path if path is not None else os.environ.get(self.env)
        if path is None:
            raise BenchmarkError(
                f"{self.spec}: no benchmark file; pass path= (the official {self.files}, or "
                f"a JSON file of supernet.tabular.nas_bench_201.convert) or set {self.env}")
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise SerializationError(f"{self.spec}: no file {self.path!r}")
        if _is_converted(self.path):
            self._source = _JsonSource(self.name, self.path, dataset, hp)
        elif not trust:
            raise _refuse(self.name, self.path)
        else:
            self._source = _ApiSource(self.name, self.path)
        self.space_options = {"num_classes": CLASSES[dataset]}
        self._cache: dict[int, dict] = {}

    def key(self, graph) -> int:
        """The benchmark's index of a discretized ``nasbench201`` graph."""
        self.check_graph_space(graph)
        arch = arch_string(graph, self.spec)
        index = self._source.index_of(arch)
        if index < 0 or self._metrics(index) is None:
            raise BenchmarkError(f"{self.spec}: architecture {arch!r} is not in the table "
                                 f"({self.path}: {len(self)} evaluated architectures)")
        return index

    def _metrics(self, index):
        if index not in self._cache:
            m = self._source.metrics(index, self.dataset, self.hp)
            if m is None:
                return None
            self._cache[index] = m
        return self._cache[index]

    def keys(self) -> Iterator[int]:
        return iter(self._source.evaluated())

    def __len__(self) -> int:
        return len(self._source.evaluated())

    def metrics_of(self, key) -> dict:
        m = self._metrics(key) if isinstance(key, int) and 0 <= key < len(self._source.archs) \
            else None
        if m is None:
            raise BenchmarkError(f"{self.spec}: no evaluated architecture of index {key!r:.40}")
        return dict(m)

    def arch(self, key) -> str:
        """The arch string of index ``key``."""
        self.metrics_of(key)
        return self._source.archs[key]

    def graph(self, key, **options):
        """The ``nasbench201`` evaluation graph of index ``key`` (the space's ``decode``;
        ``options`` as its: ``C``, ``N``, ``num_classes``)."""
        return decode(self.space, self.arch(key), **{**self.space_options, **options})


@register_benchmark("nats-tss")
class NatsTopology(NasBench201):
    """NATS-Bench, topology search space (``tss``): the NAS-Bench-201 cells, retrained, read
    through ``nats_bench`` (same arguments as :class:`NasBench201`)."""

    name = "nats-tss"
    env = "SUPERNET_NATS_TSS"
    files = "NATS-tss-v1_0-3ffb9.pickle.pbz2 or the directory NATS-tss-v1_0-3ffb9-simple"


def convert(path: str, out: str, *, benchmark: str = "nas-bench-201", trust: bool = False,
            datasets=None, hps=None) -> str:
    """Write the metrics of an official file to ``out`` as JSON (every architecture it
    evaluated, on ``datasets`` (default: all four) and schedules ``hps`` (default: those the
    file has)); :class:`NasBench201` / :class:`NatsTopology` load ``out`` with no unpickling.
    Reading the official file unpickles it: ``trust=True`` is required. Returns ``out``."""
    cls = {"nas-bench-201": NasBench201, "nats-tss": NatsTopology}.get(benchmark)
    if cls is None:
        raise BenchmarkError(f"convert: benchmark {benchmark!r}; accepted: "
                             "['nas-bench-201', 'nats-tss']")
    if not trust:
        raise _refuse(benchmark, path)
    source = _ApiSource(benchmark, os.fspath(path))
    datasets = list(CLASSES) if datasets is None else list(datasets)
    bad = [d for d in datasets if d not in CLASSES]
    if bad:
        raise BenchmarkError(f"convert: unknown data set(s) {bad}; accepted: {list(CLASSES)}")
    have = sorted(getattr(source.api, "avaliable_hps", None) or ("12", "200"), key=int)
    hps = have if hps is None else [str(h) for h in hps]
    tables = {}
    evaluated = set(source.evaluated())
    for hp in hps:
        tables[hp] = {}
        for dataset in datasets:
            rows = [source.metrics(i, dataset, hp) if i in evaluated else None
                    for i in range(len(source.archs))]
            tables[hp][dataset] = {m: [None if r is None else r[m] for r in rows]
                                   for m in _METRICS}
    doc = {"format": _FORMAT, "benchmark": benchmark, "version": _VERSION,
           "source": os.path.basename(os.fspath(path)), "archs": source.archs,
           "metrics": tables}
    atomic_write(out, json.dumps(doc, separators=(",", ":")).encode())
    return out
