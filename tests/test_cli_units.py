"""The ``supernet`` command on unit-level spaces, on a tiny budget: the neuron-level MLP on
MNIST-1D (flattened signals) and the channel-level ResNet on 8x8 digits."""

import json
import os

import pytest

from supernet.cli import main
from supernet.io import load_graph

TINY = ["--set", "search.epochs=2", "--set", "search.max_steps_per_epoch=2",
        "--set", "search.batch_size=32", "--set", "train.epochs=1", "--quiet"]


def test_neuron_mlp_searches_mnist1d(tmp_path, capsys):
    out = str(tmp_path / "mlp")
    args = ["search", "--out", out, "--set", "space.name=neuron_mlp",
            "--set", "space.hidden=[12,12]", "--set", "data.num_samples=600",
            "--set", "strategy.name=progressive_gates", "--set", "strategy.warmup=0", *TINY]
    assert main(args) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["space"] == "neuron_mlp" and report["strategy"] == "progressive_gates"
    assert 0.0 <= report["test_acc"] <= 1.0
    graph = load_graph(os.path.join(out, "architecture.json"))
    assert graph.node("x")["width"] == 40  # in_features from the (1, 40) signals
    assert not [n for n, d in graph.nx.nodes(data=True) if d.get("gated")]
    assert report["edits"]["neuron_removal"] >= 1
    # the found network fine-tunes and exports on the same flattened signals
    assert main(["train", "--run", out, "--mode", "finetune", "--set", "train.epochs=1"]) == 0
    assert main(["export", "--run", out]) == 0
    printed = capsys.readouterr().out
    assert "final training: finetune" in printed and "onnx" in printed


def test_channel_cnn_searches_digits(tmp_path, capsys):
    out = str(tmp_path / "cnn")
    args = ["search", "--out", out, "--set", "space.name=channel_cnn",
            "--set", "data.name=digits", "--set", "space.widths=[4,8]",
            "--set", "space.depths=[1,1]", "--set", "strategy.name=gdas", *TINY]
    assert main(args) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    graph = load_graph(os.path.join(out, "architecture.json"))
    assert graph.node("x")["shape"] == [1, 8, 8]  # in_channels and input_size from digits
    assert len(graph.node("head")["units"]) == 10
    text = open(os.path.join(out, "genotype.txt")).read().strip()
    assert report["text"] == text and len(text.split()) == 3  # widths after pruning
    assert f"```\n{text}\n```" in capsys.readouterr().out  # the report shows the kept widths


def test_unit_space_config_contradicting_the_data_fails_before_training(tmp_path, capsys):
    out = str(tmp_path / "bad")
    assert main(["search", "--out", out, "--set", "space.name=neuron_mlp",
                 "--set", "space.in_features=64", "--set", "data.num_samples=600", *TINY]) == 2
    assert "'space.in_features' is 64, but data set 'mnist1d' has 40" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "checkpoints"))


@pytest.mark.parametrize("size", [16, [16, 16]])
def test_channel_input_size_must_match_the_images(tmp_path, capsys, size):
    out = str(tmp_path / "bad")
    value = size if isinstance(size, int) else "[16,16]"
    assert main(["search", "--out", out, "--set", "space.name=channel_cnn",
                 "--set", "data.name=digits", "--set", f"space.input_size={value}", *TINY]) == 2
    assert "'space.input_size' is [16, 16], but data set 'digits' has [8, 8]" in \
        capsys.readouterr().err
