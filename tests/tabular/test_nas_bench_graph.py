"""NAS-Bench-Graph: queries equal the package's own reading, isomorphic DAGs share a key,
the JSON conversion is exact and unpickles nothing, every refusal names the element."""

import itertools
import random

import pytest
from nas_bench_graph.architecture import Arch, gnn_list, gnn_list_proteins, link_list
from nas_bench_graph.readbench import light_read

import supernet
from search_spaces import gnn
from supernet.errors import BenchmarkError, SerializationError, UnknownNameError
from supernet.spaces import create_space
from supernet.tabular import NasBenchGraph, load_benchmark
from supernet.tabular import nas_bench_graph as nbg

KW = {"in_channels": 5, "hidden": 8, "num_classes": 3}


@pytest.fixture(scope="module")
def cora():
    return load_benchmark("nas-bench-graph:cora")


@pytest.fixture(scope="module")
def cora_raw():
    return light_read("cora")


def _expected(raw, link, ops):
    e = raw[Arch(list(link), list(ops)).valid_hash()]
    return {"val_accuracy": float(e["valid_perf"]), "test_accuracy": float(e["perf"]),
            "params": round(float(e["para"]) * 1e6), "latency": float(e["latency"])}


def test_queries_equal_the_package_reading(cora, cora_raw):
    rng = random.Random(0)
    for _ in range(30):
        link = list(rng.choice(link_list))
        ops = [rng.choice(gnn_list[:-1])] + [rng.choice(gnn_list) for _ in range(3)]
        m = cora.query(gnn.from_nas_bench_graph(link, ops, **KW))
        assert m == _expected(cora_raw, link, ops)
        assert 0 <= m["val_accuracy"] <= 1 and 0 <= m["test_accuracy"] <= 1
        assert isinstance(m["params"], int) and m["params"] > 1000


def test_proteins_has_its_reduced_ops():
    bench = load_benchmark("nas-bench-graph:proteins")
    raw = light_read("proteins")
    assert len(bench) == len(raw) == 2021
    assert bench.space_options["ops"] == ["gcn", "sage", "arma", "linear", "skip"]
    for link, ops in [([0, 1, 2, 3], ["gcn", "sage", "arma", "fc"]),
                      ([0, 0, 1, 1], ["skip", "fc", "gcn", "gcn"])]:
        assert bench.query(gnn.from_nas_bench_graph(link, ops)) == _expected(raw, link, ops)
    with pytest.raises(BenchmarkError, match=r"proteins: node n2: op 'gat' is not an op of the "
                       r"benchmark on proteins; accepted ops: \['gcn', 'sage', 'arma', "
                       r"'linear', 'skip'\]"):
        bench.query(gnn.from_nas_bench_graph([0, 1, 2, 3], ["gcn", "gat", "arma", "fc"]))


def test_isomorphic_dags_give_the_same_metrics(cora):
    a, b, c, d = "gcn", "gat", "sage", "fc"
    variants = [  # node numbering permuted: the same DAG
        ([0, 0, 0, 1], [a, b, c, d]), ([0, 0, 0, 2], [b, a, c, d]), ([0, 0, 1, 0], [a, b, d, c]),
        ([0, 1, 0, 0], [a, d, b, c]),
    ]
    metrics = [cora.query(gnn.from_nas_bench_graph(lk, ops, **KW)) for lk, ops in variants]
    assert all(m == metrics[0] for m in metrics)
    # siblings of one parent commute, and a different DAG differs
    assert cora.query(gnn.from_nas_bench_graph([0, 0, 0, 0], [a, b, c, d])) == \
        cora.query(gnn.from_nas_bench_graph([0, 0, 0, 0], [d, c, b, a]))
    assert cora.query(gnn.from_nas_bench_graph([0, 1, 2, 3], [a, b, c, d])) != metrics[0]


def test_a_discretized_super_network_is_answered(cora, cora_raw):
    g = create_space(cora.space, **cora.space_options)
    picks = {"n1": ("pre1", "gat"), "n2": ("pre1", "arma"), "n3": ("n1", "graphconv"),
             "n4": ("n3", "identity")}
    for v, (keep, op) in picks.items():
        for u, _ in list(g.in_edges(v)):
            if u == keep:
                g.set_ops(u, v, [op])
            else:
                g.remove_edge(u, v)
    supernet.lint(g)
    assert cora.query(g) == _expected(cora_raw, [0, 0, 1, 3], ["gat", "arma", "graph", "skip"])


def test_every_key_maps_back_to_itself():
    for dataset, names in (("cora", gnn_list), ("proteins", gnn_list_proteins)):
        bench = load_benchmark(f"nas-bench-graph:{dataset}")
        for key in bench.keys():  # noqa: SIM118 (a benchmark, not a dict)
            link, ops = bench.link_ops(key)
            assert set(ops) <= set(names)
            assert Arch(link, ops).valid_hash() == key
    g = next(bench.archs(**KW))
    assert bench.key(g) == next(iter(bench.keys()))
    assert next(bench.archs(as_graphs=False)) == bench.link_ops(next(iter(bench.keys())))


