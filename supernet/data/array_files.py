"""Array files read without running code, for the ``arrays`` data set
(:mod:`supernet.data.arrays`): NumPy's ``.npz`` and ``.npy`` with ``allow_pickle=False``,
torch's ``.pt``/``.pth`` with ``torch.load(weights_only=True)``, and ``.csv`` text. An array
that only unpickling could read is refused (unpickling can run code), and so is a file that
cannot be read, naming it and the way to save it.

Examples:
    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> np.savez(path, inputs=np.zeros((4, 2)), targets=np.arange(4))
    >>> ((x, where), (y, _)), = read_arrays(path).values()
    >>> x.shape, where
    ((4, 2), "data file '...toy.npz', array 'inputs'")
"""

from __future__ import annotations

import csv
import os
import pickle
import re
import zipfile

import numpy as np
import torch

from supernet.errors import ConfigError

__all__ = ["X_KEYS", "Y_KEYS", "find_file", "read_arrays"]

#: Names looked for, in order, for the inputs and the labels of a ``.npz`` or ``.pt`` file.
X_KEYS = ("x", "X", "inputs", "data")
Y_KEYS = ("y", "Y", "labels", "targets")
_SPLITS = ("train", "val", "test")


def read_arrays(path: str, labels: str = "", x_key: str = "", y_key: str = "",
                label_column: str = "") -> dict:
    """The arrays of ``path`` (and of ``labels``, the labels' ``.npy`` of a ``.npy``
    ``path``): ``{split: ((inputs, where), (labels, where))}``, the split ``""`` for a file
    of one set, else ``"train"`` and, when the file has them, ``"val"``, ``"test"``; each
    ``where`` names the file and array (or column) for messages.

    Raises:
        ConfigError: no such file, a file that cannot be read or only by unpickling, or no
            inputs or labels where they are looked for (the keys the file has are listed).
    """
    full = find_file(path, "data.path")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".csv":
        return _read_csv(full, label_column or None)
    if suffix == ".npy":
        y = _load_npy(find_file(labels, "data.labels"))
        return {"": ((_load_npy(full), f"data file {path!r}"), (y, f"labels file {labels!r}"))}
    content = _load_npz(full) if suffix == ".npz" else _load_pt(full)
    return _pick(content, path, x_key, y_key)


def find_file(path: str, key: str) -> str:
    """``path`` with ``~`` expanded, or a ConfigError naming ``key`` when it is no file
    (a relative path is read from the current directory)."""
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        what = "is a folder, not a file" if os.path.isdir(full) else "no such file"
        raise ConfigError(f"{key} {path!r}: {what} (a relative path is read from the current "
                          f"directory, {os.getcwd()})")
    return full


def _unreadable(path: str, exc: Exception, fix: str) -> ConfigError:
    return ConfigError(f"data file {path!r} cannot be read ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); {fix}")


_PICKLE_FIX = ("it holds Python objects, which NumPy reads only by unpickling, and unpickling "
               "can run code; save plain numeric (or string) arrays, e.g. numpy.asarray(x, "
               "dtype=numpy.float32)")


