"""A failing edit leaves everything as it was, at every level: the graph and its version, every
tensor of the module (architecture logits and relaxation state too) and the optimizers."""

import copy
import functools

import pytest
import torch
from units_helpers import residual_cnn

import supernet as sn
import supernet.compiler.unit_sync as unit_sync
import supernet.edits.layer as layer_edits
from supernet.compiler.units import UnitModule
from supernet.edits import (
    AddConnections,
    AddEdge,
    AddOp,
    AddUnits,
    Editor,
    RemoveConnections,
    RemoveEdge,
    RemoveUnits,
    UngateConnections,
    UngateUnits,
)
from supernet.errors import EditError
from supernet.search.discretize.units import set_gated
from supernet.search.relaxations.base import use_relaxation
from supernet.search.relaxations.partial import PartialChannels
from supernet.units import mlp


class Injected(EditError):
    """The fault these tests inject."""


# ---------------------------------------------------------------------- what must not change
def capture(graph, net, opts):
    """Everything a failed edit must leave alone, copied."""
    return {
        "graph": graph.copy(),
        "version": graph.version,
        "state": {k: _copy(v) for k, v in net.state_dict().items()},
        "arch": {k: v.detach().clone() for k, v in net.arch.items()},
        "params": [id(p) for p in net.parameters()],
        "opts": [_opt_state(o) for o in opts],
    }


def _copy(value):
    return value.clone() if torch.is_tensor(value) else copy.deepcopy(value)


def _same(a, b) -> bool:
    if torch.is_tensor(b):
        return torch.is_tensor(a) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def _opt_state(opt):
    groups = [({k: v for k, v in g.items() if k != "params"}, [id(p) for p in g["params"]])
              for g in opt.param_groups]
    state = {id(p): {k: _copy(v) for k, v in s.items()}
             for p, s in opt.state.items()}
    return groups, state


def assert_unchanged(before, graph, net, opts):
    assert graph.same_as(before["graph"]) and graph.version == before["version"]
    state = net.state_dict()
    assert list(state) == list(before["state"])
    for k, v in before["state"].items():
        assert _same(state[k], v), k
    assert list(net.arch.keys()) == list(before["arch"])
    assert all(torch.equal(net.arch[k], v) for k, v in before["arch"].items())
    assert [id(p) for p in net.parameters()] == before["params"]
    for opt, (groups, state) in zip(opts, before["opts"]):
        now_groups, now_state = _opt_state(opt)
        assert now_groups == groups
        assert list(now_state) == list(state)
        for pid, entries in state.items():
            assert list(now_state[pid]) == list(entries)
            assert all(_same(now_state[pid][k], v) for k, v in entries.items())
    assert not net.is_stale()


