"""Data for a search: the train and validation splits, checked against the graph before
any training starts.

A data set is a ``torch.utils.data.Dataset`` whose items are ``(x, y)`` (or
``(x1, ..., xn, y)`` for a graph with several inputs), or a tuple of tensors or NumPy arrays
``(X, Y)``. Arrays become tensors, floating-point inputs the module's dtype (float64 data
trains a float32 network) and integer targets int64. Loaders are built here, shuffled by a
seeded generator that checkpoints save and restore, so that a resumed search sees the same
batches as an uninterrupted one.

Before the first step, :func:`~supernet.train.checks.check_data` runs the network on two
samples of each data set and checks its class labels against the network's outputs.
Tensors given as data with NaN or inf in them are refused here; other data sets are read
only batch by batch, where a non-finite loss stops the run.

Examples:
    >>> import numpy as np
    >>> ds = as_dataset((np.zeros((4, 3)), np.array([0, 1, 1, 0])), dtype=torch.float32)
    >>> [t.dtype for t in ds.tensors]
    [torch.float32, torch.int64]
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from supernet.distributed import ShardedBatches
from supernet.errors import ConfigError, SearchError
from supernet.shapes import infer_channels
from supernet.train.training import nonfinite_data

__all__ = ["as_dataset", "split", "make_loader", "default_batch_fn", "check_batch",
           "resolve_device", "to_device", "module_device", "module_dtype"]


def as_dataset(data, what: str = "data", dtype: torch.dtype | None = None) -> Dataset:
    """``data`` as a map-style Dataset (tuples of tensors or NumPy arrays become a
    TensorDataset); with ``dtype``, floating-point inputs of tensors are converted to it, and
    integer targets become int64.

    Raises:
        SearchError: ``data`` is no data set, its arrays are not numbers, its tensors differ
            in length, or they hold NaN or inf (inputs, or float targets), e.g. ``train
            data: 3 non-finite input values (NaN or inf) in 2 samples (first: sample 17)``.
    """
    if isinstance(data, TensorDataset):
        tensors = _convert(data.tensors, dtype)
        _check_finite(tensors, what)
        changed = any(a is not b for a, b in zip(tensors, data.tensors))
        return TensorDataset(*tensors) if changed else data
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and data and all(
            torch.is_tensor(t) or isinstance(t, np.ndarray) for t in data):
        data = [_from_numpy(t, what, i, len(data)) for i, t in enumerate(data)]
        sizes = {len(t) if t.dim() else None for t in data}
        if len(sizes) > 1 or None in sizes:
            raise SearchError(
                f"{what}: tensors of different lengths {[tuple(t.shape) for t in data]}; give "
                "inputs and targets one row per sample"
            )
        tensors = _convert(data, dtype)
        _check_finite(tensors, what)
        return TensorDataset(*tensors)
    if isinstance(data, DataLoader):
        raise SearchError(
            f"{what}: pass the Dataset (or a tuple of tensors), not a DataLoader: the search "
            "builds its own seeded loaders so that a resumed run sees the same batches"
        )
    got = type(data).__name__
    if isinstance(data, (tuple, list)):
        got += " of " + ", ".join(type(t).__name__ for t in data) if data else " (empty)"
    raise SearchError(
        f"{what}: expected a torch Dataset or a tuple of tensors or NumPy arrays (inputs, "
        f"targets), got {got}"
    )


def _from_numpy(t, what: str, i: int, n: int) -> torch.Tensor:
    if torch.is_tensor(t):
        return t
    role = "targets" if i == n - 1 else "inputs"
    if t.dtype.kind not in "biuf":
        raise SearchError(f"{what}: the {role} (item {i}) are a NumPy array of dtype {t.dtype}, "
                          "not numbers; give numeric arrays (class names: map them to 0, 1, 2, "
                          "...)")
    return torch.from_numpy(np.ascontiguousarray(t))


def _convert(tensors, dtype) -> list:
    """Inputs (all but the last) of floating point as ``dtype``, integer targets as int64."""
    *inputs, target = tensors
    if dtype is not None:
        inputs = [x.to(dtype) if x.is_floating_point() and x.dtype != dtype else x
                  for x in inputs]
    if not target.is_floating_point() and not target.is_complex() and target.dtype != torch.int64:
        target = target.to(torch.int64)
    return [*inputs, target]


def _check_finite(tensors, what: str) -> None:
    """Refuse data tensors (inputs..., target) with NaN or inf, naming ``what``."""
    *inputs, target = tensors
    roles = ["input"] if len(inputs) == 1 else [f"input {i + 1}" for i in range(len(inputs))]
    found = nonfinite_data([*zip(roles, inputs), ("target", target)] if inputs
                           else [("input", target)])
    if found is not None:
        raise SearchError(f"{what}: {found}; drop or repair those samples (e.g. "
                          "torch.nan_to_num) first")


def split(train, val, portion: float, batch_size: int,
          dtype: torch.dtype | None = None) -> tuple[Dataset, Dataset]:
    """The train and validation datasets (:func:`as_dataset`, inputs as ``dtype``); without
    ``val``, ``train`` is split at ``portion`` (the first part trains the weights, the rest
    the architecture)."""
    train = as_dataset(train, "train data", dtype)
    if val is None:
        n = len(train)
        cut = int(n * portion)
        if cut < 2 or n - cut < 2:
            raise SearchError(
                f"train data: {n} sample(s) cannot be split at train_portion={portion} into "
                f"two splits of at least 2 samples ({cut} and {n - cut}); give more data, "
                "change train_portion, or pass val_data"
            )
        return Subset(train, range(cut)), Subset(train, range(cut, n))
    val = as_dataset(val, "val data", dtype)
    for name, ds in (("train data", train), ("val data", val)):
        if len(ds) < 2 and not getattr(ds, "whole_batches", False):
            raise SearchError(
                f"{name}: {len(ds)} sample(s); a search needs at least 2 per split "
                "(batch norm needs more than one sample per batch)"
            )
    return train, val


def make_loader(ds: Dataset, batch_size: int, generator: torch.Generator | None,
                num_workers: int = 0, replicas=None) -> DataLoader:
    """A loader shuffled by ``generator`` (in order when it is ``None``).

    A last batch of one sample is dropped (batch norm cannot train on it). With
    ``replicas`` (:class:`~supernet.distributed.Replicas`) of a data-parallel run,
    each process loads its part of every batch
    (:class:`~supernet.distributed.ShardedBatches`).
    """
    if replicas is not None and replicas.active:
        sampler = ShardedBatches(len(ds), batch_size, replicas.rank, replicas.world, generator)
        # the loader draws its workers' seed from ``generator`` too, as a shuffled one does
        return DataLoader(ds, batch_sampler=sampler, num_workers=num_workers,
                          generator=generator)
    if generator is None:
        return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    drop_last = len(ds) % batch_size == 1 and len(ds) > 1
    return DataLoader(ds, batch_size=batch_size, shuffle=True, generator=generator,
                      num_workers=num_workers, drop_last=drop_last)


def default_batch_fn(batch):
    """``(x, y)`` or ``(x1, ..., xn, y)`` -> ``(inputs, context, target)``."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise SearchError(
            "a batch must be (inputs..., target); pass batch_fn=... to unpack other layouts "
            "(it returns (inputs tuple, context dict, target))"
        )
    return tuple(batch[:-1]), {}, batch[-1]


