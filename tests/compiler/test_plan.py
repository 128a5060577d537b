"""The compiled plan: named, read-only records that follow the graph through edits, and no
module outside the compilers reads a compiler's private attributes."""

import ast
import dataclasses
import pathlib

import pytest
import torch
import torch.nn as nn

import supernet as sn
from supernet.compiler.blocks import GridBlock
from supernet.compiler.layer import Edge, LayerModule
from supernet.compiler.plan import (
    CallStep,
    LayerPlan,
    MergeStep,
    NodeStep,
    PlanEdge,
    PoolStep,
    UnitEdge,
    UnitPlan,
)
from supernet.compiler.units import UnitModule
from supernet.edits import AddEdge, AddOp, Editor, RemoveOp
from supernet.edits.units import UngateUnits
from supernet.errors import GraphError, SupernetError
from supernet.search.discretize.units import set_gated
from supernet.units import add_group, add_input, connect

ROOT = pathlib.Path(sn.__file__).resolve().parent
#: The compilers, the only modules that may read the compilers' private attributes.
COMPILERS = {"compiler/layer.py", "compiler/units.py", "compiler/unit_sync.py"}
#: Private attributes of the compiled modules and their edges, named once so that a rename
#: inside a compiler cannot hide a reader outside it.
PRIVATE = {"_plan", "_inputs", "_outputs", "_shapes", "_zero", "_ident", "_ctx", "_drop_path",
           "_partial", "_arch_names", "_sync_arch", "_build_plan", "_shared", "_after_sync"}


def layer_graph():
    """x -> h (gate, drop-path) -> call c of a gated cell -> y; aux reads c, train only."""
    cell = sn.Graph("layer", name="cell")
    cell.add_input("s", channels="$C")
    cell.add_node("n", channels="$C")
    cell.add_edge("s", "n", ["conv_3x3", "skip_connect"])
    cell.set_outputs(["n"])
    g = sn.Graph("layer", name="net")
    g.add_input("x", channels=4)
    g.add_node("h", channels=4, op="relu")
    g.add_edge("x", "h", ["conv_3x3", "none"], drop_path=True)
    g.add_cell("cell", cell)
    g.add_call("c", "cell", ["h"], bind={"C": 4})
    g.add_node("aux", channels=4, train_only=True)
    g.add_edge("c", "aux", "conv_1x1")
    g.add_node("y", merge="concat")
    g.add_edge("c", "y", "identity")
    g.add_edge("h", "y", "identity")
    g.set_outputs(["y", "aux"])
    return g


def unit_graph():
    """x -> c (gated units, conv); out1 and out2 read c globally averaged (one pool), m reads
    it max-pooled."""
    g = sn.Graph("channel", name="units")
    add_input(g, "x", 3)
    add_group(g, "c", 4, act="relu")
    connect(g, "x", "c", "conv", kernel=3)
    add_group(g, "out1", 2)
    connect(g, "c", "out1", "dense", pool="global_avg")
    add_group(g, "out2", 3)
    connect(g, "c", "out2", "dense", pool="global_avg")
    add_group(g, "m", 2)
    connect(g, "c", "m", "conv", kernel=1, pool={"kind": "max", "kernel": 2})
    g.set_outputs(["out1", "out2", "m"])
    set_gated(g, units=["c"])
    return g


