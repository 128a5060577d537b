"""Every registered strategy searches a small space of its level to a discretized graph that
lints; strategies compose from the registries of relaxations, discretization policies and
creation policies, and a composition equals the named strategy it spells out."""

import pytest
import torch
from search_graphs import darts_like, data, small_config
from unit_search_helpers import mlp_data, tiny_mlp

from supernet import lint
from supernet.errors import ConfigError, DuplicateNameError, UnknownNameError
from supernet.gates import Softmax
from supernet.registry import Registry
from supernet.search import BilevelSearch, create_strategy, list_strategies, register_strategy
from supernet.search.creation import (
    CREATIONS,
    NORTH,
    SET,
    Firefly,
    GradMax,
    GrowDeeper,
    GrowNode,
    GrowOps,
    GrowUnits,
    NeST,
    RigL,
    SplittingSteepestDescent,
)
from supernet.search.discretize import DISCRETIZATIONS, ArgmaxDiscretization
from supernet.search.evolution import EvolutionDiscretization
from supernet.search.progressive import (
    PDARTS,
    SGAS,
    DartsPT,
    GradualMagnitude,
    ProgressiveGates,
    SkipDropout,
)
from supernet.search.relaxations import (
    RELAXATIONS,
    BinaryGates,
    BinaryUnitGates,
    DirichletGates,
    GumbelMax,
    GumbelMaxV1,
    GumbelSoftmax,
    PartialChannels,
    PartialUnits,
    Sigmoid,
    SNASGumbel,
    TiedGates,
    UniformPath,
    mark_partial,
)
from supernet.search.strategies import STRATEGIES

#: Options that make a strategy's own schedule tiny (the others run with their defaults).
TINY = {
    "pcdarts": {"warmup_epochs": 0},
    "fairdarts": {"threshold": 0.5},  # a few steps leave every sigmoid weight near 1/2
    "spos": {"population": 4, "iterations": 1, "topk": 2, "bn_batches": 1, "val_batches": 1},
    "pdarts": {"stages": [{"cells": 3, "keep": 3, "dropout": 0.0, "epochs": 1, "warmup": 0},
                          {"cells": 4, "keep": 1, "dropout": 0.3, "epochs": 1, "warmup": 0}]},
    "sgas": {"warmup": 0, "interval": 1},
    "sgas2": {"warmup": 0, "interval": 1},
    "darts_pt": {"start": 1, "interval": 1},
    "progressive_gates": {"warmup": 0, "decisions": 2},
    "gradual_magnitude": {"sparsity": 0.5, "steps": 2},
    "unit_pdarts": {"stages": 2},
    "unit_darts_pt": {"max_batches": 1},
}
#: The epochs of a schedule the strategy sets from its options (the others: 2).
EPOCHS = {"sgas": 8, "sgas2": 8, "darts_pt": 8}