def check_batch(graph, inputs, what: str = "train data") -> None:
    """Fail before training if ``inputs`` do not fit the graph's inputs (count, channels,
    declared shape), naming the input node."""
    names = graph.inputs
    if len(inputs) != len(names):
        raise SearchError(
            f"{what}: batches carry {len(inputs)} input tensor(s) but graph {graph.name!r} "
            f"takes {len(names)} {names}"
        )
    try:
        channels = infer_channels(graph).nodes
    except Exception:  # shape problems are lint's to report; compile already passed
        channels = {}
    for name, x in zip(names, inputs):
        d = graph.nx.nodes[name]
        if not torch.is_tensor(x) or x.dim() < 2:
            continue
        want = channels.get(name)
        if want is not None and x.shape[1] != want:
            raise SearchError(
                f"{what}: input {name!r} of graph {graph.name!r} expects {want} channels "
                f"(dim 1), but batches have shape {tuple(x.shape)}; fix the data or the "
                f"graph's input channels"
            )
        shape = d.get("shape")
        if shape is not None and list(x.shape[1:]) != list(shape):
            raise SearchError(
                f"{what}: input {name!r} declares per-sample shape {list(shape)}, but batches "
                f"have {list(x.shape[1:])}"
            )


def resolve_device(spec, key: str = "device") -> torch.device:
    """The device ``spec`` names: ``"auto"`` (a GPU when there is one, else the CPU),
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``key`` names the setting in errors."""
    if isinstance(spec, torch.device):
        device = spec
    elif spec == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(spec)
        except (RuntimeError, TypeError):
            raise ConfigError(f"{key}={spec!r} is not a device; use 'auto', 'cpu', 'cuda' or "
                              "'cuda:N'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}={spec!r}: CUDA is not available here; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}={spec!r}: this machine has {torch.cuda.device_count()} "
                              "GPU(s)")
    return device


def module_dtype(module) -> torch.dtype:
    """The floating-point dtype of ``module``'s parameters (the default dtype without any)."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()),
                torch.get_default_dtype())


def module_device(module) -> torch.device:
    """The device of ``module``'s tensors (the CPU for a module without any)."""
    return next((t.device for t in (*module.parameters(), *module.buffers())),
                torch.device("cpu"))


def to_device(obj, device: torch.device):
    """``obj`` with every tensor in it moved to ``device``: tensors, tuples, lists, dicts and
    objects with a ``to`` method (PyG ``Data`` batches)."""
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, tuple):
        items = [to_device(o, device) for o in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [to_device(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if callable(getattr(obj, "to", None)):
        return obj.to(device)
    return obj