# ---------------------------------------------------------------------------- layer level
def test_layer_plan_names_the_nodes_edges_gates_and_cells():
    net = sn.compile(layer_graph())
    plan = net.plan
    assert isinstance(plan, LayerPlan)
    assert plan.inputs == ("x",) and plan.outputs == ("y", "aux")
    kinds = {s.node: type(s) for s in plan.steps}
    assert kinds == {"h": MergeStep, "c": CallStep, "aux": MergeStep, "y": MergeStep}
    assert [s.node for s in plan.steps].index("c") > [s.node for s in plan.steps].index("h")

    h = plan.step("h")
    assert h.merge == "sum" and h.post is net.steps["h"].op and not h.train_only
    (edge,) = h.edges
    assert isinstance(edge, PlanEdge) and plan.edge("x", "h") is edge
    assert edge.src == "x" and edge.names == ("conv_3x3", "none") and edge.gate == "x->h"
    assert edge.zero == (False, True) and edge.drop_path and edge.partial == 1
    assert edge.ops[0] is net.edge_module("x", "h")["conv_3x3"]
    assert edge.context == ((), ())

    call = plan.step("c")
    assert call.cell is net.steps["c"].cell and call.args == ("h",) and not call.train_only
    inner = call.cell.plan.edge("s", "n")
    assert inner.gate == "cell:s->n" and inner.names == ("conv_3x3", "skip_connect")

    assert plan.step("aux").train_only
    y = plan.step("y")
    assert y.merge == "concat" and [e.src for e in y.edges] == ["c", "h"]
    assert all(e.gate is None and e.identity == (True,) for e in y.edges)
    gated = {e.gate for e in plan.iter_edges() if e.gate is not None}
    assert gated == set(net.gates()) == {"x->h", "cell:s->n"}

    with pytest.raises(GraphError, match="no plan step computes node 'x'"):
        plan.step("x")
    with pytest.raises(GraphError, match=r"no plan edge h->c.*node 'c' reads \[\]"):
        plan.edge("h", "c")


def test_layer_plan_is_read_only():
    net = sn.compile(layer_graph())
    plan = net.plan
    with pytest.raises(AttributeError):
        net.plan = plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.step("h").edges[0].gate = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.step("c").cell = None
    assert isinstance(plan.steps, tuple) and isinstance(plan.step("h").edges, tuple)
    with pytest.raises(TypeError):
        net.arch_names["x->h"] = ("none",)
    assert net.arch_names["x->h"] == ("conv_3x3", "none")
    with pytest.raises(SupernetError, match=r"cell's gates live in the arch of the top-level"):
        net.steps["c"].cell.sync_arch()


def test_layer_plan_follows_edits():
    g = layer_graph()
    net = sn.compile(g)
    before = net.plan
    conv = net.plan.edge("x", "h").ops[0]
    editor = Editor(g, net)
    editor.apply(RemoveOp("x", "h", "none"))
    edge = net.plan.edge("x", "h")
    assert edge.names == ("conv_3x3",) and edge.gate is None and edge.ops == (conv,)
    assert "x->h" not in net.arch_names and "x->h" not in net.arch
    assert before.edge("x", "h").names == ("conv_3x3", "none")  # a plan read once stays as it was

    editor.apply(AddOp("x", "h", "skip_connect"))
    edge = net.plan.edge("x", "h")
    assert edge.names == ("conv_3x3", "skip_connect") and edge.gate == "x->h"
    assert edge.ops[0] is conv and edge.identity == (False, True)
    assert net.arch_names["x->h"] == ("conv_3x3", "skip_connect")

    editor.apply(AddEdge("x", "y", ["conv_3x3", "none"]))
    assert [e.src for e in net.plan.step("y").edges] == ["c", "h", "x"]
    assert net.plan.edge("x", "y").gate == "x->y"
    editor.apply(AddOp("s", "n", "none", cell="cell"))
    assert net.plan.step("c").cell.plan.edge("s", "n").names == (
        "conv_3x3", "skip_connect", "none")
    net.train()
    y, aux = net(torch.randn(2, 4, 5, 5))
    assert y.shape == (2, 12, 5, 5) and aux is not None


