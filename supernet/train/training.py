"""Small pieces shared by the search loop and final training: the default loss, top-1
counts, DARTS's cosine schedule, running means, seeding, and the checks that find NaN or
inf in a state (:func:`nonfinite_tensors`) or in the samples of a data set
(:func:`nonfinite_samples`).

Examples:
    >>> round(cosine_lr(0, 10, 0.025, 0.001), 6), round(cosine_lr(10, 10, 0.025, 0.001), 6)
    (0.025, 0.001)
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.nn.functional as F

from supernet.errors import SearchError

__all__ = ["default_loss", "top1_correct", "cosine_lr", "Meter", "seed_everything",
           "progress_bar", "sample_count", "IGNORE_INDEX", "nonfinite_tensors",
           "nonfinite_samples", "nonfinite_data", "first_names"]

#: A class target of this value is no sample: the loss, the accuracy and the sample counts
#: pass it over (cross-entropy's ``ignore_index``). Node classification marks with it the
#: nodes of a graph that belong to another split.
IGNORE_INDEX = -100


def default_loss(output, target) -> torch.Tensor:
    """Cross-entropy (on the first output when the module returns several); integer
    class labels of any width are taken as int64.

    Raises:
        SearchError: targets that cross-entropy cannot take (a class beyond the outputs,
            float class labels), in a batch of a data set that was read item by item (data
            sets of tensors are checked whole before training:
            :func:`~supernet.train.checks.check_data`).
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if (torch.is_tensor(target) and not target.is_floating_point() and not target.is_complex()
            and target.dtype != torch.int64):
        target = target.long()  # int32, uint8 or bool class labels of a data set of items
    try:
        return F.cross_entropy(output, target)
    except (IndexError, RuntimeError, ValueError) as exc:
        shape = tuple(output.shape) if torch.is_tensor(output) else type(output).__name__
        got = (f"{str(target.dtype).replace('torch.', '')} targets of shape "
               f"{tuple(target.shape)}" if torch.is_tensor(target) else type(target).__name__)
        raise SearchError(
            f"the loss (cross-entropy) cannot take a batch's targets: {got} for outputs of "
            f"shape {shape} ({str(exc).splitlines()[0]}); give int64 class indices 0..K-1 for "
            "K outputs, or pass loss_fn=... for other targets") from exc


def top1_correct(output, target) -> int | None:
    """Correct top-1 predictions, or ``None`` when the output is not class scores."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if (torch.is_tensor(output) and output.dim() == 2 and torch.is_tensor(target)
            and target.dim() == 1 and not target.is_floating_point()):
        return int((output.argmax(1) == target).sum())
    return None


def sample_count(target) -> int:
    """Samples in a batch's ``target``: its rows, less class targets of
    :data:`IGNORE_INDEX`."""
    if (torch.is_tensor(target) and target.dim() == 1 and not target.is_floating_point()):
        return int((target != IGNORE_INDEX).sum())
    return len(target)


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """DARTS's cosine schedule: ``lr_min + (lr - lr_min)(1 + cos(π e / E)) / 2``."""
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * epoch / epochs))


class Meter:
    """Sample-weighted mean loss and accuracy over an epoch."""

    def __init__(self):
        self.loss = self.n = self.correct = 0.0
        self.has_acc = True

    def add(self, loss, correct, n):
        self.loss += float(loss) * n
        self.n += n
        if correct is None:
            self.has_acc = False
        else:
            self.correct += correct

    def result(self):
        """``(mean loss, accuracy)``; ``None`` for what was not measured."""
        if not self.n:
            return None, None
        return self.loss / self.n, (self.correct / self.n if self.has_acc else None)


