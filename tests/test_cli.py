"""The ``supernet`` command end to end, on a tiny budget."""

import json
import os
import re

import pytest
from tiny_run import tiny_args

from supernet.cli import main
from supernet.errors import SearchError

TINY = tiny_args(samples=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    assert main(["search", "--out", out, *TINY, "--set", "tensorboard=true"]) == 0
    return out


def test_search_writes_what_users_keep(run_dir, capsys):
    for name in ("config.yaml", "architecture.json", "architecture.graphml", "genotype.txt",
                 "search_weights.safetensors", "weights.safetensors", "edits.json", "history.json",
                 "report.json", "report.md", os.path.join("checkpoints", "last.safetensors")):
        assert os.path.exists(os.path.join(run_dir, name)), name
    report = json.load(open(os.path.join(run_dir, "report.json")))
    assert 0.0 <= report["test_acc"] <= 1.0 and 0.0 <= report["val_acc"] <= 1.0
    assert report["text"].startswith("Genotype(normal=[")
    assert report["edits"]["synaptic_pruning"] > 0
    for name in ("graph.png", "cell_normal.png", "cell_reduce.png", "architecture_weights.png",
                 "curves.png"):
        assert os.path.getsize(os.path.join(run_dir, "pictures", name)) > 0, name


def test_a_search_prints_one_plain_line_per_epoch(tmp_path, capsys):
    quiet = [a for a in TINY if a != "--quiet"]
    out = str(tmp_path / "watched")
    assert main(["search", "--out", out, *quiet, "--set", "search.epochs=2",
                 "--set", "pictures=false", "--verbose"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert [line.split(" | ")[0] for line in lines if line.startswith("epoch ")] == \
        ["epoch 1/2", "epoch 2/2"]
    assert sum(line.startswith("  Genotype(normal=") for line in lines) == 2
    assert any(line.startswith("    normal:") for line in lines)  # --verbose: gate weights
    assert [line.split(" | ")[0] for line in lines if line.startswith("train epoch")] == \
        ["train epoch 1/1"]
    assert "\r" not in printed.out + printed.err  # no progress bar off a terminal
    history = json.load(open(os.path.join(out, "history.json")))
    assert all(0 <= r["entropy"] <= 1 and r["current"].startswith("Genotype(")
               for r in history["search"])
    assert main(["search", "--out", str(tmp_path / "q"), *TINY]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines()
                if line.startswith(("epoch ", "train epoch"))]


def test_search_logs_scalars_for_tensorboard(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    history = json.load(open(os.path.join(run_dir, "history.json")))
    loss = [e.value for e in events.Scalars("search/train_loss")]
    assert loss == pytest.approx([r["train_loss"] for r in history["search"]], rel=1e-6)
    first = history["search"][0]
    gate = "normal:p0->n2"
    for op, p in zip(first["candidates"][gate], first["gates"][gate][0]):
        assert events.Scalars(f"gates/{gate}/{op}")[0].value == pytest.approx(p, rel=1e-6)
    assert [e.step for e in events.Scalars("train/loss")] == [1] and "train/val_acc" in tags


def test_tensorboard_without_its_package_is_a_config_error(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    assert main(["search", "--out", str(tmp_path), *TINY, "--set", "tensorboard=true"]) == 2
    assert ("config key 'tensorboard' is true, but the tensorboard package is not installed"
            in capsys.readouterr().err)


def test_show_train_export_and_list(run_dir, capsys):
    assert main(["show", os.path.join(run_dir, "architecture.json")]) == 0
    assert "lint: ok" in capsys.readouterr().out
    kept = {n: open(os.path.join(run_dir, n), "rb").read()
            for n in ("weights.safetensors", "report.json", "report.md", "history.json")}
    assert main(["train", "--run", run_dir, "--mode", "finetune", "--set", "train.epochs=1"]) == 0
    assert "final training: finetune" in capsys.readouterr().out
    # the new training is written beside the search's results, never over them
    assert {n: open(os.path.join(run_dir, n), "rb").read() for n in kept} == kept
    for name in ("weights.safetensors", "report.json", "report.md", "history.json",
                 "config.yaml"):
        assert os.path.exists(os.path.join(run_dir, "trained-finetune", name)), name
    assert main(["train", "--run", run_dir, "--mode", "finetune", "--set", "train.epochs=1"]) == 0
    assert "trained-finetune-2" in capsys.readouterr().out
    assert main(["export", "--run", run_dir, "--weights", "trained-finetune",
                 "--to", os.path.join(run_dir, "export-finetuned")]) == 0
    assert "weights: trained-finetune/weights.safetensors" in capsys.readouterr().out
    assert main(["export", "--run", run_dir, "--weights", "nowhere"]) == 2
    assert "--weights 'nowhere' is neither" in capsys.readouterr().err
    assert main(["export", "--run", run_dir]) == 0
    out = capsys.readouterr().out
    assert "onnx" in out and "torchscript" in out
    assert main(["list", "strategies"]) == 0
    assert "sgas" in capsys.readouterr().out.split()


def test_list_filters_names_with_a_glob(capsys):
    assert main(["list", "spaces", "--filter", "darts*"]) == 0
    lines = capsys.readouterr().out.splitlines()  # each name with its one-line description
    assert any(line.startswith("darts1d ") and "MNIST-1D" in line for line in lines)
    assert main(["list", "strategies", "--filter", "gdas"]) == 0
    assert "one Gumbel-max sampled path per step" in capsys.readouterr().out
    assert main(["list", "spaces", "--filter", "darts*", "--names"]) == 0
    names = capsys.readouterr().out.split()
    assert {"darts", "darts1d"} <= set(names) and all(n.startswith("darts") for n in names)
    assert "nasbench201" not in names
    assert main(["list", "datasets", "--filter", "*_*", "--names"]) == 0
    assert capsys.readouterr().out.split() == ["ba_shapes"]
    assert main(["list", "strategies", "--filter", "*darts*", "--names"]) == 0
    names = capsys.readouterr().out.split()
    assert names and all("darts" in n for n in names)
    assert main(["list", "ops", "--filter", "sep_conv_3x3"]) == 0
    assert "sep_conv_3x3" in capsys.readouterr().out.split()
    assert main(["list", "datasets", "--names"]) == 0  # without a filter: every name
    assert capsys.readouterr().out.split() == ["arrays", "ba_shapes", "digits", "mnist1d"]


def test_resume_continues_a_run(tmp_path, capsys):
    out = str(tmp_path / "r")
    args = ["search", "--out", out, *TINY, "--set", "train.mode=none"]
    assert main(args) == 0
    first = json.load(open(os.path.join(out, "report.json")))
    assert main(args + ["--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out
    again = json.load(open(os.path.join(out, "report.json")))
    assert again["text"] == first["text"]


def test_bad_configs_fail_before_training_naming_the_key(tmp_path, capsys):
    out = str(tmp_path / "bad")
    assert main(["search", "--out", out, "--set", "serach.epochs=1"]) == 2
    assert "'serach' is not a config section. Did you mean 'search'?" in capsys.readouterr().err
    assert main(["search", "--out", out, "--set", "space.num_classes=5", *TINY]) == 2
    assert "'space.num_classes' is 5, but data set 'mnist1d' has 10" in capsys.readouterr().err
    assert main(["search", "--out", out, "--set", "strategy.name=dartz"]) == 2
    assert "strategy: could not resolve strategy 'dartz'" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("space: {name: darts1d}\ntrain: {mode: retrain, spilt: train}\n")
    assert main(["search", "--config", str(cfg), "--out", out]) == 2
    assert "config key 'train.spilt' is unknown. Did you mean 'split'?" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "checkpoints"))


@pytest.mark.parametrize("override, message", [
    ("train.epochs=0", r"'train.epochs' is 0; it must be >= 1"),
    ("train.lr=-1", r"'train.lr' is -1.0; it must be > 0"),
    ("train.momentum=1.5", r"'train.momentum' is 1.5; it must be >= 0 and < 1"),
    ("search.epochs=-2", r"'search.epochs' is -2; it must be >= 1"),
    ("search.batch_size=0", r"'search.batch_size' is 0; it must be >= 1"),
    ("train.split=all", r"'train.split' is 'all'; expected one of \['train', 'train\+val'\]"),
    ("train.options={drop_path: 0.2}",
     r"'train.options.drop_path' is unknown. Did you mean 'drop_path_prob'\?"),
])
def test_out_of_range_budgets_fail_before_the_search(tmp_path, capsys, override, message):
    out = str(tmp_path / "bad")
    assert main(["search", "--out", out, *TINY, "--set", override]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not os.path.exists(os.path.join(out, "checkpoints"))  # nothing ran


def test_train_module_rejects_a_negative_learning_rate():
    import torch

    from supernet.train.retrain import train_module

    with pytest.raises(SearchError, match=r"training setting lr=-0.1: must be a number >= 0"):
        train_module(torch.nn.Linear(2, 2), (torch.randn(4, 2), torch.zeros(4).long()), lr=-0.1)


def test_run_commands_on_missing_killed_and_corrupted_runs(run_dir, tmp_path, capsys):
    import shutil

    missing = str(tmp_path / "nope")
    for cmd in ("train", "export"):
        assert main([cmd, "--run", missing]) == 2
        assert f"{missing}: no such run directory" in capsys.readouterr().err
    killed = tmp_path / "killed"  # a search stopped mid-way: config and checkpoint only
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy(os.path.join(run_dir, "config.yaml"), killed)
    shutil.copy(os.path.join(run_dir, "checkpoints", "last.safetensors"), killed / "checkpoints")
    for cmd in ("train", "export"):
        assert main([cmd, "--run", str(killed)]) == 2
        assert re.search(r"the search did not finish .*--resume", capsys.readouterr().err)
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "weights.safetensors").write_bytes(b"PK\x03\x04 truncated")
    # every file a run wrote is checked against its manifest before it is read
    assert main(["export", "--run", str(broken)]) == 2
    assert f"{broken / 'weights.safetensors'}: changed since the run wrote it" in \
        capsys.readouterr().err
    (broken / "config.yaml").write_text("- a list\n")
    assert main(["export", "--run", str(broken)]) == 2
    assert f"{broken / 'config.yaml'}: changed since the run wrote it" in capsys.readouterr().err
    (broken / "manifest.json").unlink()
    assert main(["export", "--run", str(broken)]) == 2
    assert f"{broken}: no manifest.json" in capsys.readouterr().err
    assert main(["show", os.path.join(run_dir, "report.json")]) == 2
    assert re.search(r"report.json: not a supernet node-link document", capsys.readouterr().err)
    (broken / "architecture.json").write_text("[1, 2]")
    assert main(["show", str(broken / "architecture.json")]) == 2
    assert "architecture.json: not a supernet node-link document" in capsys.readouterr().err
    assert main(["show", run_dir]) == 0  # a run directory shows its architecture
    assert "lint: ok" in capsys.readouterr().out


def _killed_in_its_second_epoch(monkeypatch, argv) -> int:
    """``main(argv)`` interrupted (Ctrl-C) during the second search epoch, after the first
    was saved."""
    from supernet.search.loop import BilevelSearch

    epoch, calls = BilevelSearch._epoch, []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        epoch(self)

    monkeypatch.setattr(BilevelSearch, "_epoch", interrupted)
    try:
        return main(argv)
    finally:
        monkeypatch.setattr(BilevelSearch, "_epoch", epoch)


def test_rerunning_a_killed_search_resumes_it(tmp_path, capsys, monkeypatch):
    args = [*TINY, "--set", "search.epochs=2", "--set", "train.mode=none"]
    whole = str(tmp_path / "whole")
    assert main(["search", "--out", whole, *args]) == 0
    out = str(tmp_path / "killed")
    assert _killed_in_its_second_epoch(monkeypatch, ["search", "--out", out, *args]) == 130
    assert "interrupted (the search saved its last finished epoch; run the same command again" \
        in capsys.readouterr().err
    assert main(["search", "--out", out, *args, "--set", "search.epochs=3"]) == 2
    assert re.search(r"did not finish .*differs in \['search'\].*--resume",
                     capsys.readouterr().err)
    capsys.readouterr()
    assert main(["search", "--out", out, *args]) == 0  # the same command again
    assert "continuing the unfinished search" in capsys.readouterr().out
    first = json.load(open(os.path.join(whole, "report.json")))
    again = json.load(open(os.path.join(out, "report.json")))
    assert again["text"] == first["text"] and again["search_epochs"] == 2
    history = json.load(open(os.path.join(out, "history.json")))["search"]
    assert [h["epoch"] for h in history] == [h["epoch"] for h in json.load(
        open(os.path.join(whole, "history.json")))["search"]]


def test_a_bad_config_leaves_an_earlier_run_as_it_was(run_dir, tmp_path, capsys):
    import shutil

    out = tmp_path / "kept"
    shutil.copytree(run_dir, out)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["search", "--out", str(out), *TINY, "--set", "space.dim=2", "--force"]) == 2
    assert "config key 'space.dim' is 2, but data set 'mnist1d' has 1" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # without --force a finished run is never redone over its results
    assert main(["search", "--out", str(out), *TINY]) == 2
    assert "holds a finished run (report.md); it is kept" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_out_that_is_a_file_or_a_folder_of_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["search", "--out", str(tmp_path / "notes.txt"), *TINY]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["search", "--out", str(tmp_path), *TINY]) == 2
    assert "holds files that no run wrote (notes.txt; no manifest.json)" in \
        capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_darts_space_takes_its_dimension_from_the_data(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["search", "--out", out, *TINY, "--set", "space.name=darts",
                 "--set", "train.mode=none"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["space"] == "darts" and report["text"].startswith("Genotype(")


def test_a_damaged_checkpoint_fails_with_how_to_start_over(run_dir, tmp_path, capsys):
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(run_dir, out)
    for junk in (b"garbage\n", b"PK\x03\x04"):
        (out / "checkpoints" / "last.safetensors").write_bytes(junk)
        assert main(["search", "--out", str(out), *TINY, "--resume"]) == 2
        assert re.search(r"last.safetensors: (damaged|a pickle).*delete it to start the search "
                         r"over", capsys.readouterr().err)
    (out / "weights.safetensors").write_bytes(b"garbage\n")
    assert main(["export", "--run", str(out)]) == 2
    assert "weights.safetensors: changed since the run wrote it" in capsys.readouterr().err


def test_an_override_into_a_key_says_it_is_a_key(capsys):
    assert main(["search", "--set", "space.foo.bar=1"]) == 2
    assert ("'space.foo' is a key, not a section; set it with space.foo=VALUE"
            in capsys.readouterr().err)


def test_output_piped_into_a_reader_that_leaves_early_is_no_error():
    import subprocess
    import sys

    # the reader is gone before anything is printed (as `supernet list ops | head -0`)
    proc = subprocess.Popen([sys.executable, "-m", "supernet", "list", "ops"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err, err


def test_a_gnn_search_on_a_node_classification_graph(tmp_path, capsys):
    out = str(tmp_path / "gnn")
    assert main(["search", "--out", out, "--quiet", "--set", "space.name=gnn",
                 "--set", "space.hidden=8", "--set", "data.name=ba_shapes",
                 "--set", "data.num_nodes=60", "--set", "data.num_motifs=8",
                 "--set", "search.epochs=2", "--set", "train.epochs=2"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["data"] == "ba_shapes" and 0.0 <= report["test_acc"] <= 1.0
    assert report["text"] and len(report["text"].split()) == 4  # one op per computing node
    capsys.readouterr()
    assert main(["export", "--run", out]) == 0
    printed = capsys.readouterr().out
    for kind in ("torchscript", "program", "onnx"):  # each said, with the reason
        assert re.search(rf"{kind} +not written: a graph network reads its graph", printed)
    assert os.path.exists(os.path.join(out, "export", "weights.safetensors"))


def test_a_new_run_in_a_finished_runs_directory_leaves_no_result_of_the_old(
        run_dir, tmp_path, capsys, monkeypatch):
    import shutil

    from supernet.search.loop import BilevelSearch

    out = tmp_path / "reused"
    shutil.copytree(run_dir, out)

    def killed(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(BilevelSearch, "_epoch", killed)
    assert main(["search", "--out", str(out), *TINY, "--set", "seed=1", "--force"]) == 130
    for name in ("report.json", "architecture.json", "genotype.txt", "weights.safetensors",
                 "search_weights.safetensors", "history.json"):
        assert not (out / name).exists(), name  # the old results are not this run's
    assert main(["train", "--run", str(out)]) == 2
    assert "no architecture.json" in capsys.readouterr().err


def test_a_rerun_that_only_shows_results_otherwise_still_resumes(tmp_path, capsys, monkeypatch):
    args = [*TINY, "--set", "search.epochs=2", "--set", "train.mode=none"]
    out = str(tmp_path / "k")
    assert _killed_in_its_second_epoch(monkeypatch, ["search", "--out", out, *args]) == 130
    capsys.readouterr()
    assert main(["search", "--out", out, *args, "--set", "pictures=false"]) == 0
    assert "continuing the unfinished search" in capsys.readouterr().out


def _read(run, name):
    import yaml

    with open(os.path.join(run, name)) as f:
        return yaml.safe_load(f) if name.endswith(".yaml") else json.load(f)


def test_a_strategy_composed_in_yaml_runs_and_is_the_named_one_it_spells_out(tmp_path, capsys):
    composed = tmp_path / "gdas_by_hand.yaml"
    composed.write_text("strategy:\n"
                        "  relaxation: {name: gumbel_max, tau_max: 10.0, tau_min: 0.1}\n"
                        "  discretization: argmax\n"
                        "  config: {w_lr: 0.05}\n")
    named = tmp_path / "gdas.yaml"
    named.write_text("strategy: {name: gdas, config: {w_lr: 0.05}}\n")
    runs = []
    for path in (composed, named):
        out = str(tmp_path / path.stem)
        assert main(["search", "--config", str(path), "--out", out, *TINY,
                     "--set", "pictures=false"]) == 0
        runs.append(out)
    timing = ("elapsed", "remaining")
    (a, b) = [[{k: v for k, v in rec.items() if k not in timing} for rec in
               _read(r, "history.json")["search"]] for r in runs]
    assert a == b and a[0]["lr"] == pytest.approx(0.05) and a[0]["tau"] == pytest.approx(10.0)
    assert open(os.path.join(runs[0], "genotype.txt")).read() == \
        open(os.path.join(runs[1], "genotype.txt")).read()
    assert _read(runs[0], "report.json")["strategy"] == "composed"
    saved = _read(runs[0], "config.yaml")["strategy"]
    assert "name" not in saved and saved["relaxation"]["name"] == "gumbel_max"
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: {relaxation: gumbel_maks}\n")
    assert main(["search", "--config", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert ("strategy.relaxation: could not resolve relaxation 'gumbel_maks' among ["
            in capsys.readouterr().err)


def test_the_runs_config_holds_every_value_in_force(tmp_path):
    out = str(tmp_path / "pdarts")
    tiny = [a for i, a in enumerate(TINY)
            if not any(x.startswith(("search.epochs", "search.batch_size"))
                       for x in TINY[i:i + 2])]
    assert main(["search", "--out", out, *tiny, "--set", "strategy.name=pdarts",
                 "--set", "strategy.stages=[{cells: 3, keep: 1, dropout: 0.0, epochs: 1, "
                 "warmup: 0}]", "--set", "pictures=false"]) == 0
    saved = _read(out, "config.yaml")
    # P-DARTS' own batch size and epochs, not the packaged 128 and 8
    assert saved["search"]["batch_size"] == 96 and saved["search"]["epochs"] == 1
    loop = saved["strategy"]["config"]
    assert loop["arch_lr"] == 6e-4 and loop["w_lr_min"] == 0.0 and loop["second_order"] is False
    assert saved["train"]["epochs"] == 1 and saved["space"]["C"] == 4
    assert _read(out, "report.json")["search_epochs"] == 1
