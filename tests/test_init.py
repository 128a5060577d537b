"""One init-policy type and one registry of policy names, for every level."""

import pytest
import torch

import supernet as sn
import supernet.compiler.unit_sync
import supernet.edits
import supernet.units
from supernet.edits import AddConnections, AddEdge, AddOp, AddUnits, Editor
from supernet.errors import DuplicateNameError, EditError, UnknownNameError
from supernet.init import POLICIES, InitPolicy, InitRule, register_policy
from supernet.units import mlp


class Constant(InitRule):
    """Every created weight 0.5, every created bias 0.25."""

    def init_op(self, spec, module, source, where, policy, generator=None):
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(0.5)

    def unit_bias(self, size, bound, generator=None):
        return torch.full((size,), 0.25)

    def connections(self, count, bound, incoming, generator=None):
        return torch.full((count,), 0.5)


@pytest.fixture
def constant():
    register_policy("constant", Constant())
    yield
    POLICIES.unregister("constant")


def test_old_names_are_the_one_policy_type_and_registry():
    assert supernet.edits.POLICIES is POLICIES
    assert {"random", "zero", "split"} <= set(POLICIES)
    with pytest.warns(DeprecationWarning, match="supernet.units.Creation moved to "
                                                "supernet.init.Creation"):
        Creation = supernet.units.Creation
    with pytest.warns(DeprecationWarning, match=r"is InitPolicy\(name, noise, seed"):
        old = Creation("split", {"h1": ([4], [0])}, 0.1, 0)  # the old positional order
    assert old == InitPolicy("split", 0.1, 0, {"h1": ([4], [0])})


def test_a_registered_policy_initializes_what_unit_edits_create(constant):
    g = mlp([3, 4, 2], seed=0)
    net = sn.compile(g, seed=0)
    ed = Editor(g, net)
    ed.apply(AddUnits("h1", count=1, init="constant"))
    assert torch.equal(net.block("x", "h1").weight[4], torch.full((3,), 0.5))
    assert torch.equal(net.block("h1", "y").weight[:, 4], torch.full((2,), 0.5))
    assert net.unit_params("h1").bias[4] == 0.25
    ed.apply(AddConnections("x", "y", dst=[1], src=[2], init="constant", edge={"kind": "dense"}))
    assert net.block("x", "y").effective()[1, 2] == 0.5
    assert [e.init for e in ed.log] == ["constant", "constant"]


def test_a_registered_policy_initializes_what_layer_edits_create(constant):
    g = sn.Graph("layer")
    g.add_input("x", channels=2)
    g.add_node("h", channels=2)
    g.add_edge("x", "h", ["conv_3x3", "none"])
    g.add_node("k", channels=2)
    g.set_outputs(["h"])
    net = sn.compile(g)
    Editor(g, net).apply(AddEdge("x", "k", ["conv_3x3"], init="constant"))
    params = list(net.edge_module("x", "k")["conv_3x3"].parameters())
    assert params and all(bool((p == 0.5).all()) for p in params)


def test_unknown_and_duplicate_names_fail_as_in_every_registry():
    g = mlp([3, 4, 2], seed=0)
    before = g.copy()
    with pytest.raises(UnknownNameError, match=r"AddUnits: could not resolve init policy 'zeros' "
                                               r"among \['random', 'split', 'zero'\]; did you "
                                               r"mean 'zero'\?"):
        Editor(g).apply(AddUnits("h1", init="zeros"))
    assert g.same_as(before)
    with pytest.raises(DuplicateNameError, match="init policy 'zero' is registered already"):
        register_policy("zero", Constant())
    with pytest.raises(EditError, match="register an InitRule instance, got type"):
        register_policy("mine", Constant)


def test_policies_that_copy_are_refused_where_there_is_nothing_to_copy():
    g = mlp([3, 4, 2], seed=0)
    with pytest.raises(EditError, match=r"AddConnections x->h1: init='split' copies units"):
        Editor(g).apply(AddConnections("x", "h1", dst=[0], src=[0], init="split"))
    with pytest.raises(EditError, match=r"needs source= \(the unit ids of 'h1' to copy\)"):
        Editor(g).apply(AddUnits("h1", init="split"))
    lg = sn.Graph("layer")
    lg.add_input("x", channels=2)
    lg.add_node("h", channels=2)
    lg.add_edge("x", "h", ["conv_3x3", "none"])
    lg.add_node("k", channels=2)
    with pytest.raises(EditError, match="add_edge x->k: init='split' copies an op"):
        Editor(lg).apply(AddEdge("x", "k", ["conv_3x3"], init="split"))
    with pytest.raises(EditError, match=r"init='split' needs source= one of the edge's"):
        Editor(lg).apply(AddOp("x", "h", "sep_conv_3x3", init="split"))


def test_noise_must_be_a_non_negative_number():
    with pytest.raises(EditError, match="init policy 'split': noise must be a number >= 0, "
                                        "got -0.1"):
        InitPolicy("split", noise=-0.1)
    g = mlp([3, 4, 2], seed=0)
    before = g.copy()
    with pytest.raises(EditError, match="noise must be a number >= 0"):
        Editor(g).apply(AddUnits("h1", source=[0], init="split", noise=-1.0))
    assert g.same_as(before)