def _load_npy(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ConfigError(f"data file {path!r}: {_PICKLE_FIX}") from None
        raise _unreadable(path, exc, "save it with numpy.save") from None
    except (OSError, EOFError) as exc:
        raise _unreadable(path, exc, "save it with numpy.save") from None


def _load_npz(path: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {}
            for k in f.files:
                try:
                    out[k] = f[k]
                except ValueError as exc:
                    if "pickle" not in str(exc):
                        raise
                    out[k] = _Refused(f"data file {path!r}, array {k!r}: {_PICKLE_FIX}")
            return out
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, exc, "save it with numpy.savez(path, x=x, y=y)") from None


class _Refused:
    """An array of a file that cannot be read safely: an error when it is used."""

    def __init__(self, message: str):
        self.message = message


def _load_pt(path: str):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            glob = re.search(r"GLOBAL ([\w.]+)", str(exc))
            why = (f" (it needs {glob.group(1)})" if glob else
                   "".join(f" ({m.group(1).strip()})" for m in
                           re.finditer(r"WeightsUnpickler error:\s*(.+)", str(exc))))
            raise ConfigError(
                f"data file {path!r} does not load as plain tensors{why}: it is no torch.save "
                "file, or "
                "it holds objects that only full unpickling can load, and unpickling can run "
                "code, so it is not read; save plain tensors: torch.save({'x': x, 'y': y}, "
                "path) (NumPy arrays as torch.as_tensor(a))") from None
        raise _unreadable(path, exc, "save it with torch.save({'x': x, 'y': y}, path)") from None


# ---------------------------------------------------------------- keys
def _pick(content, path: str, x_key: str, y_key: str) -> dict:
    """``{split ("" for one set): ((x, where), (y, where))}`` from a file's content."""
    if isinstance(content, (tuple, list)):
        if len(content) != 2 or x_key or y_key:
            raise ConfigError(f"data file {path!r} holds a {type(content).__name__} of "
                              f"{len(content)} items; give (x, y) or a dict {{'x': ..., 'y': "
                              "...}} (data.x_key and data.y_key name the keys of a dict)")
        return {"": ((content[0], f"data file {path!r}, item 0 (inputs)"),
                     (content[1], f"data file {path!r}, item 1 (labels)"))}
    if not isinstance(content, dict):
        raise ConfigError(f"data file {path!r} holds a {type(content).__name__}; save a dict "
                          "of inputs and labels, e.g. {'x': x, 'y': y}, or a tuple (x, y)")
    keys = [str(k) for k in content]

    def get(key):
        value = content[key]
        if isinstance(value, _Refused):
            raise ConfigError(value.message)
        return value, f"data file {path!r}, array {key!r}"

    def need(key, option):
        if key not in content:
            raise ConfigError(f"data file {path!r} has no array {key!r} (data.{option}); it "
                              f"has {keys}")
        return get(key)

    if not x_key and not y_key and "x_train" in content:
        out = {}
        for s in _SPLITS:
            xs, ys = f"x_{s}", f"y_{s}"
            if (xs in content) != (ys in content):
                have, miss = (xs, ys) if xs in content else (ys, xs)
                raise ConfigError(f"data file {path!r} has {have} but no {miss}; it has "
                                  f"{keys}; save both")
            if xs in content:
                out[s] = (get(xs), get(ys))
        return out
    xk = x_key or next((k for k in X_KEYS if k in content), None)
    yk = y_key or next((k for k in Y_KEYS if k in content), None)
    for key, found, names, option in ((x_key, xk, X_KEYS, "x_key"), (y_key, yk, Y_KEYS, "y_key")):
        if found is None:
            kind = "input" if option == "x_key" else "label"
            raise ConfigError(
                f"data file {path!r} has no {kind} array: looked for {list(names)} (or "
                f"x_train, y_train, ...); it has {keys}; name yours with data.{option} (e.g. "
                f"--set data.{option}={keys[0] if keys else 'NAME'})")
    return {"": (need(xk, "x_key"), need(yk, "y_key"))}


# ---------------------------------------------------------------- csv
def _read_csv(path: str, label_column: str | None):
    """``({"": ((x, where), (y, where))}, None)`` of a csv file with a header row."""
    where = f"data file {path!r}"
    try:
        with open(path, newline="") as f:
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(f)) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _unreadable(path, exc, "save it as UTF-8 text with a header row") from None
    if len(rows) < 2:
        raise ConfigError(f"{where}: a csv needs a header row and at least one row of data, "
                          f"it has {len(rows)} row(s)")
    header = [c.strip() for c in rows[0][1]]
    label = label_column or ("label" if "label" in header else header[-1])
    if label not in header:
        raise ConfigError(f"{where} has no column {label!r} (data.label_column); its columns "
                          f"are {header}")
    if len(header) < 2:
        raise ConfigError(f"{where}: only one column ({header}); a csv needs feature columns "
                          "and a label column")
    li = header.index(label)
    for line, r in rows[1:]:
        if len(r) != len(header):
            raise ConfigError(f"{where}, line {line}: {len(r)} cells, but the header has "
                              f"{len(header)} columns")
    cells = np.array([r for _, r in rows[1:]], dtype=str)
    feats = np.delete(cells, li, axis=1)
    try:
        x = feats.astype(np.float64)
    except ValueError:
        x = None
    if x is None:  # find the first cell that is not a number
        for line, row in rows[1:]:
            for name, c in zip(header, row):
                if name == label:
                    continue
                try:
                    float(c)
                except ValueError:
                    raise ConfigError(
                        f"{where}, line {line}, column {name!r}: {c!r} is not a number; "
                        f"feature columns must be numeric (only the label column {label!r} "
                        "may hold class names; data.label_column names another)") from None
    ys = np.char.strip(cells[:, li])
    try:
        y = ys.astype(np.float64)
    except ValueError:
        y = ys  # class names
    return {"": ((x, where), (y, f"{where}, column {label!r}"))}
