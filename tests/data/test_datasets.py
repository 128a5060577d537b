"""Every registered data set, over the registry's own listing: it loads with its defaults into
three disjoint, well-typed splits. And the registry itself: duplicates refused unless
overridden, a glob filter, one message for an unknown name."""

import numpy as np
import pytest
import torch

from supernet.data import DATASETS, DataSplits, list_datasets, load_dataset, register_dataset
from supernet.errors import DuplicateNameError, UnknownNameError


def file_options(name, folder) -> dict:
    """The options of a data set that reads a user's file: a small one written here."""
    if name != "arrays":
        return {}
    path = str(folder / "own.npz")
    np.savez(path, x=np.random.default_rng(0).normal(size=(30, 1, 5)), y=np.arange(30) % 3)
    return {"path": path}


@pytest.mark.parametrize("name", list_datasets())
def test_every_data_set_loads_three_well_typed_splits(name, tmp_path):
    d = load_dataset(name, **file_options(name, tmp_path))
    assert isinstance(d, DataSplits) and d.name == name
    assert isinstance(d.num_classes, int) and d.num_classes >= 2
    assert isinstance(d.shape, tuple) and all(isinstance(s, int) and s > 0 for s in d.shape)
    for split in ("train", "val", "test"):
        part = getattr(d, split)
        assert isinstance(part, tuple) and len(part) in (2, 3), f"{name}: {split}"
        x, y = part[0], part[1]
        assert x.dtype == torch.float32 and y.dtype == torch.long, f"{name}: {split}"
        assert tuple(x.shape[1:]) == d.shape and len(x) == len(y)
        assert y.min() >= 0 and y.max() < d.num_classes
        assert d.size(split) > 0
        if len(part) == 3:  # a graph set: every split is a mask over the same nodes
            assert part[2].dtype == torch.bool and part[2].shape == y.shape
    if len(d.train) == 3:
        masks = [getattr(d, s)[2] for s in ("train", "val", "test")]
        assert not (masks[0] & masks[1]).any() and not (masks[0] & masks[2]).any()
        assert not (masks[1] & masks[2]).any()
    else:
        x, y = next(iter(d.loader("train", 4)))
        assert x.shape == (4, *d.shape) and y.shape == (4,)


def test_list_datasets_filters_with_a_glob():
    assert list_datasets("mnist*") == ["mnist1d"]
    assert list_datasets("*s") == ["arrays", "ba_shapes", "digits"]
    assert list_datasets("*_*") == ["ba_shapes"]
    assert list_datasets("mnist") == []  # the whole name, not a substring
    assert list_datasets() == DATASETS.list()


def test_a_duplicate_data_set_is_refused_and_override_replaces():
    digits = DATASETS.resolve("digits")
    with pytest.raises(DuplicateNameError, match="data set 'digits' is registered already; "
                                                 "pass override=True"):
        register_dataset("digits")(lambda seed=0: None)
    assert DATASETS.resolve("digits") is digits

    def tiny(seed: int = 0):
        part = (torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]))
        return DataSplits(part, part, part, 2, (1, 8, 8), "digits")

    try:
        assert register_dataset("digits", override=True)(tiny) is tiny
        assert load_dataset("digits").size("train") == 2
    finally:
        register_dataset("digits", override=True)(digits)
    assert load_dataset("digits").size("train") > 2


def test_an_unknown_data_set_fails_with_the_registry_message():
    with pytest.raises(UnknownNameError,
                       match=r"could not resolve data set 'digit' among \[.*'digits'.*\]; "
                             r"did you mean 'digits'\? register one with "
                             r"@supernet.data.register_dataset\(name\)"):
        load_dataset("digit")
