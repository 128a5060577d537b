"""Property: malformed data never ends in anything but a supernet error. Random data sets
(wrong dtypes, shapes, label ranges, lengths, NaN, NumPy or torch, empty) go to a search,
and random malformed array files to the ``arrays`` data set through the command line; each
either runs or fails with a SupernetError (the command: exit 2 and one ``supernet: error:``
line), and the cases built to be right run while those built with a definite mistake fail."""

import os

import numpy as np
import pytest
import torch
from data_helpers import Items, toy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supernet.cli import main
from supernet.errors import SupernetError
from supernet.search import search

K = 3  # classes of the toy network
FAST = {"epochs": 1, "batch_size": 4, "steps_per_epoch": 1, "progress": False,
        "eval_batches": 1}


SHAPES = {"ok": (2, 4, 4), "rank": (2, 4), "channels": (3, 4, 4), "flat": (2,), "scalar": ()}
#: What a case may vary without a mistake, and the mistakes it may make (none, one or two).
FINE = {"x_dtype": ["float32", "float64", "float16"],
        "y_kind": ["int64", "int32", "uint8", "bool", "probs"],
        "container": ["torch", "numpy", "list", "tensor_dataset", "items"],
        "val": [False, True], "seed": [0, 1, 2, 3]}
MISTAKES = {"n": [0, 1, 3], "shape": ["rank", "channels", "flat", "scalar"],
            "x_dtype": ["int64", "uint8", "bool"], "nonfinite": ["nan", "inf"],
            "y_kind": ["float_whole", "float_frac", "column"],
            "range": ["at_k", "negative", "ignored_one"], "length": [1, -1],
            "container": ["pylist"]}
RIGHT = {"n": 8, "shape": "ok", "nonfinite": None, "range": "ok", "length": 0}


@st.composite
def cases(draw):
    case = {**RIGHT, **{k: draw(st.sampled_from(v)) for k, v in FINE.items()}}
    for key in draw(st.lists(st.sampled_from(sorted(MISTAKES)), max_size=2, unique=True)):
        case[key] = draw(st.sampled_from(MISTAKES[key]))
    return case


def build(case, n=None):
    """``(data, what makes it wrong: None for data built to be right, or a reason)``."""
    n = case["n"] if n is None else n
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(n, *SHAPES[case["shape"]], generator=g)
    if case["nonfinite"] and x.numel():
        x.view(-1)[0] = float(case["nonfinite"])
    x = (x * 3).to(getattr(torch, case["x_dtype"]))
    m = max(n + case["length"], 0)
    y = torch.arange(m) % K
    if case["range"] == "at_k" and m:
        y[-1] = K
    elif case["range"] == "negative" and m:
        y[-1] = -1
    elif case["range"] == "ignored_one" and m:
        y[0] = -100
    kind = case["y_kind"]
    if kind in ("int32", "uint8") and case["range"] not in ("negative", "ignored_one"):
        y = y.to(getattr(torch, kind))
    elif kind == "bool":
        y = (y % 2).bool()
    elif kind == "float_whole":
        y = y.float()
    elif kind == "float_frac":
        y = y.float() + 0.5
    elif kind == "column":
        y = y[:, None]
    elif kind == "probs":
        y = torch.softmax(torch.randn(m, K, generator=g), 1)
    wrong = []
    if case["shape"] != "ok":
        wrong.append("shape")
    if case["x_dtype"] in ("int64", "uint8", "bool"):
        wrong.append("input dtype")
    if case["nonfinite"] and n:
        wrong.append("non-finite")
    if case["length"] and n:
        wrong.append("length")
    if kind in ("float_whole", "float_frac", "column"):
        wrong.append("label kind")
    if kind not in ("bool", "probs") and case["range"] in ("at_k", "negative"):
        wrong.append("label range")
    c = case["container"]
    if c == "numpy":
        data = (x.numpy(), y.numpy())
    elif c == "list":
        data = [x, y]
    elif c == "tensor_dataset":
        data = (x, y) if case["length"] else torch.utils.data.TensorDataset(x, y)
    elif c == "items":
        data = Items(x, y)
    elif c == "pylist":
        data = (x, y.tolist())
        wrong.append("container")
    else:
        data = (x, y)
    return data, wrong, c == "items"


