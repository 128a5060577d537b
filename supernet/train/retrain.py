"""Final training of a searched architecture: from scratch, or fine-tuning inherited
weights.

* :func:`retrain` compiles the discretized graph afresh (new weights, seeded) -- or the
  space's evaluation network built from the text form, through ``build`` -- and trains it.
* :func:`fine_tune` keeps training the module the search left (inherited weights).

Both use SGD with a cosine learning rate (DARTS evaluation settings by default: lr 0.025,
momentum 0.9, weight decay 3e-4, grad clip 5) and return a :class:`TrainResult`. A trained
module is finite: a non-finite loss, or NaN or inf in the module's weights or buffers at the
end of an epoch, stops the training with a :class:`~supernet.errors.SearchError` naming
the epoch, and no module is returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from supernet.compiler import compile as compile_graph
from supernet.compiler.standalone import gates_left
from supernet.distributed import Replicas
from supernet.errors import SearchError
from supernet.spaces import decode, encode
from supernet.train.checks import check_data
from supernet.train.data import (
    as_dataset,
    default_batch_fn,
    make_loader,
    module_device,
    module_dtype,
    resolve_device,
    to_device,
)
from supernet.train.training import (
    Meter,
    cosine_lr,
    default_loss,
    first_names,
    nonfinite_tensors,
    sample_count,
    top1_correct,
)

__all__ = ["retrain", "fine_tune", "train_module", "evaluation_graph", "TrainResult"]


@dataclass
class TrainResult:
    """A trained module and its per-epoch history (``loss``, ``acc``, ``val_acc``)."""

    module: torch.nn.Module
    history: list = field(default_factory=list)


def evaluation_graph(graph, **kwargs):
    """The space's evaluation network for ``graph``, through its text form (e.g. a DARTS
    genotype decoded into a deeper, wider network with ``kwargs`` such as ``C``, ``layers``).
    """
    return decode(graph.meta["space"], encode(graph), **kwargs)


def train_module(module, train_data, val_data=None, *, epochs: int = 15, batch_size: int = 128,
                 lr: float = 0.05, lr_min: float = 0.0, momentum: float = 0.9,
                 weight_decay: float = 3e-4, grad_clip: float | None = 5.0,
                 drop_path_prob: float = 0.0, steps_per_epoch: int | None = None,
                 loss_fn: Callable | None = None, batch_fn: Callable | None = None,
                 seed: int = 0, device: str = "auto",
                 on_epoch_end: Callable | None = None) -> TrainResult:
    """Train every weight of ``module`` (a module with no gate left) on ``device``
    (``"auto"``: a GPU when there is one; see :func:`~supernet.train.data.resolve_device`);
    ``on_epoch_end(record)`` sees each epoch's history record. The defaults are those of
    ``supernet train`` (:class:`~supernet.config.TrainBudget`): 15 epochs of SGD with
    momentum, batch 128, learning rate 0.05 on a cosine schedule.

    Raises:
        SearchError: a setting out of range, gates left, NaN or inf in ``module`` before
            training, a non-finite loss, or NaN or inf in the module at the end of an epoch
            (checked once per epoch, the message names it and the first tensors).
    """
    if getattr(module, "arch", None) is not None and len(module.arch):
        raise SearchError(
            f"{module.graph.name}: the module still has {len(module.arch)} gate(s); discretize "
            "the graph before final training"
        )
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr),
                       ("momentum", momentum), ("weight_decay", weight_decay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 <= value < math.inf) or (key == "batch_size" and value < 1):
            low = 1 if key == "batch_size" else 0
            raise SearchError(f"training setting {key}={value!r}: must be a number >= {low}")
    _check_module(module, "before training")
    loss_fn = loss_fn or default_loss
    replicas = Replicas.from_env()
    place = replicas.device(resolve_device(device))
    unpack = batch_fn or default_batch_fn
    batch_fn = lambda batch: to_device(unpack(batch), place)  # noqa: E731
    module.to(place)
    replicas.broadcast(module)
    dtype = module_dtype(module)
    train = as_dataset(train_data, "train data", dtype)
    val = as_dataset(val_data, "val data", dtype) if val_data is not None else None
    gen = torch.Generator().manual_seed(seed)
    if replicas.active and getattr(train, "whole_batches", False):
        raise SearchError(f"train data: a whole-graph data set cannot be split across "
                          f"{replicas.world} processes; train it on one")
    graph = getattr(module, "graph", None)
    for name, ds in (("train data", train), ("val data", val)):
        if ds is not None:
            check_data(graph, module, ds, batch_fn, name, loss_fn)
    loader = make_loader(train, batch_size, gen, replicas=replicas)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    history = []
    for e in range(epochs):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(e, epochs, lr, lr_min)
        if hasattr(module, "drop_path_prob"):
            module.drop_path_prob = drop_path_prob * e / epochs
        module.train()
        meter = Meter()
        for step, batch in enumerate(loader):
            if steps_per_epoch and step >= steps_per_epoch:
                break
            inputs, ctx, y = batch_fn(batch)
            with replicas.synced_norms():  # batch norm: the whole batch's statistics
                out = module(*inputs, **ctx)
                loss = loss_fn(out, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
            total = replicas.average_grads(params, loss, sample_count(y))[0]
            if not torch.isfinite(total):
                raise SearchError(f"training loss is {float(total)} at epoch {e + 1}, step {step}; "
                                  "lower lr")
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            meter.add(loss.detach(), top1_correct(out, y), sample_count(y))
        replicas.average_buffers(module)
        _check_module(module, f"at the end of epoch {e + 1}")
        replicas.meter(meter)
        mean_loss, acc = meter.result()
        rec = {"epoch": e + 1, "loss": mean_loss, "acc": acc}
        if val is not None:
            rec["val_acc"] = accuracy(module, val, batch_size, batch_fn)
        history.append(rec)
        if on_epoch_end is not None:
            on_epoch_end(rec)
    return TrainResult(module, history)


def _check_module(module, when: str) -> None:
    """A SearchError when a weight or buffer of ``module`` is NaN or inf ``when``."""
    bad = nonfinite_tensors(module.state_dict())
    if bad:
        raise SearchError(
            f"training stopped: the module holds NaN or inf {when}: {first_names(bad)}; "
            "no trained module is returned. Lower lr, set grad_clip, or check the data and loss "
            "for NaN or inf")


def accuracy(module, data, batch_size: int = 256, batch_fn=None) -> float:
    """Top-1 accuracy of ``module`` on ``data`` in eval mode (on the module's device)."""
    unpack = batch_fn or default_batch_fn
    place = module_device(module)
    batch_fn = lambda batch: to_device(unpack(batch), place)  # noqa: E731
    ds = as_dataset(data, "val data", module_dtype(module))
    was = module.training
    module.eval()
    correct = n = 0
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(ds, batch_size=batch_size):
            inputs, ctx, y = batch_fn(batch)
            out = module(*inputs, **ctx)
            correct += top1_correct(out, y) or 0
            n += sample_count(y)
    module.train(was)
    if n == 0:
        raise SearchError("accuracy: the data has no sample to measure (every target is "
                          "ignored, or the data set is empty)")
    return correct / n


def retrain(graph, train_data, val_data=None, *, build: Callable | None = None,
            seed: int = 0, **kwargs) -> TrainResult:
    """Train the searched architecture from scratch.

    Args:
        graph: the discretized graph.
        build: ``build(graph) -> graph`` giving the network to train (e.g.
            ``lambda g: evaluation_graph(g, C=36, layers=20)``); default: ``graph`` itself.
        seed: seeds the fresh weights and the data order.
        kwargs: :func:`train_module` settings (epochs, lr, batch_size, drop_path_prob, ...).
    """
    left = gates_left(graph)
    if left:
        raise SearchError(f"{graph.name}: gates {left[:4]} are left; discretize before retraining")
    net_graph = build(graph) if build is not None else graph.copy()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = compile_graph(net_graph)
    return train_module(module, train_data, val_data, seed=seed, **kwargs)


def fine_tune(module, train_data, val_data=None, **kwargs) -> TrainResult:
    """Keep training ``module`` (the weights inherited from the search)."""
    return train_module(module, train_data, val_data, **kwargs)
