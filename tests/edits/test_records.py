"""Edit records are data: every kind round-trips through its dict, applying one leaves it as it
was (a drawn seed aside), and the registry of kinds behaves as every registry does."""

import copy
import dataclasses
import json

import pytest
import torch

import supernet as sn
from supernet.edits import (
    EDITS,
    AddConnections,
    AddEdge,
    AddNode,
    AddOp,
    AddUnits,
    Edit,
    EditLog,
    AddWiredUnits,
    Editor,
    InsertGroup,
    NarrowCall,
    RemoveConnections,
    RemoveEdge,
    RemoveNode,
    RemoveOp,
    RemoveUnits,
    UngateConnections,
    UngateUnits,
    edit_from_dict,
    register_edit,
)
from supernet.errors import DuplicateNameError, UnknownNameError
from supernet.search.discretize.units import set_gated
from supernet.units import mlp


def layer_graph():
    g = sn.Graph("layer", name="net")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4)
    g.add_edge("x", "h", ["conv_3x3", "none"])
    g.set_outputs(["h"])
    return g


LAYER = [
    AddNode("n", channels=4, attrs={"train_only": False}),
    AddEdge("x", "n", ["conv_3x3", "none"], init="zero"),
    AddEdge("n", "h", ["conv_3x3", "none"], init="zero"),
    AddOp("x", "h", "sep_conv_3x3", init="zero", share=0.25),
    AddOp("x", "h", "sep_conv_5x5", init="split", source="sep_conv_3x3", noise=0.01, seed=4),
    RemoveOp("x", "h", "sep_conv_3x3"),
    RemoveEdge("n", "h"),
    RemoveNode("n"),
]


def unit_graph():
    g = mlp([4, 6, 3], seed=0)
    set_gated(g, units=["h1"], connections=[("x", "h1")])
    return g


UNITS = [
    RemoveConnections("x", "h1", dst=[0, 1], src=[0, 1]),
    AddConnections("x", "h1", dst=[0], src=[0], init="zero"),
    AddConnections("x", "h1", dst=[1], src=[1], init="random", seed=9),
    AddUnits("h1", count=2, init="zero"),
    AddUnits("h1", source=[1], init="split", noise=0.01),
    RemoveUnits({"h1": [0]}, tied=True),
    UngateConnections([["x", "h1"]]),
    UngateUnits(["h1"]),
    InsertGroup("h1", "y", node="h2", noise=0.01),
    AddWiredUnits("h2", 2, incoming=[["h1", 0, 1, 0.5], ["h1", 1, 3, -0.1]],
                  outgoing=[["y", 1, 0, 0.2]]),
]


#: records of graphs with cell calls (applied in tests/search/test_crosslevel.py)
CALLS = [NarrowCall("cell0", 4, symbol="C", cell=None)]


def test_every_registered_edit_kind_round_trips_through_its_dict():
    samples = {e.kind: e for e in LAYER + UNITS + CALLS}
    ours = [k for k in EDITS.list() if EDITS.resolve(k).__module__.startswith("supernet.")]
    assert sorted(samples) == ours, "give every edit kind of supernet a sample here"
    for kind in EDITS.list():
        cls = EDITS.resolve(kind)
        record = samples.get(kind) or cls()
        data = json.loads(json.dumps(record.to_dict()))
        assert data["kind"] == kind
        back = edit_from_dict(data)
        assert type(back) is cls and back == record
        assert back.to_dict() == data


@pytest.mark.parametrize("build,records", [(layer_graph, LAYER), (unit_graph, UNITS)],
                         ids=["layer", "units"])
def test_applying_a_record_leaves_it_as_it_was(build, records):
    g = build()
    net = sn.compile(g, seed=0) if g.level != "layer" else sn.compile(g)
    ed = Editor(g, net, torch.optim.SGD(net.parameters(), lr=0.1), seed=1)
    for record in copy.deepcopy(records):
        fields = {f.name for f in dataclasses.fields(record)}
        before, attrs = record.to_dict(), dict(vars(record))
        applied = ed.apply(record).edit
        assert vars(record) == attrs  # the record given is untouched
        assert set(vars(applied)) == fields, f"{record.kind} keeps scratch state"
        if "seed" in fields and before["seed"] is None:
            assert applied is not record and isinstance(applied.seed, int)
            before["seed"] = applied.seed
        else:
            assert applied is record
        assert applied.to_dict() == before
    assert len(ed.log) == len(records)


def test_a_kind_registered_twice_is_refused_unless_overridden():
    with pytest.raises(DuplicateNameError, match="edit kind 'add_units' is registered already; "
                                                 "pass override=True"):
        @register_edit
        @dataclasses.dataclass
        class Again(Edit):
            kind = "add_units"
            operator = "neuron_creation"

    try:
        @register_edit
        @dataclasses.dataclass
        class Mine(Edit):
            kind = "my_edit"
            operator = "synaptogenesis"
            weight: float = 1.0

        assert edit_from_dict({"kind": "my_edit", "weight": 2.0}) == Mine(2.0)

        @register_edit(override=True)
        @dataclasses.dataclass
        class Mine2(Edit):
            kind = "my_edit"
            operator = "synaptogenesis"

        assert type(edit_from_dict({"kind": "my_edit"})) is Mine2
    finally:
        EDITS.unregister("my_edit")


def test_an_unknown_kind_fails_with_the_registry_message():
    with pytest.raises(UnknownNameError, match=r"edit record: could not resolve edit kind "
                                               r"'add_unit' among \['add_connections', .*\]; "
                                               r"did you mean 'add_units'\?"):
        edit_from_dict({"kind": "add_unit", "node": "h1"})
    with pytest.raises(UnknownNameError, match="could not resolve edit kind None"):
        edit_from_dict({"node": "h1"})


def test_a_saved_log_with_policy_names_replays_bitwise(tmp_path):
    # a log as written to disk: policies are plain names
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"edits": [
        {"kind": "add_units", "node": "h1", "count": 2, "init": "zero", "source": None,
         "noise": 0.0, "connect": "full", "seed": 11},
        {"kind": "add_units", "node": "h1", "count": 1, "init": "split", "source": [0],
         "noise": 0.1, "connect": "full", "seed": 12},
        {"kind": "add_connections", "u": "x", "v": "y", "dst": [0], "src": [1], "taps": None,
         "init": "random", "edge": {"kind": "dense"}, "seed": 13},
    ]}))
    g = mlp([4, 6, 3], seed=0)
    g0, net = g.copy(), sn.compile(g, seed=0)
    net0 = copy.deepcopy(net)
    ed = Editor(g, net)
    ed.apply(AddUnits("h1", count=2, init="zero", seed=11))
    ed.apply(AddUnits("h1", source=[0], init="split", noise=0.1, seed=12))
    ed.apply(AddConnections("x", "y", dst=[0], src=[1], init="random", edge={"kind": "dense"},
                            seed=13))
    net0.graph = g0
    EditLog.load(str(path)).replay(g0, net0)
    assert g0.same_as(g)
    a, b = net.state_dict(), net0.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
