"""Small image sets that ship with their packages: scikit-learn's 8x8 digits."""

from __future__ import annotations

import torch

from supernet.data.base import DataSplits, register_dataset, split_train_val

__all__ = ["digits"]


@register_dataset("digits")
def digits(val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> DataSplits:
    """scikit-learn's ``load_digits``: 1797 grey 8x8 images of 10 digits, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(d.target, dtype=torch.long)
    rest, test = split_train_val(x, y, test_fraction, seed + 1, "digits", "test_fraction")
    train, val = split_train_val(*rest, val_fraction, seed, "digits")
    info = {"source": "sklearn.datasets.load_digits", "total": len(y)}
    return DataSplits(train, val, test, 10, (1, 8, 8), "digits", info)
