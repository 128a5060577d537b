import math

import pytest
from trial_helpers import node_ops

from supernet.errors import SearchError, UnknownNameError
from supernet.lint import lint
from supernet.spaces import encode
from supernet.trials import TRIAL_STRATEGIES, TrialHistory, space_size, trial_strategy


def test_registry_lists_strategies_and_rejects_unknown(gnn2):
    assert {"random", "evolution", "local"} <= set(TRIAL_STRATEGIES.list())
    with pytest.raises(UnknownNameError, match="evolutoin.*did you mean 'evolution'"):
        trial_strategy("evolutoin", gnn2)


def test_ask_gives_a_discretized_copy(gnn2):
    before = len(gnn2.gate_edges())
    s = trial_strategy("random", gnn2, seed=0)
    t = s.ask()
    lint(t.graph)
    assert t.graph.gate_edges() == [] and len(gnn2.gate_edges()) == before
    kept = {k for k, v in t.choice.items() if v is not None}
    assert {(u, v) for v, (u, _) in node_ops(t.graph).items()} == {(k[1], k[2]) for k in kept}
    assert encode(t.graph).count("~") == 2  # one op~input token per computing node


def test_no_duplicates_until_the_space_is_exhausted(gnn2):
    s = trial_strategy("random", gnn2, seed=0)
    assert space_size(s.space) == 18
    keys = []
    for _ in range(18):
        t = s.ask()
        keys.append(t.key)
        s.tell(t, {"val_accuracy": 0.0})
    assert len(set(keys)) == 18
    again = s.ask()  # exhausted: a repeat is the only way on
    assert again.key in keys


def test_tell_refuses_bad_metrics_and_unknown_trials(gnn2):
    s = trial_strategy("random", gnn2, seed=0)
    t = s.ask()
    with pytest.raises(SearchError, match="no key 'val_accuracy'.*got keys \\['acc'\\]"):
        s.tell(t, {"acc": 1.0})
    with pytest.raises(SearchError, match="is nan; tell finite values only"):
        s.tell(t, {"val_accuracy": math.nan})
    with pytest.raises(SearchError, match="must be a dict"):
        s.tell(t, 0.5)
    with pytest.raises(SearchError, match="trial 7 was never asked"):
        s.tell(7, {"val_accuracy": 1.0})
    s.tell(t, {"val_accuracy": 1.0})
    with pytest.raises(SearchError, match="trial 0 was told already"):
        s.tell(t, {"val_accuracy": 1.0})
    other = trial_strategy("random", gnn2, seed=0).ask()
    s.ask()
    with pytest.raises(SearchError, match="never asked"):
        s.tell(other.id + 5, {"val_accuracy": 1.0})


def test_options_are_checked(gnn2):
    with pytest.raises(SearchError, match="mode must be 'max' or 'min'"):
        trial_strategy("random", gnn2, mode="up")
    with pytest.raises(SearchError, match="population must be a positive int"):
        trial_strategy("evolution", gnn2, population=0)
    with pytest.raises(SearchError, match="move must be 'best' or 'first'"):
        trial_strategy("local", gnn2, move="steepest")


def test_history_best_and_curve_of_the_incumbent(gnn2):
    s = trial_strategy("random", gnn2, seed=0, mode="min")
    for val, test in [(0.5, 1.0), (0.2, 2.0), (0.4, 3.0), (0.1, 4.0)]:
        s.tell(s.ask(), {"val_accuracy": val, "test_accuracy": test})
    h = s.history
    assert isinstance(h, TrialHistory) and h.best().id == 3
    assert h.curve() == [0.5, 0.2, 0.2, 0.1]
    assert h.curve("test_accuracy") == [1.0, 2.0, 2.0, 4.0]  # reported: the incumbent's


def test_identity_makes_equivalent_choices_one_architecture(gnn2):
    # identity: only node 2's op counts, so there are 3 architectures
    s = trial_strategy("random", gnn2, seed=0, identity=lambda g: node_ops(g)["n2"][1],
                       max_tries=50)
    ops = set()
    for _ in range(3):
        t = s.ask()
        ops.add(t.key)
        s.tell(t, {"val_accuracy": 0.0})
    assert ops == {"gcn", "gin", "linear"}
    assert s.ask().key in ops  # no fourth: a repeat
    with pytest.raises(SearchError, match="identity must be callable"):
        trial_strategy("random", gnn2, identity="key")


@pytest.mark.parametrize("name", ["random", "evolution", "local", "predictor"])
def test_accept_keeps_refused_architectures_out(gnn2, name):
    # only the 6 architectures whose node 2 runs gin are accepted
    options = {"predictor": {"initial": 2, "epochs": 2, "ensemble": 1}}.get(name, {})
    s = trial_strategy(name, gnn2, seed=0, accept=lambda g: node_ops(g)["n2"][1] == "gin",
                       max_tries=200, **options)
    seen = []
    for i in range(6):
        t = s.ask()
        assert node_ops(t.graph)["n2"][1] == "gin"
        seen.append(t.key)
        s.tell(t, {"val_accuracy": float(i % 3)})
    assert len(set(seen)) == 6  # the accepted part of the space, each once


def test_accept_that_refuses_everything_is_reported(gnn2):
    s = trial_strategy("random", gnn2, accept=lambda g: False, max_tries=5)
    with pytest.raises(SearchError, match="all refused by accept"):
        s.ask()


def test_curve_of_a_missing_metric_names_it(gnn2):
    s = trial_strategy("random", gnn2, seed=0)
    s.tell(s.ask(), {"val_accuracy": 0.5})
    with pytest.raises(SearchError, match="no metric 'test_accuracy'"):
        s.history.curve("test_accuracy")
