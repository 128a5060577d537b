"""Data for a search: the train and validation splits, checked against the graph before
any training starts.

A data set is a ``torch.utils.data.Dataset`` whose items are ``(x, y)`` (or
``(x1, ..., xn, y)`` for a graph with several inputs), or a tuple of tensors ``(X, Y)``.
Loaders are built here, shuffled by a seeded generator that checkpoints save and restore,
so that a resumed search sees the same batches as an uninterrupted one. Tensors given as
data (a tuple of tensors, a ``TensorDataset``) with NaN or inf in them are refused here,
before any training; other data sets are read only batch by batch, where a non-finite loss
stops the run.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from supernet.distributed import ShardedBatches
from supernet.errors import ConfigError, SearchError
from supernet.shapes import infer_channels
from supernet.train.training import nonfinite_data

__all__ = ["as_dataset", "split", "make_loader", "default_batch_fn", "check_batch",
           "resolve_device", "to_device", "module_device"]


def as_dataset(data, what: str = "data") -> Dataset:
    """``data`` as a map-style Dataset (tuples of tensors become a TensorDataset).

    Raises:
        SearchError: ``data`` is no data set, its tensors differ in length, or they hold
            NaN or inf (inputs, or float targets), e.g. ``train data: 3 non-finite input
            values (NaN or inf) in 2 samples (first: sample 17)``.
    """
    if isinstance(data, TensorDataset):
        _check_finite(data.tensors, what)
        return data
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and data and all(torch.is_tensor(t) for t in data):
        sizes = {len(t) for t in data}
        if len(sizes) > 1:
            raise SearchError(
                f"{what}: tensors of different lengths {[len(t) for t in data]}; give inputs "
                "and targets one row per sample"
            )
        _check_finite(data, what)
        return TensorDataset(*data)
    if isinstance(data, DataLoader):
        raise SearchError(
            f"{what}: pass the Dataset (or a tuple of tensors), not a DataLoader: the search "
            "builds its own seeded loaders so that a resumed run sees the same batches"
        )
    raise SearchError(
        f"{what}: expected a torch Dataset or a tuple of tensors (inputs, targets), got "
        f"{type(data).__name__}"
    )


def _check_finite(tensors, what: str) -> None:
    """Refuse data tensors (inputs..., target) with NaN or inf, naming ``what``."""
    *inputs, target = tensors
    roles = ["input"] if len(inputs) == 1 else [f"input {i + 1}" for i in range(len(inputs))]
    found = nonfinite_data([*zip(roles, inputs), ("target", target)] if inputs
                           else [("input", target)])
    if found is not None:
        raise SearchError(f"{what}: {found}; drop or repair those samples (e.g. "
                          "torch.nan_to_num) first")


def split(train, val, portion: float, batch_size: int) -> tuple[Dataset, Dataset]:
    """The train and validation datasets; without ``val``, ``train`` is split at
    ``portion`` (the first part trains the weights, the rest the architecture)."""
    train = as_dataset(train, "train data")
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
    val = as_dataset(val, "val data")
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
