"""``supernet trials`` end to end: a benchmark look-up search, a trained one, refusals."""

import json
import os

import pytest
from tiny_run import tiny_args

from supernet.cli import main
from supernet.rundir import RunFiles

pytest.importorskip("nas_bench_graph")

BENCH = ["--benchmark", "nas-bench-graph:cora", "--budget", "25", "--quiet"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("trials"))
    assert main(["trials", "--strategy", "evolution", *BENCH, "--out", out,
                 "--set", "trials.options={population: 10, sample: 3}", "--force"]) == 0
    return out


def test_a_benchmark_search_writes_its_trials_and_the_best(bench_run):
    from supernet.tabular import load_benchmark

    report = json.load(open(os.path.join(bench_run, "report.json")))
    trials = json.load(open(os.path.join(bench_run, "trials.json")))["trials"]
    assert report["trials"] == len(trials) == 25
    values = [t["metrics"]["val_accuracy"] for t in trials]
    assert report["best_metrics"]["val_accuracy"] == max(values)
    assert report["curve"] == [max(values[:i + 1]) for i in range(25)]
    # every trial's figures are the table's own for the architecture it names
    bench = load_benchmark("nas-bench-graph:cora")
    from supernet.spaces import decode

    sizes = {k: v for k, v in bench.space_options.items() if k not in ("nodes", "ops")}
    for t in trials[:5]:
        graph = decode("gnn", t["text"], **sizes)
        assert bench.query(graph)["test_accuracy"] == t["metrics"]["test_accuracy"]
    assert report["test_acc"] == trials[report["best_trial"]]["metrics"]["test_accuracy"]
    assert report["benchmark_best"]["val_accuracy"] >= report["val_acc"]
    assert open(os.path.join(bench_run, "genotype.txt")).read().strip() == report["text"]
    files = RunFiles.open(bench_run)
    assert files.complete
    for name in ("config.yaml", "trials.json", "architecture.json", "report.md"):
        files.check(name)


def test_a_finished_trials_run_is_kept(bench_run, capsys):
    assert main(["trials", *BENCH, "--out", bench_run]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "--resume" not in err


def test_same_seed_same_trials(bench_run, tmp_path):
    out = str(tmp_path / "again")
    assert main(["trials", "--strategy", "evolution", *BENCH, "--out", out,
                 "--set", "trials.options={population: 10, sample: 3}"]) == 0
    a = json.load(open(os.path.join(bench_run, "trials.json")))
    b = json.load(open(os.path.join(out, "trials.json")))
    assert [t["text"] for t in a["trials"]] == [t["text"] for t in b["trials"]]


@pytest.mark.parametrize("args, words", [
    (["--space", "darts1d"], ["'space.name' is 'darts1d'", "space 'gnn'"]),
    (["--set", "space.nodes=3", "--space", "gnn"], ["'space.nodes' is 3", "fixes it to 4"]),
    (["--strategy", "evolutoin"], ["trial strategy 'evolutoin'", "did you mean 'evolution'"]),
    (["--engine", "local", "--workers", "2"], ["workers=2 needs engine='ray'"]),
    (["--set", "trials.budget=0"], ["'trials.budget' is 0"]),
    (["--set", "trials.metric=accuracy"], ["no key 'accuracy'"]),
])
def test_bad_trials_settings_fail_clearly(tmp_path, capsys, args, words):
    assert main(["trials", *BENCH, "--out", str(tmp_path / "bad"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("supernet: error:") and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_unknown_benchmark_data_set_lists_them(tmp_path, capsys):
    assert main(["trials", "--benchmark", "nas-bench-graph:coraa", "--out",
                 str(tmp_path / "x")]) == 2
    assert "'coraa'" in capsys.readouterr().err


def test_trials_evaluated_by_training_then_the_best_is_trained(tmp_path):
    out = str(tmp_path / "trained")
    args = tiny_args(samples=300)  # the tiny space and data (its search keys go unused)
    assert main(["trials", "--strategy", "random", "--budget", "2", "--out", out, *args,
                 "--set", "trials.epochs=1",
                 "--set", "train.options={steps_per_epoch: 2}"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    trials = json.load(open(os.path.join(out, "trials.json")))["trials"]
    assert len(trials) == 2 and report["train_mode"] == "retrain"
    assert 0.0 <= report["test_acc"] <= 1.0 and report["parameters"] > 0
    assert os.path.exists(os.path.join(out, "weights.safetensors"))
    # the run's architecture is the best trial's, and `supernet train` reads the folder
    assert report["text"] == trials[report["best_trial"]]["text"]
    assert main(["train", "--run", out, "--set", "train.epochs=1",
                 "--set", "train.options={steps_per_epoch: 2}"]) == 0


def test_train_refuses_a_run_evaluated_by_a_benchmark(bench_run, capsys):
    assert main(["train", "--run", bench_run]) == 2
    assert "evaluated by benchmark 'nas-bench-graph:cora'" in capsys.readouterr().err


def test_list_names_trial_strategies_proxies_and_benchmarks(capsys):
    assert main(["list", "trials", "--names"]) == 0
    assert {"random", "evolution", "local"} <= set(capsys.readouterr().out.split())
    assert main(["list", "proxies", "--names"]) == 0
    assert {"synflow", "naswot", "zico", "meco", "params"} <= set(capsys.readouterr().out.split())
    assert main(["list", "benchmarks", "--filter", "nas-bench-graph:c*"]) == 0
    out = capsys.readouterr().out
    assert "nas-bench-graph:cora" in out and "nas-bench-graph:pubmed" not in out


def test_a_benchmark_search_asks_each_table_entry_once(bench_run):
    from supernet.spaces import decode
    from supernet.tabular import load_benchmark

    bench = load_benchmark("nas-bench-graph:cora")
    sizes = {k: v for k, v in bench.space_options.items() if k not in ("nodes", "ops")}
    trials = json.load(open(os.path.join(bench_run, "trials.json")))["trials"]
    keys = [bench.key(decode("gnn", t["text"], **sizes)) for t in trials]
    assert len(set(keys)) == len(keys)  # isomorphic DAGs share a key: never asked twice