# ---------------------------------------------------------------------- faults
def fail_after(fn):
    """``fn``, which then raises: the step it does has happened when the edit fails."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        fn(*args, **kwargs)
        raise Injected("injected fault")
    return wrapped


FAULTS = {
    # the optimizers were changed (state sliced, old tensors dropped), the module swapped
    "remove_params": lambda mp: mp.setattr(unit_sync, "remove_params",
                                           fail_after(unit_sync.remove_params)),
    # the last step of a synchronization: the module is marked synced with the new graph
    "after_sync": lambda mp: mp.setattr(UnitModule, "_after_sync",
                                        fail_after(UnitModule._after_sync)),
}


# ---------------------------------------------------------------------- unit levels
def channel_net():
    g = residual_cnn()
    Editor(g).apply(RemoveConnections("s0", "c1", dst=[0, 1], src=[0, 1]))
    set_gated(g, units=["c1"], connections=[("s0", "c1")])
    return g, ("c1", ("s0", "c1")), torch.randn(4, 3, 8, 8)


def neuron_net():
    g = mlp([5, 7, 6, 3], density=0.6, seed=0)
    missing = [(int(i), int(j)) for i, j in zip(*(~g.edge("x", "h1")["mask"].toarray())
                                                  .nonzero())][:2]
    set_gated(g, units=["h1"], connections=[("x", "h1")])
    return g, ("h1", ("x", "h1"), missing), torch.randn(4, 5)


def trained(graph, x):
    net = sn.compile(graph, seed=0)
    opts = [torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9),
            torch.optim.Adam(net.arch_parameters(), lr=0.01)]
    net(x).square().mean().backward()
    for o in opts:
        o.step()
        o.zero_grad()
    return net.eval(), opts


def unit_edits(level, where):
    node, (u, v) = where[0], where[1]
    if level == "channel":
        missing = [(0, 0), (1, 1)]
    else:
        missing = where[2]
    dst, src = [d for d, _ in missing], [s for _, s in missing]
    return {
        "add_units_zero": AddUnits(node, count=2, init="zero"),
        "add_units_split": AddUnits(node, source=[0], init="split", noise=0.1),
        "remove_units": RemoveUnits({node: [2]}),
        "add_connections": AddConnections(u, v, dst=dst, src=src, init="random"),
        "remove_connections": RemoveConnections(u, v, dst=[3], src=[3]),
        "ungate_units": UngateUnits([node]),
        "ungate_connections": UngateConnections([[u, v]]),
    }


LEVELS = {"channel": channel_net, "neuron": neuron_net}
KINDS = list(unit_edits("channel", ("c1", ("s0", "c1"))))


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", sorted(LEVELS))
def test_a_unit_edit_failing_in_the_module_step_changes_nothing(level, kind, fault, monkeypatch):
    g, where, x = LEVELS[level]()
    net, opts = trained(g, x)
    out = net(x)
    before = capture(g, net, opts)
    edit = unit_edits(level, where)[kind]
    with monkeypatch.context() as mp:
        FAULTS[fault](mp)
        with pytest.raises(Injected, match="injected fault"):
            Editor(g, net, opts, seed=0).apply(edit)
    assert_unchanged(before, g, net, opts)
    assert torch.equal(net(x), out)
    # the edit still applies afterwards, and training goes on
    Editor(g, net, opts, seed=0).apply(edit)
    net.train()(x).square().mean().backward()
    for o in opts:
        o.step()


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_a_unit_edit_failing_on_the_graph_changes_nothing(level):
    g, (node, (u, v), *_), x = LEVELS[level]()
    net, opts = trained(g, x)
    before = capture(g, net, opts)
    ed = Editor(g, net, opts, seed=0)
    with pytest.raises(EditError, match=f"node {node!r} has no unit"):
        ed.apply(RemoveUnits({node: [99]}))
    with pytest.raises(EditError, match=f"node {node!r} has no unit"):
        ed.apply(AddUnits(node, source=[99], init="split"))
    # the edge is created, then the ids are refused: the edge goes and the version is back
    with pytest.raises(EditError, match="has no unit"):
        ed.apply(AddConnections("x", "out" if level == "channel" else "y", dst=[0], src=[99],
                                edge={"kind": "dense"}))
    assert_unchanged(before, g, net, opts)
    assert len(ed.log) == 0


def test_a_tensor_written_in_place_by_a_failing_edit_is_reported(monkeypatch):
    g, (node, *_), x = neuron_net()
    net, opts = trained(g, x)
    kept = net.block("h2", "y").weight  # an AddUnits on h1 leaves it alone

    def corrupt(self):
        with torch.no_grad():
            kept.add_(1.0)
        raise Injected("injected fault")

    monkeypatch.setattr(UnitModule, "_after_sync", corrupt)
    with pytest.raises(EditError, match=r"wrote into 1 existing tensor\(s\) in place \(shapes "
                                        r"\[\(3, 6\)\]\)") as info:
        Editor(g, net, opts).apply(AddUnits(node, count=1))
    assert isinstance(info.value.__cause__, Injected)


# ---------------------------------------------------------------------- layer level
def layer_net():
    g = sn.Graph("layer", name="net")
    g.add_input("x", channels=4)
    g.add_node("a", channels=4)
    g.add_edge("x", "a", ["conv_3x3", "none"])
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["conv_3x3", "none", "skip_connect"])
    g.add_edge("a", "h", ["sep_conv_3x3", "none"])
    g.add_node("h2", channels=4)
    g.add_edge("x", "h2", ["conv_3x3", "none"])
    g.set_outputs(["h", "h2"])
    return g


@pytest.mark.parametrize("edit", [
    AddOp("x", "h", "sep_conv_5x5", init="zero"),
    AddOp("x", "h", "dil_conv_3x3", init="random"),
    AddOp("a", "h", "sep_conv_5x5", init="split", source="sep_conv_3x3", noise=0.1),
    AddEdge("a", "h2", ["conv_3x3", "none"], init="zero"),
    RemoveEdge("a", "h"),
], ids=lambda e: f"{e.kind}-{getattr(e, 'op', getattr(e, 'v', ''))}")
def test_a_layer_edit_failing_after_the_optimizers_changed_changes_nothing(edit, monkeypatch):
    g = layer_net()
    net = sn.compile(g)
    use_relaxation(net, PartialChannels(k=2))  # edge-normalization weights: relaxation state
    x = torch.randn(2, 4, 6, 6)
    opts = [torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9),
            torch.optim.Adam(net.arch_parameters(), lr=0.01)]
    both = lambda: torch.cat([y.flatten() for y in net(x)])  # noqa: E731
    both().square().mean().backward()
    for o in opts:
        o.step()
    net.eval()
    out = both()
    relax = net.relaxation.get_extra_state()
    before = capture(g, net, opts)
    with monkeypatch.context() as mp:
        mp.setattr(layer_edits, "replace_param", fail_after(layer_edits.replace_param))
        mp.setattr(layer_edits, "remove_params", fail_after(layer_edits.remove_params))
        with pytest.raises(Injected, match="injected fault"):
            Editor(g, net, opts, seed=0).apply(edit)
    assert_unchanged(before, g, net, opts)
    assert net.relaxation.get_extra_state() == relax
    assert torch.equal(both(), out)
