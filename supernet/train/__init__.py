"""Training outside the search: loaders, the training loop's small pieces, retraining from
scratch and fine-tuning of a found architecture."""

from supernet.train.checks import check_data
from supernet.train.data import (
    as_dataset,
    check_batch,
    default_batch_fn,
    make_loader,
    module_device,
    module_dtype,
    resolve_device,
    split,
    to_device,
)
from supernet.train.retrain import TrainResult, evaluation_graph, fine_tune, retrain, train_module
from supernet.train.slimming import bn_scales, l1_scales, slimming_loss
from supernet.train.training import (
    IGNORE_INDEX,
    Meter,
    cosine_lr,
    default_loss,
    progress_bar,
    sample_count,
    seed_everything,
    top1_correct,
)

__all__ = [
    "as_dataset",
    "split",
    "make_loader",
    "default_batch_fn",
    "check_batch",
    "check_data",
    "resolve_device",
    "to_device",
    "module_device",
    "module_dtype",
    "default_loss",
    "top1_correct",
    "cosine_lr",
    "Meter",
    "seed_everything",
    "progress_bar",
    "sample_count",
    "IGNORE_INDEX",
    "retrain",
    "fine_tune",
    "train_module",
    "evaluation_graph",
    "TrainResult",
    "bn_scales",
    "l1_scales",
    "slimming_loss",
]
