import sys

import pytest
from trial_helpers import matches, tiny_gnn

from supernet.errors import ConfigError
from supernet.trials import run_trials, trial_strategy

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

TARGET = {"n1": ("pre1", "gin"), "n2": ("n1", "linear"), "n3": ("pre1", "gcn")}


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_study_suggests_valid_choices_and_is_told_every_result(sampler):
    g = tiny_gnn(nodes=3)
    runs = []
    for _ in range(2):
        s = trial_strategy("optuna", g, sampler=sampler, seed=4)
        h = run_trials(s, matches(TARGET), 15)
        runs.append([t.key for t in h])
        done = [t for t in s.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        by_params = {tuple(sorted(t.params.items())): t.value for t in done}
        for t in h:  # each evaluated choice is a study trial of the same parameters and value
            assert by_params[tuple(sorted(s._params(t.choice).items()))] == t.metrics[
                "val_accuracy"]
        assert s.study.best_value == h.best().metrics["val_accuracy"]
    assert runs[0] == runs[1]  # seeded
    assert len(set(runs[0])) == 15


def test_conditional_parameters_follow_the_kept_inputs(gnn2):
    s = trial_strategy("optuna", gnn2, sampler="random", seed=0)
    for _ in range(6):
        t = s.ask()
        params = s.study.trials[-1].params
        kept = params["n2:inputs"]
        assert f"{kept}->n2" in params and sum(k.endswith("->n2") for k in params) == 1
        assert t.choice[("", kept, "n2")] == params[f"{kept}->n2"]
        s.tell(t, {"val_accuracy": 0.0})


def test_repeats_are_told_not_evaluated_and_the_space_is_covered(gnn2):
    s = trial_strategy("optuna", gnn2, sampler="tpe", seed=0, max_tries=20)
    h = run_trials(s, matches({"n1": ("pre1", "gin"), "n2": ("n1", "linear")}), 18)
    assert len({t.key for t in h}) == 18  # the whole 18-choice space, no repeat


def test_bad_sampler_and_missing_optuna(gnn2, monkeypatch):
    with pytest.raises(ConfigError, match="sampler must be 'tpe', 'random'"):
        trial_strategy("optuna", gnn2, sampler="cmaes")
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match="pip install supernet\\[optuna\\]"):
        trial_strategy("optuna", gnn2)