def seed_everything(seed: int) -> None:
    """Seed torch, python and numpy."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def progress_bar(enabled: bool, total: int, desc: str):
    """A tqdm bar of ``total`` steps, or ``None`` when progress is off."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _floating(tree, name: str):
    """``(name, tensor)`` of every floating-point (or complex) tensor in ``tree``: a tensor,
    or dicts, lists and tuples of them, nested; names join keys with dots, ``[i]`` for
    list items."""
    if torch.is_tensor(tree):
        if tree.is_floating_point() or tree.is_complex():
            yield name, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _floating(v, f"{name}.{k}" if name else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _floating(v, f"{name}[{i}]")


def nonfinite_tensors(tree) -> list[str]:
    """The floating-point tensors of ``tree`` (a tensor, or dicts, lists and tuples of them,
    nested) that hold NaN or inf, each named with its count of such values; ``[]`` when
    every value is finite. An all-finite tree costs one pass over its values and one host
    synchronization per device.

    Examples:
        >>> import torch
        >>> state = {"w": torch.ones(3), "opt": [{"m": torch.tensor([1.0, float("inf")])}]}
        >>> nonfinite_tensors(state)
        ['opt[0].m (1 of 2 values)']
        >>> nonfinite_tensors({"w": torch.ones(3), "step": torch.tensor(4)})
        []
    """
    named = list(_floating(tree, ""))
    # tensors of one device and dtype are checked together, in chunks of bounded size (a
    # model has thousands of small tensors: one check each would cost a kernel per tensor)
    groups: dict = {}  # (device, dtype) -> [[values, tensors], ...]
    for _, t in named:
        chunks = groups.setdefault((t.device, t.dtype), [[0, []]])
        if chunks[-1][0] + t.numel() > _CHUNK and chunks[-1][1]:
            chunks.append([0, []])
        chunks[-1][0] += t.numel()
        chunks[-1][1].append(t.reshape(-1))
    flags: dict = {}
    for (device, _), chunks in groups.items():
        flags.setdefault(device, []).extend(torch.isfinite(torch.cat(c)).all()
                                            for _, c in chunks)
    if all(bool(torch.stack(fs).all()) for fs in flags.values()):
        return []
    out = []
    for name, t in named:
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            out.append(f"{name} ({bad} of {t.numel()} values)")
    return out


_CHUNK = 1 << 24  # values per combined check: 64 MB of float32 at most, copied once


def first_names(names: list[str], n: int = 3) -> str:
    """The first ``n`` of ``names`` joined, and how many more there are.

    Examples:
        >>> first_names(["a", "b", "c", "d", "e"])
        'a, b, c and 2 more'
    """
    more = len(names) - n
    return ", ".join(names[:n]) + (f" and {more} more" if more > 0 else "")


def nonfinite_samples(tensor) -> tuple[int, int, int | None]:
    """``(values, samples, first sample)`` of the NaN or inf in ``tensor``, whose first
    dimension runs over samples: how many values are not finite, in how many samples, and
    the index of the first such sample (``(0, 0, None)`` when all are finite, or for a
    tensor of integers or booleans, which cannot hold NaN).

    Examples:
        >>> import torch
        >>> x = torch.zeros(5, 2); x[3, 0] = float("nan"); x[4] = float("inf")
        >>> nonfinite_samples(x)
        (3, 2, 3)
        >>> nonfinite_samples(torch.arange(4))
        (0, 0, None)
    """
    if not torch.is_tensor(tensor) or not (tensor.is_floating_point() or tensor.is_complex()):
        return 0, 0, None
    bad = ~torch.isfinite(tensor)
    values = int(bad.sum())
    if not values:
        return 0, 0, None
    rows = bad.reshape(len(bad), -1).any(1) if bad.dim() else bad.reshape(1)
    return values, int(rows.sum()), int(rows.nonzero()[0, 0])


def nonfinite_data(parts) -> str | None:
    """What is not finite in the tensors of a data split, ``parts`` ``[(role, tensor)]``
    (roles such as ``"input"``, ``"target"``) with one row per sample: e.g. ``"3
    non-finite input values (NaN or inf) in 2 samples (first: sample 17)"``, the parts
    joined by "and"; ``None`` when everything is finite.

    Examples:
        >>> import torch
        >>> x = torch.zeros(20, 3); x[17, :2] = float("nan"); x[18, 0] = float("inf")
        >>> nonfinite_data([("input", x), ("target", torch.zeros(20, dtype=torch.long))])
        '3 non-finite input values (NaN or inf) in 2 samples (first: sample 17)'
    """
    out = []
    for role, t in parts:
        values, samples, first = nonfinite_samples(t)
        if values:
            out.append(f"{values} non-finite {role} value{'s' if values > 1 else ''} (NaN or "
                       f"inf) in {samples} sample{'s' if samples > 1 else ''} (first: sample "
                       f"{first})")
    return " and ".join(out) or None
