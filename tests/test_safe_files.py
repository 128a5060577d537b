"""Files a user is handed load without running code from them, and damage is caught."""

import os
import pickle

import numpy as np
import pytest
import torch

from supernet import compile
from supernet.errors import SerializationError
from supernet.io import convert_pickle, load_tensors, load_weights, save_tensors, save_weights
from supernet.search.checkpoint import FORMAT, load_checkpoint
from supernet.units import mlp


class _Payload:
    """Unpickling this creates a file: the proof that a load ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(tmp_path, how):
    marker = str(tmp_path / "EXECUTED")
    path = str(tmp_path / "crafted.safetensors")
    obj = {"format": FORMAT, "x": _Payload(marker)}
    if how == "torch.save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)
    return path, marker


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
@pytest.mark.parametrize("entry", ["load_checkpoint", "load_weights", "load_tensors", "resume"])
def test_a_crafted_pickle_runs_nothing_through_any_entry_point(tmp_path, how, entry):
    path, marker = _crafted(tmp_path, how)
    with pytest.raises(SerializationError, match="pickle"):
        if entry == "load_checkpoint":
            load_checkpoint(path)
        elif entry == "load_weights":
            load_weights(compile(mlp([3, 2], seed=0)), path)
        elif entry == "load_tensors":
            load_tensors(path, "weights")
        else:
            from supernet.search import BilevelSearch
            BilevelSearch.resume(path, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)))
    assert not os.path.exists(marker)


def test_the_cli_rerun_of_a_run_with_a_crafted_checkpoint_runs_nothing(tmp_path):
    from supernet.cli import main

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    path, marker = _crafted(tmp_path, "torch.save")
    os.replace(path, out / "checkpoints" / "last.safetensors")
    code = main(["search", "--out", str(out), "--set", "search.epochs=1", "--resume"])
    assert code != 0 and not os.path.exists(marker)


def test_an_old_pickle_checkpoint_loads_only_when_trusted(tmp_path):
    path = str(tmp_path / "old.pt")
    torch.save({"format": FORMAT, "epoch": 3, "w": torch.ones(2)}, path)
    assert load_checkpoint(path, trust_pickle=True)["epoch"] == 3
    with pytest.raises(SerializationError, match="trust=True"):
        convert_pickle(path, FORMAT)
    new = convert_pickle(path, FORMAT, trust=True)
    assert new.endswith("old.safetensors") and load_checkpoint(new)["epoch"] == 3


def test_a_tree_round_trips_with_its_types(tmp_path):
    import random

    path = str(tmp_path / "t.safetensors")
    tree = {"w": torch.randn(3, 2), "np": np.random.get_state(), "py": random.getstate(),
            3: "an int key", "x": [1, 2.5, float("inf"), None, True, (4, "five")],
            "b": torch.zeros((), dtype=torch.bool), "empty": torch.zeros(0, 4)}
    save_tensors(tree, path, "test")
    back = load_tensors(path, "test")
    assert torch.equal(back["w"], tree["w"]) and back[3] == "an int key"
    assert back["x"] == tree["x"] and isinstance(back["x"][5], tuple)
    np.random.set_state(back["np"])  # the generators' states are states again
    random.setstate(back["py"])
    with pytest.raises(SerializationError, match="holds 'test', not 'weights'"):
        load_tensors(path, "weights")
    with pytest.raises(SerializationError, match="cannot save .*object"):
        save_tensors({"f": object()}, path, "test")


def test_every_flipped_bit_and_every_truncation_of_a_weights_file_is_refused(tmp_path):
    net = compile(mlp([4, 3, 2], seed=0), seed=0)
    path = str(tmp_path / "w.safetensors")
    save_weights(net, path)
    with open(path, "rb") as f:
        raw = f.read()
    step = max(1, len(raw) // 150)
    damaged = [bytes(raw[:i]) + bytes([raw[i] ^ 1 << (i % 8)]) + raw[i + 1:]
               for i in range(0, len(raw), step)]
    damaged += [raw[:i] for i in range(0, len(raw), step)]
    for data in damaged:
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(SerializationError, match="w.safetensors"):
            load_weights(net, path)
    assert len(damaged) > 250