# ---------------------------------------------------------------------------- unit levels
def test_unit_plan_names_the_nodes_edges_gates_and_pools():
    net = sn.compile(unit_graph())
    plan = net.plan
    assert isinstance(plan, UnitPlan)
    assert plan.inputs == ("x",) and plan.outputs == ("out1", "out2", "m")
    assert plan.selects == (net.nodes["x"],) and plan.selects[0].width == 3
    pools = [s for s in plan.steps if isinstance(s, PoolStep)]
    assert len(pools) == 2  # one global average for both dense readers, one max pool
    avg = next(p for p in pools if p.spec == "global_avg")
    mx = next(p for p in pools if p is not avg)
    assert avg.src == mx.src == "c"
    assert mx.spec["kind"] == "max" and mx.spec["kernel"] == (2, 2)
    with pytest.raises(TypeError):
        mx.spec["kind"] = "avg"  # the graph's attribute is not reachable through the plan
    order = [s.node if isinstance(s, NodeStep) else s.key for s in plan.steps]
    assert order.index("c") < order.index(avg.key) < order.index("out1")

    c = plan.step("c")
    assert c.gate == "c" and c.params is net.unit_params("c")
    (edge,) = c.edges
    assert isinstance(edge, UnitEdge)
    assert (edge.src, edge.value, edge.kind, edge.gate) == ("x", "x", "conv", None)
    assert edge.block is net.block("x", "c")
    assert c.fuse == isinstance(edge.block, GridBlock)
    for v in ("out1", "out2"):
        e = plan.edge("c", v)
        assert e.value == avg.key and e.kind == "dense" and e.block is net.block("c", v)
        assert plan.step(v).gate is None
    assert plan.edge("c", "m").value == mx.key

    with pytest.raises(GraphError, match="no plan edge x->m"):
        plan.edge("x", "m")


def test_unit_plan_is_read_only_and_follows_edits():
    g = unit_graph()
    net = sn.compile(g)
    with pytest.raises(AttributeError):
        net.plan = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.plan.step("c").gate = None
    assert net.plan.step("c").gate == "c"
    Editor(g, net).apply(UngateUnits(nodes=["c"]))
    assert net.plan.step("c").gate is None and "c" not in net.arch
    out = net(torch.randn(2, 3, 6, 6))
    assert [tuple(o.shape) for o in out] == [(2, 2), (2, 3), (2, 2, 3, 3)]


# ---------------------------------------------------------------------------- privates
def _compiler_privates() -> set[str]:
    """:data:`PRIVATE`, and every private name the compiled classes and their instances
    hold beyond what ``nn.Module`` has."""
    own = set(dir(nn.ModuleDict())) | set(vars(nn.ModuleDict()))
    names = set(PRIVATE)
    layer = sn.compile(layer_graph())
    units = sn.compile(unit_graph())
    for obj in (LayerModule, UnitModule, Edge, layer, units, layer.edge_module("x", "h")):
        names |= {n for n in (*vars(obj), *dir(obj)) if n.startswith("_") and n not in own}
    return {n for n in names if not n.startswith("__")}


def private_reads(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of every read of an attribute in ``names`` of an object other than
    ``self``, including ``getattr``/``hasattr``/``setattr`` with the name as a literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in names:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, node.attr))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and node.args[1].value in names
              and not (isinstance(node.args[0], ast.Name) and node.args[0].id == "self")):
            found.append((node.lineno, node.args[1].value))
    return found


def test_no_module_outside_the_compilers_reads_their_privates():
    names = _compiler_privates()
    assert {"_plan", "_arch_names", "_zero", "_shapes"} <= names
    paths = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).as_posix() not in COMPILERS]
    paths += list((ROOT.parent / "search_spaces").rglob("*.py"))
    assert len(paths) > 50
    hits = {str(p.relative_to(ROOT.parent)): r for p in paths
            if (r := private_reads(p.read_text(), names))}
    assert not hits, f"compiler privates read outside the compilers (use module.plan): {hits}"


def test_the_privates_check_sees_a_reader():
    source = (
        "class A:\n"
        "    def f(self, module):\n"
        "        self._plan = None\n"  # its own attribute: fine
        "        x = module._plan\n"
        "        y = getattr(module, '_arch_names', {})\n"
        "        return module.steps['n'].inputs['x']._zero, getattr(self, '_zero', 0)\n"
    )
    assert private_reads(source, PRIVATE) == [(4, "_plan"), (5, "_arch_names"), (6, "_zero")]
