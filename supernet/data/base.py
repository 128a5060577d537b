"""Data sets that need no download, split for a bilevel search.

A search trains weights on one split and architecture parameters on another, and reports
accuracy on a held-out test split that the search never sees. A split with NaN or inf in
its inputs (or in float targets) is refused when the data set is built, naming the split.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.data import DataLoader, TensorDataset

from supernet.errors import ConfigError
from supernet.registry import Registry
from supernet.train.training import nonfinite_data

__all__ = ["DataSplits", "DATASETS", "register_dataset", "load_dataset", "list_datasets",
           "split_train_val", "flatten_features", "check_fraction"]


@dataclass
class DataSplits:
    """Tensors of a classification data set, split three ways.

    Attributes:
        train, val, test: ``(x, y)`` tensor pairs. ``train`` trains the weights, ``val`` the
            architecture parameters during a search (and selects models); ``test`` is only
            used for final reports.
        num_classes: number of classes.
        shape: per-sample input shape, e.g. ``(1, 40)`` or ``(1, 8, 8)``.
        name: data set name.
        info: source, sizes and preprocessing, for reports.

    Raises:
        ConfigError: a split has NaN or inf in its inputs or float targets (a search would
            stop on it, and a test split would only give a NaN accuracy at the end).

    Examples:
        >>> import torch
        >>> part = (torch.zeros(4, 1, 8), torch.zeros(4, dtype=torch.long))
        >>> bad = (torch.zeros(20, 1, 8), torch.zeros(20, dtype=torch.long))
        >>> bad[0][17, 0, :3] = float("nan")
        >>> DataSplits(part, part, bad, 2, (1, 8), "toy")
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: data set 'toy': the test split has 3 non-finite input values (NaN or inf) in 1 sample (first: sample 17); drop or repair those samples (e.g. torch.nan_to_num) where the data set is built
    """

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    shape: tuple[int, ...]
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        for split in ("train", "val", "test"):
            part = getattr(self, split)
            # (x, y) or a node set's (x, y, mask): the mask is boolean, never NaN
            found = nonfinite_data([("input", part[0]), ("target", part[1])])
            if found is not None:
                raise ConfigError(
                    f"data set {self.name!r}: the {split} split has {found}; drop or repair "
                    "those samples (e.g. torch.nan_to_num) where the data set is built")

    @property
    def in_channels(self) -> int:
        return self.shape[0]

    def loader(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
               drop_last: bool = False) -> DataLoader:
        """A DataLoader over ``split`` (``"train"``, ``"val"``, ``"test"``, or
        ``"train+val"`` for retraining on both)."""
        if split == "train+val":
            x = torch.cat([self.train[0], self.val[0]])
            y = torch.cat([self.train[1], self.val[1]])
        elif split in ("train", "val", "test"):
            x, y = getattr(self, split)
        else:
            raise ConfigError(f"unknown split {split!r}; expected train, val, test or train+val")
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                          generator=gen, drop_last=drop_last)

    def size(self, split: str) -> int:
        """Number of samples (or of masked nodes, for a graph set) in ``split``."""
        part = getattr(self, split)
        return int(part[2].sum()) if len(part) == 3 else len(part[1])

    def __repr__(self) -> str:
        sizes = {k: self.size(k) for k in ("train", "val", "test")}
        return f"DataSplits({self.name!r}, shape={self.shape}, classes={self.num_classes}, {sizes})"


def flatten_features(data: DataSplits) -> DataSplits:
    """``data`` with every sample flattened to one feature vector, for spaces that read
    features rather than channels (a neuron-level MLP).

    Examples:
        >>> import torch
        >>> part = (torch.zeros(4, 1, 40), torch.zeros(4, dtype=torch.long))
        >>> flatten_features(DataSplits(part, part, part, 10, (1, 40), "toy")).shape
        (40,)
    """
    if len(data.shape) == 1:
        return data

    def flat(part):
        return (part[0].reshape(len(part[0]), -1), *part[1:])

    size = 1
    for d in data.shape:
        size *= int(d)
    info = {**data.info, "flattened": f"{tuple(data.shape)} -> ({size},)"}
    return DataSplits(flat(data.train), flat(data.val), flat(data.test), data.num_classes,
                      (size,), data.name, info)


def check_fraction(value, key: str, name: str) -> float:
    """``value`` if it is a fraction strictly between 0 and 1, else a ConfigError naming
    ``data.<key>`` of data set ``name``.

    Examples:
        >>> check_fraction(0.2, "val_fraction", "toy")
        0.2
        >>> check_fraction(1, "test_fraction", "toy")
        Traceback (most recent call last):
        ...
        supernet.errors.ConfigError: data set 'toy': data.test_fraction must be in (0, 1), got 1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(f"data set {name!r}: data.{key} must be in (0, 1), got {value!r}")
    return float(value)


def split_train_val(x, y, val_fraction: float, seed: int, name: str,
                    key: str = "val_fraction"):
    """Split ``(x, y)`` into train and validation parts, stratified by nothing but a seed.

    ``key`` is the option that gave ``val_fraction``, for error messages."""
    check_fraction(val_fraction, key, name)
    n = len(y)
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n - n_val < 1:
        raise ConfigError(
            f"data set {name!r}: {n} sample(s) are too few to split off data.{key}="
            f"{val_fraction} (each part needs at least one); lower data.{key} or use more "
            "samples"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[n_val:], perm[:n_val]
    return (x[tr], y[tr]), (x[va], y[va])


#: Data set name -> ``builder(val_fraction=..., seed=..., **options) -> DataSplits``.
DATASETS: Registry[Callable[..., DataSplits]] = Registry(
    "data set", hint="register one with @supernet.data.register_dataset(name)"
)


def register_dataset(name: str, override: bool = False):
    """Decorator registering ``fn(val_fraction=..., seed=..., **kw) -> DataSplits``.

    Raises:
        DuplicateNameError: ``name`` is registered already and ``override`` is False.
    """
    return DATASETS.register(name, override=override)


def list_datasets(filter: str | None = None) -> list[str]:
    """Names of the registered data sets, the built-in ones included, sorted; ``filter`` is
    a shell-style glob such as ``"mnist*"``.

    Examples:
        >>> "mnist1d" in list_datasets()
        True
        >>> list_datasets("mnist*")
        ['mnist1d']
    """
    return DATASETS.list(filter)


def _check_option_types(name: str, params, kwargs) -> None:
    """An option whose default is a number must be given a number (``val_fraction: abc``
    fails here, naming the key, not inside the builder)."""
    for key, value in kwargs.items():
        default = params[key].default
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        want = int if isinstance(default, int) else (int, float)
        if isinstance(value, bool) or not isinstance(value, want):
            kind = "an int" if want is int else "a number"
            raise ConfigError(
                f"data set {name!r}: data.{key} must be {kind} (default {default!r}), "
                f"got {value!r}"
            )


def load_dataset(name: str, **kwargs) -> DataSplits:
    """Load data set ``name`` with the options of its builder.

    Raises:
        UnknownNameError: no data set ``name`` is registered.
        ConfigError: an option the builder does not take, or of the wrong type.
    """
    build = DATASETS.resolve(name)
    params = inspect.signature(build).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"data set {name!r} does not take option(s) {unknown}; it takes {sorted(params)}"
        )
    _check_option_types(name, params, kwargs)
    return build(**kwargs)
