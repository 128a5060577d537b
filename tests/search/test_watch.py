"""Watching a search: one line per epoch with losses, accuracies, the gates' entropy, what
the search would keep now and the time left; the same figures in the history."""

import pytest
import torch
from search_graphs import small_config
from unit_search_helpers import mlp_data, tiny_mlp

from search_spaces import create_space, decode
from supernet.search import search
from supernet.search.watch import EpochLog, gate_entropy


def test_entropy_is_one_for_uniform_gates_and_zero_for_decided_ones():
    assert gate_entropy({"a": [[0.25] * 4]}) == pytest.approx(1.0)
    assert gate_entropy({"a": [[1.0, 0.0, 0.0]]}) == 0.0
    assert gate_entropy({"a": [[0.5, 0.5]], "b": [[1.0, 0.0]]}) == pytest.approx(0.5)
    assert gate_entropy({}) is None and gate_entropy({"a": [[1.0]]}) is None


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 40, generator=g)
    y = torch.arange(n) % 10
    return x, y


def test_each_epoch_prints_one_line_and_records_what_the_search_keeps_now():
    g = create_space("darts1d", C=4, layers=3, steps=2, multiplier=2)
    lines = []
    watch = EpochLog(lines.append)
    r = search(g, _data(32), strategy="darts", config=small_config(epochs=2, batch_size=16,
                                                                    steps_per_epoch=1),
               callbacks=[watch])
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" | ")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("train loss" in line and "val loss" in line and "entropy" in line
               for line in epochs)
    assert "left" in epochs[0] and "left" not in epochs[-1]  # nothing is left after the last
    for rec in r.history:
        assert 0.0 <= rec["entropy"] <= 1.0
        assert rec["current"].startswith("Genotype(")
        decode("darts1d", rec["current"], C=4, layers=3, steps=2, multiplier=2)  # a real one
        assert rec["elapsed"] > 0 and rec["remaining"] >= 0
    assert [rec["elapsed"] for rec in r.history] == sorted(rec["elapsed"] for rec in r.history)
    assert r.history[-1]["remaining"] == 0
    # the genotype shown after an epoch is the one its discretization would keep
    assert sum(line.startswith("  Genotype(") for line in lines) == 2


def test_the_unit_levels_show_the_kept_widths_and_verbose_the_gate_weights():
    g = tiny_mlp()
    lines = []
    r = search(g, mlp_data(), strategy="darts", config=small_config(epochs=2, batch_size=16),
               callbacks=[EpochLog(lines.append, verbose=True)])
    current = r.history[-1]["current"]
    assert {"h1", "h2"} <= set(current)  # every searched node, kept of all units
    for kept, total in current.values():
        assert 1 <= kept <= total
    widths = [line for line in lines if line.startswith("  widths ")]
    assert len(widths) == 2 and all("/" in line for line in widths)
    gates = [line for line in lines if line.startswith("    ")]
    assert gates and all(": " in line for line in gates)  # one line per gate with its weights


def test_no_log_still_records():
    r = search(tiny_mlp(), mlp_data(), strategy="darts",
               config=small_config(epochs=1, batch_size=16), callbacks=[EpochLog(None)])
    assert "entropy" in r.history[0] and "current" in r.history[0]
