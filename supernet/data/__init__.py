"""Data sets that need no download (generated, or shipped inside their packages)."""

from supernet.data import arrays, graphs, images, sequences  # noqa: F401  (their decorators register them)
from supernet.data.base import (
                                DATASETS,
                                DataSplits,
                                flatten_features,
                                list_datasets,
                                load_dataset,
                                register_dataset,
                                split_train_val,
)

__all__ = ["DataSplits", "DATASETS", "load_dataset", "list_datasets", "register_dataset",
           "split_train_val", "flatten_features"]
