"""NAS-Bench-201 and NATS-Bench (topology): queries through the official APIs on small files
in the official formats return the files' numbers; official pickles are refused without
trust; the JSON conversion answers the same without unpickling."""

import pickle

import pytest

pytest.importorskip("nas_201_api")
pytest.importorskip("nats_bench")

import fixtures

from search_spaces import nasbench201 as nb
from supernet.errors import BenchmarkError, SerializationError
from supernet.spaces import create_space, decode
from supernet.tabular import load_benchmark
from supernet.tabular.nas_bench_201 import arch_string, convert

SMALL = {"C": 4, "N": 1}
WRITERS = {"nas-bench-201": (fixtures.write_nas_bench_201, "bench.pth"),
           "nats-tss": (fixtures.write_nats_tss, "bench.pickle.pbz2")}


@pytest.fixture(scope="module", params=sorted(WRITERS))
def official(request, tmp_path_factory):
    """(benchmark name, path of its official file, expected metrics)."""
    write, name = WRITERS[request.param]
    path = tmp_path_factory.mktemp(request.param) / name
    return request.param, str(path), write(path)


def _approx(metrics):
    return {k: pytest.approx(v, rel=1e-12) for k, v in metrics.items()}


def test_the_official_api_reads_the_fixture(official):
    kind, path, truth = official
    if kind == "nas-bench-201":
        from nas_201_api import NASBench201API

        api = NASBench201API(path, verbose=False)
    else:
        import nats_bench

        api = nats_bench.create(path, "tss", fast_mode=False, verbose=False)
    arch = fixtures.ARCHS[2]
    index = api.query_index_by_arch(arch)
    info = api.get_more_info(index, "cifar100", hp="200", is_random=False)
    assert index == 2 and info["valid-accuracy"] == pytest.approx(
        100 * truth[("200", "cifar100", arch)]["val_accuracy"])


@pytest.mark.parametrize("hp", ["12", "200"])
def test_queries_return_the_files_numbers(official, hp):
    kind, path, truth = official
    for dataset in ("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120"):
        bench = load_benchmark(f"{kind}:{dataset}", path=path, trust=True, hp=hp)
        assert bench.space == "nasbench201" and len(bench) == len(fixtures.ARCHS)
        for arch in fixtures.ARCHS:
            m = bench.query(decode("nasbench201", arch, **SMALL))
            assert set(m) == {"val_accuracy", "test_accuracy", "params", "flops",
                              "train_time", "latency"}
            assert {k: m[k] for k in truth[(hp, dataset, arch)]} == \
                _approx(truth[(hp, dataset, arch)])
            assert 0 <= m["val_accuracy"] <= 1 and isinstance(m["params"], int)
        key, best = bench.best()
        assert best["val_accuracy"] == max(truth[(hp, dataset, a)]["val_accuracy"]
                                           for a in fixtures.ARCHS)
        assert bench.query(bench.graph(key)) == best


def test_a_discretized_super_network_is_answered(official):
    kind, path, truth = official
    bench = load_benchmark(f"{kind}:cifar100", path=path, trust=True)
    g = create_space(bench.space, **bench.space_options, **SMALL)
    with pytest.raises(BenchmarkError, match=r"cifar100: nasbench201: cell edge 0->1 still has "
                                             r"5 candidate ops"):
        bench.query(g)
    arch = fixtures.ARCHS[0]
    cell = g.cells["cell"]
    for i, node in enumerate(nb.parse_arch(arch), start=1):
        for op, j in node:
            cell.set_ops(str(j), str(i), [nb.OP_TO_REGISTRY[op]])
    assert arch_string(g) == arch
    assert bench.query(g) == _approx({**bench.query(decode("nasbench201", arch)),
                                      **truth[("200", "cifar100", arch)]})


class _Touch:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_official_files_are_refused_without_trust(official, tmp_path, monkeypatch):
    kind, path, _ = official

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.Unpickler", no_unpickling)
    monkeypatch.setattr("torch.load", no_unpickling)
    message = (rf"{path}: the official {kind} file is a pickle; unpickling runs code from the "
               r"file, so it is not loaded. Pass trust=True if you trust its source, or convert "
               r"it once with supernet.tabular.nas_bench_201.convert")
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(f"{kind}:cifar10", path=path)
    with pytest.raises(BenchmarkError, match=message):
        convert(path, str(tmp_path / "out.json"), benchmark=kind)
    # a crafted file never runs
    marker, evil = tmp_path / "marker", tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(BenchmarkError, match="evil.pth: the official"):
        load_benchmark(f"{kind}:cifar10", path=str(evil))
    assert not marker.exists()


