"""benchmarks/proxies_nas_bench_graph.py: the smoke run prints both tables."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

pytest.importorskip("supernet.tabular")

import proxies_nas_bench_graph as bench

from supernet.cost import cost


def test_quick_run_prints_the_tables(capsys):
    out = bench.main(["--quick", "--seeds", "2", "--archs", "3", "--boot", "20"])
    rows = {r["proxy"]: r for r in out["correlations"]}
    assert set(rows) == {"params", "flops", "bench params", "synflow (random graph)"}
    assert all(r["n"] == 6 and -1 <= r["lo"] <= r["hi"] <= 1 for r in rows.values())
    assert set(out["seconds"]) >= {"synflow", "naswot", "zico", "meco"}
    text = capsys.readouterr().out
    assert "| synflow (random graph) |" in text and "load average" in text
    assert "| **all 11** |" in text


def test_the_pyg_rules_count_a_gcn_layer():
    from search_spaces import gnn

    g = gnn.from_nas_bench_graph([0, 1, 2, 3], ["gcn", "fc", "fc", "fc"], in_channels=5,
                                 hidden=4, num_classes=3, pre=0, post=0)
    total = cost(g, input_shape=[5]).total
    # GCN 5->4 (20 + 4 bias), three 4->4 linear layers (3 * 20), the 4->3 classifier (15)
    assert (total.params, total.macs) == (24 + 60 + 15, 20 + 48 + 12)