def _sequences(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("name", list_strategies())
def test_every_registered_strategy_searches_a_space_of_its_level(name):
    strategy = create_strategy(name, **TINY.get(name, {}))
    assert strategy.name == name and strategy.levels
    if strategy.build_space is not None:  # builds its networks from a space (P-DARTS)
        graph = strategy.build_space("darts1d", {"C": 4, "steps": 2, "multiplier": 2,
                                                 "num_classes": 3, "layers": 8})
        train, x = _sequences(), _sequences(2)[0]
    elif name in ("crosslevel", "lambda_darts"):  # widths need cells that preprocess their
        from search_spaces import create_space  # own inputs; Λ-DARTS a cell type called twice

        graph = create_space("darts1d", C=4, layers=3, steps=2, multiplier=2, num_classes=3)
        train, x = _sequences(), _sequences(2)[0]
    elif "layer" in strategy.levels:
        graph, train, x = darts_like(), data(), torch.randn(2, 3, 8, 8)
    else:
        graph, train, x = tiny_mlp(), mlp_data(), mlp_data(2)[0]
    config = small_config(batch_size=8, epochs=EPOCHS.get(name, 2))
    if "epochs" in strategy.owns:  # its own schedule
        del config["epochs"]
    result = BilevelSearch(graph, train, strategy=strategy, config=config).run()
    lint(result.graph)
    assert result.module.gates() == {} and result.module.relaxation is None, name
    assert len(result.history) == result.state.epochs and len(result.log) > 0
    assert result.module.eval()(x).shape[0] == 2


def test_the_registries_hold_every_built_in_part():
    assert {n: type(RELAXATIONS.resolve(n)()) for n in RELAXATIONS.list()} == {
        "softmax": Softmax, "sigmoid": Sigmoid, "partial_channels": PartialChannels,
        "gumbel_softmax": GumbelSoftmax, "gumbel_max": GumbelMax, "binary_gates": BinaryGates,
        "snas_gumbel": SNASGumbel, "gumbel_max_v1": GumbelMaxV1,
        "uniform_path": UniformPath, "tied_gates": TiedGates,
        "skip_dropout": SkipDropout, "partial_units": PartialUnits,
        "binary_unit_gates": BinaryUnitGates, "dirichlet": DirichletGates}
    assert DISCRETIZATIONS.resolve("argmax") is ArgmaxDiscretization
    assert DISCRETIZATIONS.resolve("evolution") is EvolutionDiscretization
    assert isinstance(DISCRETIZATIONS.resolve("pdarts")(), PDARTS)
    assert isinstance(DISCRETIZATIONS.resolve("sgas")(criterion=2), SGAS)
    assert [DISCRETIZATIONS.resolve(n) for n in ("darts_pt", "progressive_gates",
                                                 "gradual_magnitude")] == [
        DartsPT, ProgressiveGates, GradualMagnitude]
    assert {n: CREATIONS.resolve(n) for n in CREATIONS.list()} == {
        "grow_ops": GrowOps, "grow_node": GrowNode, "rigl": RigL, "set": SET,
        "grow_units": GrowUnits, "grow_deeper": GrowDeeper, "north": NORTH, "nest": NeST,
        "splitting": SplittingSteepestDescent, "firefly": Firefly, "gradmax": GradMax}
    for registry in (RELAXATIONS, DISCRETIZATIONS, CREATIONS, STRATEGIES):
        assert isinstance(registry, Registry)
    assert list_strategies("sgas*") == ["sgas", "sgas2"] == STRATEGIES.list("sgas*")


def test_register_strategy_refuses_a_taken_name_unless_overridden():
    with pytest.raises(DuplicateNameError, match="strategy 'darts' is registered already"):
        register_strategy("darts")(lambda: None)
    try:
        register_strategy("tiny_test_strategy")(lambda: create_strategy("gdas"))
        assert "tiny_test_strategy" in list_strategies("tiny_*")
        register_strategy("tiny_test_strategy", override=True)(lambda: create_strategy("snas"))
        assert isinstance(create_strategy("tiny_test_strategy").relaxation, GumbelSoftmax)
    finally:
        STRATEGIES.unregister("tiny_test_strategy")


def test_a_strategy_composes_from_named_parts():
    s = create_strategy(relaxation={"name": "gumbel_max", "tau_max": 5.0},
                        creation=[{"name": "grow_ops", "ops": "conv_1x1", "at": 1}],
                        config={"arch_lr": 1e-3}, w_lr=0.05)
    assert s.name == "composed" and isinstance(s.relaxation, GumbelMax)
    assert isinstance(s.discretization, ArgmaxDiscretization)  # argmax unless told
    assert isinstance(s.creation[0], GrowOps) and s.config == {"arch_lr": 1e-3, "w_lr": 0.05}
    # parts given with a name replace the named strategy's
    s = create_strategy("gdas", discretization=None, creation={"name": "rigl"})
    assert isinstance(s.relaxation, GumbelMax) and s.discretization is None
    assert isinstance(s.creation[0], RigL)
    # a progressive policy brings its relaxation and its schedule
    s = create_strategy(discretization={"name": "pdarts", "stages": TINY["pdarts"]["stages"]})
    assert s.relaxation is s.discretization.relaxation and s.config == {"epochs": 2}
    s = create_strategy("pdarts", discretization="argmax")  # its schedule goes with it
    assert "epochs" not in s.owns and "epochs" not in s.config and s.build_space is None
    with pytest.raises(ConfigError, match=r"strategy\.epochs=5, but strategy 'composed' sets "
                                          r"epochs=2 .*change strategy\.discretization"):
        create_strategy(discretization={"name": "pdarts", "stages": TINY["pdarts"]["stages"]},
                        epochs=5)
    # the parts a relaxation needs around it: PC-DARTS' partial edges
    g, marked = darts_like(), darts_like()
    create_strategy(relaxation={"name": "partial_channels", "k": 2}).prepare(g)
    assert mark_partial(marked, 2) > 0 and g.same_as(marked) and not g.same_as(darts_like())


def test_unknown_parts_and_options_fail_naming_the_key():
    with pytest.raises(UnknownNameError, match=r"^strategy\.relaxation: could not resolve "
                                               r"relaxation 'gumbel_maks' among \[.*did you mean "
                                               r"'gumbel_max'\?"):
        create_strategy(relaxation="gumbel_maks")
    with pytest.raises(UnknownNameError, match=r"^strategy\.discretization: could not resolve "
                                               r"discretization policy 'argmx'"):
        create_strategy(relaxation="softmax", discretization="argmx")
    with pytest.raises(UnknownNameError, match=r"^strategy\.creation\[1\]: could not resolve "
                                               r"creation policy 'grow_op'"):
        create_strategy(relaxation="softmax", creation=["rigl", {"name": "grow_op"}])
    with pytest.raises(ConfigError, match=r"strategy\.relaxation 'gumbel_max': unknown key "
                                          r"'tau'.*It takes \['tau_max', 'tau_min'\]"):
        create_strategy(relaxation={"name": "gumbel_max", "tau": 1.0})
    with pytest.raises(ConfigError, match=r"strategy\.relaxation needs a 'name'"):
        create_strategy(relaxation={"tau_max": 1.0})
    with pytest.raises(ConfigError, match=r"unknown key strategy\.tau_max of a composed"):
        create_strategy(relaxation="gumbel_max", tau_max=1.0)
    with pytest.raises(ConfigError, match=r"strategy\.config: unknown key 'lr'\. Did you mean"):
        create_strategy("darts", config={"lr": 0.1})
    with pytest.raises(ConfigError, match=r"strategy: give the name of one of \["):
        create_strategy()


def _history(result):
    return [{k: v for k, v in r.items() if k != "gates"} for r in result.history], \
        result.history[-1]["gates"]


def test_composing_gdas_by_hand_is_gdas():
    runs = []
    for strategy in ("gdas", {"relaxation": {"name": "gumbel_max", "tau_max": 10.0,
                                             "tau_min": 0.1}, "discretization": "argmax"}):
        g = darts_like()
        result = BilevelSearch(g, data(), strategy=strategy, config=small_config(epochs=2)).run()
        runs.append((_history(result), sorted(g.nx.edges(data="ops"))))
    assert runs[0] == runs[1]
