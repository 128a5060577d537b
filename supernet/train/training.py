"""Small pieces shared by the search loop and final training: the default loss, top-1
counts, DARTS's cosine schedule, running means, seeding.

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

__all__ = ["default_loss", "top1_correct", "cosine_lr", "Meter", "seed_everything",
           "progress_bar", "sample_count", "IGNORE_INDEX"]

#: A class target of this value is no sample: the loss, the accuracy and the sample counts
#: pass it over (cross-entropy's ``ignore_index``). Node classification marks with it the
#: nodes of a graph that belong to another split.
IGNORE_INDEX = -100


def default_loss(output, target) -> torch.Tensor:
    """Cross-entropy (on the first output when the module returns several)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    return F.cross_entropy(output, target)


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