def test_the_converted_file_answers_without_unpickling(official, tmp_path, monkeypatch):
    kind, path, truth = official
    out = convert(path, str(tmp_path / "table.json"), benchmark=kind, trust=True)
    part = convert(path, str(tmp_path / "part.json"), benchmark=kind, trust=True,
                   datasets=["cifar100"], hps=["200"])
    graphs = [decode("nasbench201", a, **SMALL) for a in fixtures.ARCHS]
    expected = {(hp, ds): [load_benchmark(f"{kind}:{ds}", path=path, trust=True, hp=hp).query(g)
                           for g in graphs]
                for hp in ("12", "200") for ds in ("cifar10", "ImageNet16-120")}

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    monkeypatch.setattr("pickle.Unpickler", no_unpickling)
    monkeypatch.setattr("torch.load", no_unpickling)
    for (hp, ds), metrics in expected.items():
        bench = load_benchmark(f"{kind}:{ds}", path=out, hp=hp)
        assert [bench.query(g) for g in graphs] == metrics
        for g, arch in zip(graphs, fixtures.ARCHS):
            truth_of = truth[(hp, ds, arch)]
            assert {k: bench.query(g)[k] for k in truth_of} == _approx(truth_of)
        assert len(bench) == len(fixtures.ARCHS)
    other = "nats-tss" if kind == "nas-bench-201" else "nas-bench-201"
    with pytest.raises(SerializationError, match=f"table.json: not a {other} table"):
        load_benchmark(f"{other}:cifar10", path=out)
    with pytest.raises(BenchmarkError, match=r"part.json: no table of hp='12' on 'cifar100'; it "
                                             r"has \{'200': \['cifar100'\]\}"):
        load_benchmark(f"{kind}:cifar100", path=part, hp="12")


def test_refusals_name_the_element(official, monkeypatch, tmp_path):
    kind, path, _ = official
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"PK\x03\x04 not a benchmark")
    with pytest.raises(SerializationError, match=rf"damaged.pth: not a readable {kind} file"):
        load_benchmark(f"{kind}:cifar10", path=str(damaged), trust=True)
    bench = load_benchmark(f"{kind}:cifar10", path=path, trust=True)
    missing = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(BenchmarkError, match=rf"architecture '{missing.replace('|', '.')}' is "
                                             r"not in the table \(.*: 4 evaluated"):
        bench.query(decode("nasbench201", missing, **SMALL))
    unevaluated = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # in meta_archs
    with pytest.raises(BenchmarkError, match="is not in the table"):
        bench.query(decode("nasbench201", unevaluated, **SMALL))
    with pytest.raises(BenchmarkError, match=r"graph 'gnn' is of space 'gnn'; this benchmark "
                                             r"answers discretized graphs of space 'nasbench201'"):
        bench.query(create_space("gnn", in_channels=4, hidden=4, num_classes=2))
    with pytest.raises(BenchmarkError, match=rf"{kind}: unknown data set 'imagenet'; it has "
                                             r"\['cifar10', 'cifar10-valid', 'cifar100', "
                                             r"'ImageNet16-120'\]"):
        load_benchmark(f"{kind}:imagenet", path=path, trust=True)
    with pytest.raises(BenchmarkError, match=r"hp='100'; the benchmark trained with hp='12' or "
                                             r"hp='200'"):
        load_benchmark(f"{kind}:cifar10", path=path, trust=True, hp=100)
    monkeypatch.delenv("SUPERNET_NAS_BENCH_201", raising=False)
    monkeypatch.delenv("SUPERNET_NATS_TSS", raising=False)
    with pytest.raises(BenchmarkError, match=r"no benchmark file; pass path= \(the official "
                                             r".*\) or set SUPERNET_"):
        load_benchmark(f"{kind}:cifar10")
    with pytest.raises(BenchmarkError, match="no evaluated architecture of index 4"):
        bench.metrics_of(4)
