import sys

import pytest
import torch
from trial_helpers import matches

from supernet import Graph
from supernet.errors import ConfigError, SearchError
from supernet.trials import run_trials, trained, trial_strategy

TARGET = {"n1": ("pre1", "gin"), "n2": ("n1", "linear")}


def noisy(graph):
    """A stochastic evaluate: reproducible only under the runner's seeding."""
    return {"val_accuracy": matches(TARGET)(graph)["val_accuracy"] + float(torch.rand(()))}


def test_local_runner_history_and_callback(gnn2):
    seen = []
    s = trial_strategy("random", gnn2, seed=0)
    h = run_trials(s, matches(TARGET), 10, on_trial=seen.append)
    assert [t.id for t in h] == list(range(10)) == [t.id for t in seen]
    assert all(t.seconds is not None and t.seconds >= 0 for t in h)
    assert h.curve() == sorted(h.curve()) and h.seconds > 0
    assert len(s.history) == 10 and s.pending == {}


def test_runs_are_reproducible_with_a_seed(gnn2):
    a = run_trials(trial_strategy("evolution", gnn2, population=3, seed=2), noisy, 8, seed=5)
    b = run_trials(trial_strategy("evolution", gnn2, population=3, seed=2), noisy, 8, seed=5)
    assert [t.metrics for t in a] == [t.metrics for t in b]


def test_metric_is_adopted_or_refused(gnn2):
    s = trial_strategy("random", gnn2)
    h = run_trials(s, lambda g: {"loss": 1.0, "val_accuracy": 0.0}, 2, metric="loss")
    assert s.metric == h.metric == "loss"
    with pytest.raises(SearchError, match="optimizes 'loss' and has trials already"):
        run_trials(s, lambda g: {"val_accuracy": 0.0}, 1)


def test_bad_settings_fail_before_any_evaluation(gnn2):
    s = trial_strategy("random", gnn2)
    ev = matches(TARGET)
    with pytest.raises(ConfigError, match="unknown engine 'dask'; accepted: \\['local', 'ray'\\]"):
        run_trials(s, ev, 3, engine="dask")
    with pytest.raises(ConfigError, match="workers=2 needs engine='ray'"):
        run_trials(s, ev, 3, workers=2)
    with pytest.raises(ConfigError, match="budget must be a positive int, got 0"):
        run_trials(s, ev, 0)
    with pytest.raises(ConfigError, match="strategy must be a TrialStrategy"):
        run_trials("random", ev, 3)
    with pytest.raises(SearchError, match="metrics have no key 'val_accuracy'"):
        run_trials(s, lambda g: {"acc": 1.0}, 1)
    assert len(s.history) == 0


def test_ray_missing_names_the_extra(gnn2, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    with pytest.raises(ConfigError, match="pip install supernet\\[ray\\]"):
        run_trials(trial_strategy("random", gnn2), matches(TARGET), 2, engine="ray")


def test_ray_runner_matches_the_local_runner(gnn2):
    pytest.importorskip("ray")

    def noisy(graph):  # defined here: Ray workers cannot import the test modules
        import torch

        ops = [d["ops"][0] for _, _, d in graph.nx.edges(data=True)]
        return {"val_accuracy": ops.count("gin") + float(torch.rand(()))}

    local = run_trials(trial_strategy("random", gnn2, seed=3), noisy, 8, seed=1)
    remote = run_trials(trial_strategy("random", gnn2, seed=3), noisy, 8, seed=1,
                        engine="ray", workers=2)
    assert [t.key for t in remote] == [t.key for t in local]
    assert [t.metrics for t in remote] == [t.metrics for t in local]


def test_trained_evaluate_trains_each_architecture():
    g = Graph("layer")
    g.add_input("x", channels=4)
    g.add_node("h", channels=32, op="relu")
    g.add_edge("x", "h", ["linear", "none"])  # a hidden ReLU layer, or none
    g.add_node("y", channels=3)
    g.add_edge("h", "y", "linear")
    g.add_edge("x", "y", "linear")
    g.set_outputs(["y"])
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = (x[:, :3] ** 2).argmax(1)  # not linearly separable
    ev = trained((x, y), (x, y), epochs=10, batch_size=32, lr=0.1)
    h = run_trials(trial_strategy("random", g, seed=0), ev, 2)
    acc = {t.choice[("", "x", "h")]: t.metrics["val_accuracy"] for t in h}
    assert acc["linear"] > 0.8 and acc["none"] < 0.6
    assert h.best().choice[("", "x", "h")] == "linear"
    with pytest.raises(ConfigError, match="epochs must be a positive int"):
        trained((x, y), (x, y), epochs=0)
