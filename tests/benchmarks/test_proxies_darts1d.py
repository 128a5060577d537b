"""A smoke run of benchmarks/proxies_darts1d.py (``--quick``), its population file and the
statistics it reports."""

import contextlib
import doctest
import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import proxies_darts1d as bench

from supernet.cost import weight_count
from supernet.errors import ConfigError

# two search steps of a smoke run do not learn the task, and the search says so
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn the task")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("proxies")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = bench.main(["--quick", "--out", str(out)])
    return out, result, printed.getvalue()


def test_quick_run_trains_a_population_and_the_one_shot_search(quick_run):
    out, result, printed = quick_run
    saved = json.loads((out / "population.json").read_text())
    archs = saved["archs"]
    assert [r["index"] for r in archs] == [0, 1, 2]
    assert len({r["text"] for r in archs}) == 3  # drawn without repeats
    for rec in archs:
        assert 0.0 <= rec["val_acc"] <= 1.0 and 0.0 <= rec["test_acc"] <= 1.0
        assert rec["train_cpu_s"] > 0
        # the text form rebuilds the trained network
        cfg = bench.run_config(1, quick=True)
        assert weight_count(bench.initial_module(rec["text"], cfg)) == rec["params"]
    assert saved["budget"]["epochs"] == 1 and saved["budget"]["data_options"]["num_samples"] == 500
    (run,) = result["oneshot"]
    assert run["cpu_s"] > 0 and 0.0 <= run["test_acc"] <= 1.0 and run["text"].startswith("Genotype")
    assert json.loads((out / "oneshot.json").read_text())["runs"] == result["oneshot"]
    assert "| DARTS one-shot (search + final training), 1 seeds |" in printed
    assert "| random search, 1x: best val. of k = " in printed


def test_quick_run_scores_every_proxy_and_runs_evolution(quick_run):
    import math

    from supernet.search.proxies import PROXIES

    _, result, printed = quick_run
    assert sorted(result["proxies"]) == sorted(PROXIES.list())
    for name, s in result["proxies"].items():
        assert len(s["scores"]) == 3 and all(math.isfinite(v) for v in s["scores"]), name
        assert f"| {name} | " in printed
    (run,) = result["evolution"]
    assert len(run) == 3 and all(0.0 <= r["test_acc"] <= 1.0 for r in run)
    assert "| regularized evolution, 1x: k = " in printed


def test_a_rerun_reads_the_population_and_trains_nothing(quick_run, monkeypatch, capsys):
    out, result, _ = quick_run

    def no_training(self, graph):
        raise AssertionError("a rerun trained an architecture the population file holds")

    monkeypatch.setattr(bench.Trainer, "train", no_training)
    monkeypatch.setattr(bench, "run_oneshot", no_training)
    again = bench.main(["--quick", "--out", str(out), "--only", "report"])
    assert again["population"] == result["population"]
    printed = capsys.readouterr().out
    assert "| DARTS one-shot (search + final training), 1 seeds |" in printed
    assert "load average" in printed


def test_a_population_of_another_budget_is_refused(quick_run):
    out, _, _ = quick_run
    with pytest.raises(ConfigError, match="another --population"):
        bench.Population(str(out / "population.json"), {"epochs": 99})


def test_the_examples_run():
    result = doctest.testmod(bench, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0


def test_random_search_picks_by_validation_and_reports_test():
    pop = [{"val_acc": v, "test_acc": t} for v, t in ((0.9, 0.1), (0.5, 0.8), (0.2, 0.9))]
    picks = bench.random_search(pop, 2, 50, seed=1)
    # the first two of an order hold the 0.9-val architecture unless they are the other two
    assert set(picks) == {0.1, 0.8}
    assert bench.random_search(pop, 3, 5) == [0.1] * 5


def test_proxies_score_the_weights_the_training_started_from(quick_run):
    import torch

    from supernet.spaces import decode
    from supernet.train.retrain import retrain

    _, result, _ = quick_run
    cfg = bench.run_config(1, quick=True)
    trainer = bench.Trainer(cfg)
    rec = result["population"][1]
    graph = decode("darts1d", rec["text"], **cfg.space.options)
    started = retrain(graph, trainer.splits["train"], epochs=0, seed=cfg.seed).module
    scored = bench.initial_module(rec["text"], cfg)
    theirs, ours = started.state_dict(), scored.state_dict()
    assert list(theirs) == list(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    # the batch is seeded, 64 training signals
    (x,), ctx, y = bench.proxy_batch(trainer, 0)
    (x2,), _, _ = bench.proxy_batch(trainer, 0)
    assert x.shape[0] == y.shape[0] == 64 and ctx == {} and torch.equal(x, x2)


def test_the_bootstrap_rho_of_each_resample_is_scipys():
    import numpy as np
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 30).astype(float)  # ties, as params and accuracies have
    y = x + rng.normal(0, 2, 30)
    idx = rng.integers(0, 30, (50, 30))
    ours = bench.resampled_spearman(x, y, idx)
    theirs = [spearmanr(x[i], y[i]).statistic for i in idx]
    assert np.allclose(ours, theirs)
    rho, lo, hi = bench.spearman_ci(x, y)
    assert lo < rho < hi and rho == pytest.approx(spearmanr(x, y).statistic)
    assert np.isnan(bench.spearman_ci([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])[0])