def test_best_is_the_table_optimum(cora, cora_raw):
    key, m = cora.best()
    assert m["val_accuracy"] == max(e["valid_perf"] for e in cora_raw.values())
    assert cora.key(cora.graph(key)) == key
    key, m = cora.best("latency")
    assert m["latency"] == min(e["latency"] for e in cora_raw.values())
    with pytest.raises(BenchmarkError, match=r"no metric 'acc'; it has \['val_accuracy', "):
        cora.best("acc")


def test_convert_round_trips_every_entry_and_loads_without_unpickling(tmp_path, monkeypatch,
                                                                      cora, cora_raw):
    out = nbg.convert("cora", str(tmp_path / "cora.json"))
    with open(out, "rb") as f:
        assert f.read(1) == b"{"

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(nbg, "restricted_load", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.Unpickler", no_unpickling)
    bench = load_benchmark("nas-bench-graph:cora", path=out)
    assert len(bench) == len(cora_raw)
    for key, e in cora_raw.items():
        assert bench._rows[key] == (e["valid_perf"], e["perf"], e["latency"], e["para"])
    with pytest.raises(BenchmarkError, match=r"cora.json: holds the table of data set 'cora', "
                                             r"not 'pubmed'"):
        NasBenchGraph("pubmed", path=out)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(SerializationError, match="bad.json: not a NAS-Bench-Graph table"):
        NasBenchGraph("cora", path=str(bad))


REFUSED = [  # (graph, what the message says)
    (lambda: create_space("nasbench201", C=4, N=1),
     (r"cora: graph '.*' is of space 'nasbench201'; this benchmark answers discretized graphs "
     r"of space 'gnn'")),
    (lambda: gnn.decode("gcn~0 gcn~1 gcn~2", **KW),
     r"has 3 computing node\(s\) \('gcn~0 gcn~1 gcn~2'\); the benchmark's architectures have 4"),
    (lambda: gnn.decode("gcn~0 gin~0+sage~1 gcn~2 gcn~3", **KW),
     r"node n2 has 2 inputs \('gin~0\+sage~1'\)"),
    (lambda: gnn.decode("gcn~0 gin~1 none~2 gcn~3", **KW),
     (r"node n3: op 'none' is not an op of the benchmark on cora; accepted ops: \['gat', 'gcn', "
     r"'gin', 'cheb', 'sage', 'arma', 'graphconv', 'linear', 'skip'\]")),
    (lambda: gnn.gnn(**KW), r"cora: gnn: edge pre1->n1 still has 10 candidate ops"),
    (lambda: gnn.from_nas_bench_graph([0, 0, 0, 0], ["skip"] * 4, **KW),
     (r"architecture 'skip~0 skip~0 skip~0 skip~0' \(link \[0, 0, 0, 0\], ops \['skip', 'skip', "
     r"'skip', 'skip'\]\) is not in the table")),
]


@pytest.mark.parametrize("make, message", REFUSED)
def test_a_graph_outside_the_table_is_refused_naming_the_element(cora, make, message):
    graph = make()
    with pytest.raises(BenchmarkError, match=message):
        cora.query(graph)
    assert graph not in cora


def test_refusals_name_the_element(cora):
    with pytest.raises(BenchmarkError, match=r"unknown data set 'coraa'; it has \['arxiv', "
                       r"'citeseer', 'computers', 'cora', 'cs', 'photo', 'physics', 'proteins', "
                       r"'pubmed'\]"):
        load_benchmark("nas-bench-graph:coraa")
    with pytest.raises(UnknownNameError, match="could not resolve tabular benchmark "
                                               "'nas-bench-grph'.*did you mean 'nas-bench-graph'"):
        load_benchmark("nas-bench-grph:cora")
    with pytest.raises(BenchmarkError, match=r"got a str, not a supernet Graph"):
        cora.query("gcn~0 gcn~1 gcn~2 gcn~3")
    with pytest.raises(BenchmarkError, match=r"no table key 99999999"):
        cora.metrics_of(99999999)
    assert gnn.from_nas_bench_graph([0, 1, 2, 3], ["gcn"] * 4) in cora
    assert gnn.from_nas_bench_graph([0, 1, 2, 3], ["skip"] * 4) not in cora


def test_every_dataset_loads():
    for dataset in nbg.DATASETS:
        bench = load_benchmark(f"nas-bench-graph:{dataset}")
        assert len(bench) in (26206, 2021) and bench.space == "gnn"
        assert set(bench.space_options) == {"in_channels", "num_classes", "nodes", "ops"}
    assert list(itertools.islice(load_benchmark("nas-bench-graph:cora").keys(), 2)) == [0, 10000]
