"""Budgets of unit-level searches: targets met within 2% by several strategies at both
levels (measured on the final graph by the cost model, independently of the decision), the
resource term moving the expected cost, bad targets failing before training, searches that
learn, and the warning of one that does not."""

import pytest
import torch
from unit_search_helpers import tiny_cnn, tiny_mlp

from supernet import compile
from supernet.config import RunConfig, apply_overrides
from supernet.cost.units import unit_cost
from supernet.errors import ConfigError
from supernet.run import make_strategy
from supernet.search import BilevelSearch, create_strategy
from supernet.search.budget import Budget, keep_probs
from supernet.search.choices.units import UnitChoiceSpace
from supernet.search.loop import SearchWarning, chance_margin


def mlp(**kw):
    return tiny_mlp(in_features=8, hidden=(24, 20), density=1.0, skip_density=0.3, **kw)


def cnn(**kw):
    # one channel is under 2% of every target below: the granularity the tolerance needs
    return tiny_cnn(widths=(16, 32), **kw)


def mlp_data(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    return x, x[:, :3].argmax(1)


def cnn_data(n=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=gen)
    return x, x[:, 0].mean((1, 2)).gt(0).long() + x[:, 1].mean((1, 2)).gt(0).long()


SPACES = {"neuron": (mlp, mlp_data), "channel": (cnn, cnn_data)}
OPTIONS = {"spos": {"population": 4, "iterations": 1, "topk": 2, "bn_batches": 1,
                    "val_batches": 1},
           "progressive_gates": {"warmup": 1, "decisions": 1},
           "gradual_magnitude": {"steps": 1}}


def config(**kw):
    return {"epochs": 2, "batch_size": 16, "arch_lr": 0.05, "steps_per_epoch": 2, **kw}


def final_cost(graph, metric):
    return getattr(unit_cost(graph).total, metric)


@pytest.mark.parametrize("level,name,metric,fraction", [
    ("neuron", "darts", "params", 0.5), ("neuron", "gdas", "macs", 0.25),
    ("neuron", "fairdarts", "params", 0.25), ("neuron", "spos", "params", 0.5),
    ("neuron", "progressive_gates", "params", 0.3), ("neuron", "gradual_magnitude", "macs", 0.5),
    ("channel", "darts", "params", 0.5), ("channel", "gdas", "macs", 0.25),
    ("channel", "snas", "params", 0.3), ("channel", "gradual_magnitude", "params", 0.5),
])
def test_final_network_meets_the_target(level, name, metric, fraction):
    build, data = SPACES[level]
    graph = build()
    full = final_cost(graph, metric)
    strategy = create_strategy(name, target={"metric": metric, "fraction": fraction},
                               **OPTIONS.get(name, {}))
    result = BilevelSearch(graph, data(), strategy=strategy, config=config()).run()
    got = final_cost(result.graph, metric)  # the cost model of the final graph, not the budget
    assert abs(got / (fraction * full) - 1) <= 0.02, (got, fraction * full)
    assert result.budget["within"] and result.budget["cost"] == pytest.approx(got)
    assert result.history[-1]["cost"]["target"] == pytest.approx(fraction * full)


def test_absolute_and_latency_targets():
    graph = mlp()
    full = final_cost(graph, "params")
    result = BilevelSearch(graph, mlp_data(), strategy="darts", target={"value": 0.4 * full},
                           config=config()).run()
    assert abs(final_cost(result.graph, "params") / (0.4 * full) - 1) <= 0.02
    graph = mlp()
    net = compile(graph)
    model = Budget("latency", fraction=0.5).resolve(graph, net)
    assert model.full > 0 and model.minimum < model.target
    space = UnitChoiceSpace(graph, net)
    choice = model.decide(space)
    assert abs(model.choice_cost(space, choice) / model.target - 1) <= 0.02


def _expected_gap(weight):
    graph = mlp()
    strategy = create_strategy("darts", target={"metric": "params", "fraction": 0.3,
                                                "weight": weight})
    search = BilevelSearch(graph, mlp_data(), strategy=strategy, discretization=None,
                           config=config(epochs=6, steps_per_epoch=3))
    model = search.module.budget
    start = float(model.expected(search.module)) / model.target - 1
    search.run()
    return start, float(model.expected(search.module)) / model.target - 1


def test_resource_term_moves_the_expected_cost_to_the_target():
    start, with_term = _expected_gap(weight=2.0)
    _, without = _expected_gap(weight=0.0)
    assert start > 1.0  # keep probabilities start at 0.9: far above 30%
    assert abs(with_term) < 0.25 * start  # the term pulled the gates toward the target
    assert without > 3 * abs(with_term) + 0.3  # the task loss alone stays far above it


def test_expected_cost_is_differentiable_and_exact_on_hard_decisions():
    graph = mlp()
    net = compile(graph)
    model = Budget("params", fraction=0.5).resolve(graph, net)
    model.expected(net).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.arch.values())
    units, conns = keep_probs(net)
    assert set(units) == {"h1", "h2"} and len(conns) == len(list(graph.nx.edges))


