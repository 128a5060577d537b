import pytest
import torch

from supernet.data import load_dataset
from supernet.errors import ConfigError, UnknownNameError


def test_mnist1d_is_generated_offline_with_the_package_split():
    d = load_dataset("mnist1d", val_fraction=0.25)
    assert d.shape == (1, 40) and d.num_classes == 10
    assert d.size("train") + d.size("val") == 4000 and d.size("test") == 1000
    assert d.size("val") == 1000
    x, y = next(iter(d.loader("train", 32, shuffle=True)))
    assert x.shape == (32, 1, 40) and y.dtype == torch.long
    assert set(d.test[1].tolist()) == set(range(10))


def test_splits_are_disjoint_and_seeded():
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    assert torch.equal(a.train[0], b.train[0])
    rows = lambda t: {tuple(r.flatten().tolist()) for r in t}  # noqa: E731
    assert not rows(a.train[0]) & rows(a.test[0]) - rows(a.val[0])
    assert a.size("train") + a.size("val") + a.size("test") == 1797


def test_graph_set_has_node_masks():
    d = load_dataset("ba_shapes", num_nodes=60, num_motifs=10)
    x, y, mask = d.train
    assert x.shape[0] == y.shape[0] == mask.shape[0] == 110
    assert not (d.train[2] & d.val[2]).any() and d.info["edge_index"].shape[0] == 2


def test_bad_requests_name_the_key():
    with pytest.raises(UnknownNameError, match="could not resolve data set 'mnist'.*did you mean 'mnist1d'"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['batch'\]"):
        load_dataset("digits", batch=3)
    with pytest.raises(ConfigError, match="too few to split"):
        load_dataset("mnist1d", num_samples=10, val_fraction=0.01)
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        load_dataset("digits", val_fraction=1.5)


def test_list_datasets_names_the_built_in_sets_before_any_load():
    # a fresh interpreter: nothing has been loaded yet, as for `supernet list datasets`
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from supernet.data import list_datasets; "
                          "print(list_datasets())"], capture_output=True, text=True, check=True)
    assert "'mnist1d'" in out.stdout and "'digits'" in out.stdout and "'ba_shapes'" in out.stdout


def test_bad_option_values_fail_naming_the_key():
    with pytest.raises(ConfigError, match=r"data.val_fraction must be a number .*got 'abc'"):
        load_dataset("mnist1d", val_fraction="abc")
    with pytest.raises(ConfigError, match=r"data.num_samples must be an int .*got 2.5"):
        load_dataset("mnist1d", num_samples=2.5)
    with pytest.raises(ConfigError, match=r"data.num_samples must be at least 10 .*got 3"):
        load_dataset("mnist1d", num_samples=3)
    with pytest.raises(ConfigError, match=r"'digits': data.test_fraction must be in \(0, 1\), got 0"):
        load_dataset("digits", test_fraction=0)
    with pytest.raises(ConfigError, match=r"'ba_shapes': data.val_fraction must be in \(0, 1\)"):
        load_dataset("ba_shapes", val_fraction=0, num_nodes=20, num_motifs=2)
    with pytest.raises(ConfigError, match=r"leaves no node for \['train'\].*sum to less than 1"):
        load_dataset("ba_shapes", val_fraction=0.6, test_fraction=0.5, num_nodes=20, num_motifs=2)
    with pytest.raises(ConfigError, match=r"data.num_nodes must be >= 1, got 0"):
        load_dataset("ba_shapes", num_nodes=0)
