"""The ``supernet`` command end to end, on a tiny budget."""

import json
import os

import pytest

from supernet.cli import main

TINY = ["--set", "search.epochs=1", "--set", "search.max_steps_per_epoch=2",
        "--set", "search.batch_size=16", "--set", "train.epochs=1",
        "--set", "space.C=4", "--set", "space.layers=3", "--set", "space.steps=2",
        "--set", "space.multiplier=2", "--set", "data.num_samples=600", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    assert main(["search", "--out", out, *TINY, "--set", "tensorboard=true"]) == 0
    return out


def test_search_writes_what_users_keep(run_dir, capsys):
    for name in ("config.yaml", "architecture.json", "architecture.graphml", "genotype.txt",
                 "search_weights.pt", "weights.pt", "edits.json", "history.json",
                 "report.json", "report.md", os.path.join("checkpoints", "last.pt")):
        assert os.path.exists(os.path.join(run_dir, name)), name
    report = json.load(open(os.path.join(run_dir, "report.json")))
    assert 0.0 <= report["test_acc"] <= 1.0 and 0.0 <= report["val_acc"] <= 1.0
    assert report["text"].startswith("Genotype(normal=[")
    assert report["edits"]["synaptic_pruning"] > 0
    for name in ("graph.png", "cell_normal.png", "cell_reduce.png", "architecture_weights.png"):
        assert os.path.getsize(os.path.join(run_dir, "pictures", name)) > 0, name


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
    assert main(["train", "--run", run_dir, "--mode", "finetune", "--set", "train.epochs=1"]) == 0
    assert "final training: finetune" in capsys.readouterr().out
    assert main(["export", "--run", run_dir]) == 0
    out = capsys.readouterr().out
    assert "onnx" in out and "torchscript" in out
    assert main(["list", "strategies"]) == 0
    assert "sgas" in capsys.readouterr().out.split()


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
    assert "could not resolve 'dartz'" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("space: {name: darts1d}\ntrain: {mode: retrain, spilt: train}\n")
    assert main(["search", "--config", str(cfg), "--out", out]) == 2
    assert "config key 'train.spilt' is unknown. Did you mean 'split'?" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "checkpoints"))
