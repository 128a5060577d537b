"""MNIST-1D (Greydanus, 2020): 1-D signals of length 40 in 10 classes, generated offline
by the ``mnist1d`` package (4000 train and 1000 test signals with the default arguments).

Reference accuracies from its paper (test): logistic regression 32%, MLP 68%, CNN 94%,
GRU 91%, human 96%.
"""

from __future__ import annotations

import torch

from supernet.data.base import DataSplits, register_dataset, split_train_val
from supernet.errors import ConfigError

__all__ = ["mnist1d"]


@register_dataset("mnist1d")
def mnist1d(val_fraction: float = 0.2, seed: int = 0, num_samples: int = 5000,
            data_seed: int = 42) -> DataSplits:
    """MNIST-1D, shape ``(1, 40)``; the package's own train/test split, and ``val_fraction``
    of its training part held out for validation.

    Args:
        num_samples: signals generated in all (the package default is 5000: 4000 + 1000).
        data_seed: the generator's seed (the package default is 42).
    """
    if num_samples < 10:  # the generator draws the same number of signals per class
        raise ConfigError(
            f"data set 'mnist1d': data.num_samples must be at least 10 (one signal per class), "
            f"got {num_samples}"
        )
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, data_seed
    data = make_dataset(args)
    x = torch.as_tensor(data["x"], dtype=torch.float32).unsqueeze(1)
    y = torch.as_tensor(data["y"], dtype=torch.long)
    x_test = torch.as_tensor(data["x_test"], dtype=torch.float32).unsqueeze(1)
    y_test = torch.as_tensor(data["y_test"], dtype=torch.long)
    train, val = split_train_val(x, y, val_fraction, seed, "mnist1d")
    info = {"source": "mnist1d.make_dataset (offline)", "train_total": len(y),
            "test": len(y_test), "length": x.shape[-1]}
    return DataSplits(train, val, (x_test, y_test), 10, (1, x.shape[-1]), "mnist1d", info)
