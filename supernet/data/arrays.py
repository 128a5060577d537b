"""A user's own arrays as a data set, from a file, with no code: ``data: {name: arrays,
path: my.npz}``.

The file is chosen by its suffix:

* ``.npz`` (``numpy.savez``): inputs ``x`` and labels ``y`` (or ``X``, ``inputs``, ``data``
  and ``labels``, ``targets``; other names with ``x_key`` and ``y_key``), split by
  ``val_fraction`` and ``test_fraction``; or splits of their own, ``x_train``, ``y_train``
  and, when present, ``x_val``, ``y_val``, ``x_test``, ``y_test`` (a missing one is split
  off the training part).
* ``.npy``: the inputs, with the labels in another ``.npy`` given as ``labels``.
* ``.pt`` / ``.pth`` (``torch.save``): a dict of tensors with the keys of a ``.npz``, or a
  tuple ``(x, y)``. ``torch.load`` unpickles, and unpickling can run code, so the file is
  read with ``weights_only=True`` only: plain tensors, numbers, strings, lists, tuples and
  dicts load; a file that needs anything else is refused, never unpickled.
* ``.csv``: a header row, numeric feature columns and a label column (``label_column``:
  by default the column ``label``, else the last one). Labels that are not numbers are
  class names, numbered in sorted order; ``DataSplits.info["classes"]`` gives the mapping.

NumPy files are read with ``allow_pickle=False``: an array of Python objects is refused.
Inputs become float32 and labels int64 class indices from 0. Samples of flat features
``(n, F)`` become ``(n, 1, F)``, one channel, as sequence spaces (``darts1d``) read them; a
space of features (``neuron_mlp``) reads them flat; ``shape`` reshapes each sample's values
otherwise (e.g. ``[1, 28, 28]`` for images stored flat); ``num_classes`` is the largest label plus one unless
given. A relative ``path`` is read from the current directory. Every mistake in the file
(a missing key or column, labels that are not class indices, lengths that differ, NaN or
inf, too few samples for the splits) is a :class:`~supernet.errors.ConfigError` naming the
file, the array or column, and the fix.

Examples:
    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> rng = np.random.default_rng(0)
    >>> np.savez(path, x=rng.normal(size=(50, 8)), y=np.arange(50) % 3)
    >>> d = arrays(path)
    >>> d.shape, d.num_classes, d.train[0].dtype, [d.size(s) for s in ("train", "val", "test")]
    ((1, 8), 3, torch.float32, [32, 8, 10])
    >>> np.savez(path, x=rng.normal(size=(50, 8)), y=np.arange(50) % 3 + 0.5)
    >>> arrays(path)
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: data file '...toy.npz', array 'y': labels must be integer class indices, but sample 0 has 0.5; give each sample its class number (0, 1, 2, ...)
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from supernet.data.array_files import read_arrays
from supernet.data.base import DataSplits, check_fraction, register_dataset, split_train_val
from supernet.errors import ConfigError
from supernet.train.training import nonfinite_data

__all__ = ["SUFFIXES", "arrays"]

SUFFIXES = (".npz", ".npy", ".pt", ".pth", ".csv")


@register_dataset("arrays")
def arrays(path: str = "", labels: str = "", x_key: str = "", y_key: str = "",
           label_column: str = "", val_fraction: float = 0.2, test_fraction: float = 0.2,
           seed: int = 0, num_classes: int | None = None, shape=None) -> DataSplits:
    """Your own inputs and class labels from a .npz, .npy, .pt or .csv file (data.path).

    The formats, the conversions and what is refused: see :mod:`supernet.data.arrays`.

    Args:
        path: a ``.npz``, ``.npy``, ``.pt``/``.pth`` or ``.csv`` file; relative to the
            current directory.
        labels: the labels' ``.npy`` file, for a ``.npy`` ``path``.
        x_key, y_key: the names of the inputs and labels in a ``.npz`` or ``.pt`` dict.
        label_column: the label column of a ``.csv`` (default ``label``, else the last).
        val_fraction, test_fraction, seed: the splits made (test first, from the file's
            samples or its ``x_train``; then validation), as ``digits`` makes them.
        num_classes: the number of classes (default: the largest label plus one).
        shape: the per-sample shape to reshape each sample's values to, e.g. ``[1, 28, 28]``.

    Raises:
        ConfigError: the file or an option is wrong; the message names it and the fix.
    """
    _check_options(path, labels, x_key, y_key, label_column)
    parts, classes = _convert(read_arrays(path, labels, x_key, y_key, label_column), path)
    n_classes = _num_classes(parts, num_classes, path)
    x_shape = _sample_shape(parts, shape, path)
    parts = {k: (x.reshape(len(x), *x_shape), y, xw, yw) for k, (x, y, xw, yw) in parts.items()}
    splits = _make_splits(parts, val_fraction, test_fraction, seed, path)
    info = {"source": "arrays", "path": path,
            "total": sum(len(p[1]) for p in parts.values())}
    if labels:
        info["labels"] = labels
    if classes is not None:
        info["classes"] = {name: i for i, name in enumerate(classes)}
    return DataSplits(*splits, n_classes, x_shape, "arrays", info)


# ---------------------------------------------------------------- options
def _check_options(path, labels, x_key, y_key, label_column) -> None:
    for key, value in (("path", path), ("labels", labels), ("x_key", x_key),
                       ("y_key", y_key), ("label_column", label_column)):
        if not isinstance(value, str):
            raise ConfigError(f"data set 'arrays': data.{key} must be a string, got {value!r}")
    if not path:
        raise ConfigError("data set 'arrays' needs data.path, the file of your arrays (e.g. "
                          "--set data.path=my.npz; .npz, .npy, .pt, .pth or .csv)")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ConfigError(f"data.path {path!r}: unknown file type {suffix or '(no suffix)'!r}; "
                          f"give a {', '.join(SUFFIXES)} file")
    misplaced = [("labels", labels, ".npy"), ("x_key", x_key, ".npz, .pt or .pth"),
                 ("y_key", y_key, ".npz, .pt or .pth"), ("label_column", label_column, ".csv")]
    for key, value, kinds in misplaced:
        if value and suffix not in kinds.replace(" or", ",").split(", "):
            raise ConfigError(f"data.{key} is for a {kinds} data.path, not a {suffix} file "
                              f"({path!r}); remove it")
    if suffix == ".npy" and not labels:
        raise ConfigError(f"data.path {path!r} is a .npy file of one array: give the labels "
                          "in another with data.labels=labels.npy (or save both in one .npz: "
                          "numpy.savez('my.npz', x=x, y=y))")


# ---------------------------------------------------------------- values
def _convert(parts: dict, path: str):
    """``({split: (x, y, where x, where y)}, class names or None)``: inputs as float32
    tensors, labels as int64 class indices."""
    text = {k: _is_text(y) for k, (_, (y, _)) in parts.items()}
    classes = None
    if any(text.values()):
        if not all(text.values()):
            raise ConfigError(f"data file {path!r}: some splits have class names as labels and "
                              "others numbers; give every split the same kind")
        classes = sorted({str(v) for (_, (y, _)) in parts.values() for v in np.ravel(y)})
    out = {}
    for k, ((x, xw), (y, yw)) in parts.items():
        x, y = _inputs(x, xw), _labels(y, yw, classes)
        if len(x) != len(y):
            same = yw.replace(f"data file {path!r}, ", "")  # the same file: its array
            raise ConfigError(f"{xw}: {len(x)} samples, but {same} has {len(y)} labels; give "
                              "one label per sample")
        if len(x) == 0:
            raise ConfigError(f"{xw}: no samples; give at least 2 per split")
        out[k] = (x, y, xw, yw)
    return out, classes


def _is_text(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "US"


def _tensor(a, where: str, what: str) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise ConfigError(f"{where}: {what} must be numbers, got an array of dtype "
                              f"{a.dtype}; save them as numbers (e.g. float32)")
        return torch.from_numpy(np.ascontiguousarray(a))
    if torch.is_tensor(a):
        if a.is_complex():
            raise ConfigError(f"{where}: {what} must be real numbers, got {a.dtype}")
        return a
    raise ConfigError(f"{where}: {what} must be an array or a tensor, got "
                      f"{type(a).__name__}")


def _inputs(x, where: str) -> torch.Tensor:
    x = _tensor(x, where, "inputs")
    if x.dim() == 0:
        raise ConfigError(f"{where}: inputs are one number; give one row per sample")
    note = " (float64 values beyond float32's range, 3.4e38, become inf)"
    for t, beyond in ((x, ""), (x.to(torch.float32), note)):
        found = nonfinite_data([("input", t)])
        if found is not None:
            raise ConfigError(f"{where}: {found}{beyond}; drop or repair those samples in the "
                              "file (e.g. numpy.nan_to_num)")
    x = x.to(torch.float32)
    return x.reshape(-1, 1) if x.dim() == 1 else x  # one feature per sample


def _labels(y, where: str, classes) -> torch.Tensor:
    if classes is not None:
        index = {name: i for i, name in enumerate(classes)}
        y = torch.tensor([index[str(v)] for v in np.ravel(y)], dtype=torch.long).reshape(
            np.shape(y))
    y = _tensor(y, where, "labels")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.dim() != 1:
        raise ConfigError(f"{where}: labels must be one class index per sample (shape (n,)), "
                          f"got shape {tuple(y.shape)}; for one-hot labels save y.argmax(1)")
    if y.is_floating_point():
        found = nonfinite_data([("label", y)])
        if found is not None:
            raise ConfigError(f"{where}: {found}; every sample needs a class")
        frac = (y != y.round()).nonzero()
        if len(frac):
            i = int(frac[0, 0])
            raise ConfigError(f"{where}: labels must be integer class indices, but sample {i} "
                              f"has {float(y[i]):g}; give each sample its class number "
                              "(0, 1, 2, ...)")
    y = y.to(torch.int64)
    if len(y) and int(y.min()) < 0:
        i = int((y < 0).nonzero()[0, 0])
        raise ConfigError(f"{where}: labels must be class indices from 0, but sample {i} has "
                          f"{int(y[i])}; number the classes 0, 1, 2, ...")
    return y


def _num_classes(parts: dict, num_classes, path: str) -> int:
    top, at = max(((int(y.max()), (yw, int(y.argmax()))) for _, y, _, yw in parts.values()),
                  key=lambda t: t[0])
    if num_classes is None:
        if top < 1:
            raise ConfigError(f"data file {path!r}: every label is 0, one class; a classifier "
                              "needs at least 2 (set data.num_classes if the file lacks some "
                              "classes)")
        return top + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"data set 'arrays': data.num_classes must be an int of at least 2, "
                          f"got {num_classes!r}")
    if top >= num_classes:
        raise ConfigError(f"{at[0]}: labels go up to {top} (sample {at[1]}) but data.num_classes "
                          f"is {num_classes} (classes 0..{num_classes - 1}); set "
                          f"data.num_classes to {top + 1} or more, or remove it")
    return num_classes


def _sample_shape(parts: dict, shape, path: str) -> tuple[int, ...]:
    shapes = {tuple(x.shape[1:]) for x, _, _, _ in parts.values()}
    if len(shapes) > 1:
        raise ConfigError(f"data file {path!r}: the splits' samples differ in shape "
                          f"{sorted(shapes)}; give every split the same per-sample shape")
    have = shapes.pop()
    if shape is None:  # flat features: one channel, as a sequence space reads it
        return (1, *have) if len(have) == 1 else have
    if (not isinstance(shape, (list, tuple)) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise ConfigError(f"data set 'arrays': data.shape must be a list of positive ints "
                          f"(e.g. [1, 28, 28]), got {shape!r}")
    if math.prod(shape) != math.prod(have):
        raise ConfigError(f"data.shape {list(shape)} holds {math.prod(shape)} values per sample, "
                          f"but the samples of {path!r} have {math.prod(have)} (shape "
                          f"{list(have)}); give a shape of {math.prod(have)} values")
    return tuple(shape)


def _split(part, fraction: float, seed: int, key: str, path: str, total: str):
    """``split_train_val`` of ``part``, each side of at least 2 samples."""
    check_fraction(fraction, key, "arrays")
    n = len(part[1])
    k = round(n * fraction)
    if k < 2 or n - k < 2:
        raise ConfigError(
            f"data file {path!r}: {n} samples of {total} cannot give data.{key}={fraction} "
            f"({k} and {n - k}); each part needs at least 2 (a batch needs 2 samples for batch "
            f"norm); give more samples or change data.{key}")
    return split_train_val(*part, fraction, seed, "arrays", key)


def _make_splits(parts: dict, val_fraction, test_fraction, seed, path: str):
    if "" in parts:
        rest = parts[""][:2]
        rest, test = _split(rest, test_fraction, seed + 1, "test_fraction", path, "the file")
        train, val = _split(rest, val_fraction, seed, "val_fraction", path, "the rest")
        return train, val, test
    for _, y, xw, _ in parts.values():
        if len(y) < 2:
            raise ConfigError(f"{xw}: {len(y)} sample; a split needs at least 2")
    train = parts["train"][:2]
    test = parts["test"][:2] if "test" in parts else None
    if test is None:
        train, test = _split(train, test_fraction, seed + 1, "test_fraction", path, "x_train")
    val = parts["val"][:2] if "val" in parts else None
    if val is None:
        train, val = _split(train, val_fraction, seed, "val_fraction", path, "x_train")
    return train, val, test