@settings(max_examples=220, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_malformed_data_runs_or_fails_with_a_supernet_error(case):
    train, wrong, items = build(case)
    val, val_wrong, _ = build(case, n=6) if case["val"] else (None, [], False)
    wrong = wrong + val_wrong
    n = case["n"]
    too_few = n < (2 if case["val"] else 4)
    if case["x_dtype"] in ("float64", "float16") and items:
        wrong.append("input dtype of items")  # items are not converted
    try:
        result = search(toy(K, 2, ("conv_1x1", "skip_connect")), train, val, config=FAST)
    except SupernetError as exc:
        assert str(exc), case
        if not wrong and not too_few and case["range"] != "ignored_one":
            pytest.fail(f"data built to be right was refused: {exc} ({case})")
        return
    except Exception as exc:  # noqa: BLE001  (the property: nothing but a supernet error)
        pytest.fail(f"{type(exc).__name__}: {exc} ({case})")
    # a data set of items is read item by item: a bad label or a longer x may go unread
    definite = [w for w in wrong if not (items and w in ("label range", "length"))]
    assert not definite and not too_few, f"ran despite {definite or 'too few samples'}: {case}"
    assert len(result.history) == 1


TINY = ["--set", "search.epochs=1", "--set", "search.max_steps_per_epoch=1",
        "--set", "search.batch_size=8", "--set", "train.mode=none", "--set", "space.C=4",
        "--set", "space.layers=3", "--set", "space.steps=2", "--set", "space.multiplier=2",
        "--set", "pictures=false", "--quiet"]


def write(kind: str, folder: str) -> tuple[list[str], bool]:
    """``(--set options, whether the file is right)`` for file case ``kind``: random samples
    (their number and where the mistake sits drawn from a generator seeded by the case)."""
    rng = np.random.default_rng(FILE_CASES.index(kind))
    n = int(rng.integers(30, 50))
    xs, ys = rng.normal(size=(n, 1, 12)), np.arange(n) % 3
    at = int(rng.integers(0, n))  # the sample at fault
    p = os.path.join(folder, "d.npz")
    sets, right = [], False
    if kind in ("ok", "flat"):
        np.savez(p, x=xs.reshape(n, -1) if kind == "flat" else xs, y=ys)
        right = True
    elif kind == "csv":
        p = os.path.join(folder, "d.csv")
        rows = "\n".join(",".join(f"{v:.3f}" for v in r) + f",c{k}"
                         for r, k in zip(xs.reshape(n, -1), ys))
        with open(p, "w") as f:
            f.write(",".join(f"f{i}" for i in range(12)) + ",label\n" + rows)
        right = True
    elif kind in ("frac", "negative", "nan"):
        if kind == "nan":
            xs[at, 0, at % 12] = np.nan
        y = ys + (0.25 if kind == "frac" else 0.0)
        if kind == "negative":
            y[at] = -1
        np.savez(p, x=xs, y=y)
    elif kind == "lengths":
        np.savez(p, x=xs, y=ys[:at])
    elif kind == "keys":
        np.savez(p, a=xs, b=ys)
    elif kind == "objects":
        np.savez(p, x=xs, y=np.array([object()] * n))
    elif kind == "few":
        np.savez(p, x=xs[:at % 6], y=ys[:at % 6])
    elif kind == "csv_text":
        p = os.path.join(folder, "d.csv")
        cells = [["1", "2", "0"] for _ in range(n)]
        cells[at][at % 2] = "four"
        with open(p, "w") as f:
            f.write("a,b,label\n" + "\n".join(",".join(r) for r in cells))
    elif kind == "truncated":
        np.savez(p, x=xs, y=ys)
        with open(p, "r+b") as f:
            f.truncate(at * 10)
    elif kind == "shape":
        np.savez(p, x=xs, y=ys)
        sets = ["data.shape=[5,5]"]
    elif kind == "num_classes":
        np.savez(p, x=xs, y=ys)
        sets = ["data.num_classes=2"]
    elif kind == "pickled_pt":
        p = os.path.join(folder, "d.pt")
        torch.save({"x": xs, "y": ys}, p)  # NumPy arrays: only full unpickling loads them
    elif kind == "missing":
        p = os.path.join(folder, "nothing.npz")
    return [f"data.path={p}", *sets], right


FILE_CASES = ["ok", "flat", "csv", "frac", "negative", "lengths", "nan", "keys", "objects",
              "few", "csv_text", "truncated", "shape", "num_classes", "pickled_pt", "missing"]


@pytest.mark.parametrize("kind", FILE_CASES)
def test_malformed_array_files_from_the_command_line(kind, tmp_path, capsys):
    sets, right = write(kind, str(tmp_path))
    args = ["search", "--out", str(tmp_path / "run"), "--set", "data.name=arrays"]
    for s in sets:
        args += ["--set", s]
    code = main(args + TINY)  # anything but a SupernetError propagates and fails the test
    err = capsys.readouterr().err
    if right:
        assert code == 0, err
    else:
        assert code == 2
        lines = [line for line in err.splitlines() if line.startswith("supernet: error: ")]
        assert len(lines) == 1, err