@pytest.mark.parametrize("target,match", [
    ({"metric": "params", "fraction": 0.0},
     r"strategy.target.fraction=0.0: must be a number in \(0, 1\]"),
    ({"metric": "params", "fraction": 1.5}, r"fraction=1.5"),
    ({"metric": "flops", "fraction": 0.5},
     r"metric='flops': the metric is one of \['params', 'macs', 'latency'\]"),
    ({"metric": "params"}, r"give one of strategy.target.fraction"),
    ({"metric": "params", "fraction": 0.5, "size": 3}, r"unknown key 'size'"),
])
def test_bad_targets_fail_with_the_key(target, match):
    with pytest.raises(ConfigError, match=match):
        create_strategy("darts", target=target)


@pytest.mark.parametrize("value,match", [(1e9, r"larger than the full network"),
                                         (1.0, r"below the smallest network")])
def test_out_of_range_values_fail_before_training(value, match):
    strategy = create_strategy("gdas", target={"metric": "params", "value": value})
    with pytest.raises(ConfigError, match=match + r".*allowed|" + match):
        BilevelSearch(mlp(), mlp_data(), strategy=strategy, config=config())


def test_layer_only_strategies_refuse_a_target():
    with pytest.raises(ConfigError, match="strategy.target: strategy 'pcdarts'"):
        create_strategy("pcdarts", target={"metric": "params", "fraction": 0.5})


def test_target_from_the_command_line():
    cfg = apply_overrides(RunConfig(), ["space.name=neuron_mlp", "strategy.name=gdas",
                                        "strategy.target.metric=macs",
                                        "strategy.target.fraction=0.25"])
    budget = make_strategy(cfg).budget
    assert (budget.metric, budget.fraction) == ("macs", 0.25)


@pytest.mark.parametrize("name", ["darts", "gdas"])  # continuous, path sampling
def test_searches_learn_at_the_unit_levels(name):
    x, y = mlp_data(n=384)
    result = BilevelSearch(mlp(), (x, y), strategy=name,
                           config={"epochs": 8, "batch_size": 32, "arch_lr": 3e-3}).run()
    first, last = result.history[0], result.history[-1]
    assert last["train_acc"] > last["chance_acc"] + 0.25  # chance is 0.42 here
    assert last["train_acc"] > first["train_acc"] + 0.15
    assert not result.warnings


def test_a_search_left_at_chance_says_so():
    with pytest.warns(SearchWarning, match="did not learn the task"):
        result = BilevelSearch(mlp(), mlp_data(), strategy="darts",
                               config=config(w_lr=1e-9, w_lr_min=0.0)).run()
    assert "below chance" in result.warnings[0]
    assert chance_margin(0.1, 10**6) == pytest.approx(0.09)
