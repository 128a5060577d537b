"""Cost-aware searches (ProxylessNAS) with the cost model's tables: counted FLOPs and
parameters, measured latency."""

import pytest
import torch
from search_graphs import darts_like

import supernet
from search_spaces import mobilenet as mb
from supernet.cost.layer import gate_costs, graph_cost
from supernet.errors import ConfigError
from supernet.search import BilevelSearch, create_strategy
from supernet.search.relaxations import BinaryGates

KW = dict(width_mult=0.25, n_cell_stages=(1, 1, 1, 1, 1, 1), num_classes=3, last_channel=16,
          input_size=16)


def test_gate_costs_are_the_cost_models_per_candidate_figures():
    g = mb.proxyless(**KW)
    net = supernet.compile(g)
    report = graph_cost(g, (3, 16, 16))
    flops, params = gate_costs(net, "flops"), gate_costs(net, "params")
    assert list(flops) == list(net.gates())
    for key, ops in net.gates().items():
        assert flops[key] == [report.gates[key][op].macs for op in ops]
        assert params[key] == [report.gates[key][op].params for op in ops]
        assert all(v > 0 for op, v in zip(ops, flops[key]) if op.startswith("mbconv"))


def test_latency_table_has_every_candidate_timed_on_its_own_input():
    g = darts_like()  # cell templates: a gate's latency is summed over the template's calls
    net = supernet.compile(g)
    table = gate_costs(net, "latency", inputs=(torch.randn(1, 3, 8, 8),))
    assert set(table) == set(net.gates())
    for key, ops in net.gates().items():
        for op, ms in zip(ops, table[key]):
            assert (ms == 0.0) == (op == "none"), (key, op, ms)


def test_a_cost_weight_leads_the_search_to_a_cheaper_architecture():
    gen = torch.Generator().manual_seed(0)
    data = (torch.randn(64, 3, 16, 16, generator=gen), torch.randint(0, 3, (64,), generator=gen))
    macs = []
    for weight in (0.0, 1e-4):
        found = BilevelSearch(mb.proxyless(**KW), data,
                              strategy=create_strategy("proxyless", cost_weight=weight),
                              config={"epochs": 2, "batch_size": 16, "arch_lr": 0.05}).run().graph
        macs.append(graph_cost(found, (3, 16, 16)).total.macs)
    assert macs[1] < macs[0]


def test_cost_tables_need_what_they_measure():
    with pytest.raises(ConfigError, match=r"metric 'energy' is unknown; use one of \['flops'"):
        BinaryGates(cost_weight=1.0, metric="energy")
    net = supernet.compile(darts_like())  # its input declares channels, not a size
    with pytest.raises(ConfigError, match=r"input\(s\) \['x'\] declare no per-sample shape; "
                                          r"add shape=\[...\] to the input node"):
        gate_costs(net, "flops")


def test_latency_of_a_shared_cell_is_summed_over_its_calls(monkeypatch):
    import supernet.cost.latency as latency
    from supernet import Graph

    monkeypatch.setattr(latency, "_median_ms", lambda *a: 1.0)  # count the timed calls
    cell = Graph("layer", name="cell")
    cell.add_input("a", channels="$C")
    cell.add_node("h", channels="$C")
    cell.add_edge("a", "h", ["conv_3x3", "skip_connect", "none"])
    cell.set_outputs(["h"])
    for shared in (False, True):
        g = Graph("layer", name="net")
        g.add_input("x", channels=4, shape=[4, 8, 8])
        g.add_cell("c", cell)
        prev = "x"
        for i in range(3):
            g.add_call(f"k{i}", "c", [prev], bind={"C": 4}, **({"weights": "w"} if shared else {}))
            prev = f"k{i}"
        g.set_outputs([prev])
        table = gate_costs(supernet.compile(g), "latency")
        assert table == {"c:a->h": [3.0, 3.0, 0.0]}, (shared, table)


def test_latency_tables_refuse_a_unit_level_module():
    from supernet.cost.latency import gate_latency
    from supernet.units import mlp

    net = supernet.compile(mlp([4, 8, 2], density=0.5, seed=0))
    with pytest.raises(ConfigError, match=r"mlp.*: latency tables are built for the candidate ops "
                       r"of layer-level gates.*compile a layer-level graph"):
        gate_latency(net, (torch.randn(1, 4),))
