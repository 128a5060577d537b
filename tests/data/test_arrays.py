"""The ``arrays`` data set: a user's own arrays from .npz, .npy, .pt and .csv files, every
mistake in them named with the file, the array or column, and the fix."""

import os

import numpy as np
import pytest
import torch

from supernet.data import load_dataset
from supernet.errors import ConfigError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6))  # float64, as numpy makes it
Y = np.arange(40) % 4


def sizes(d):
    return [d.size(s) for s in ("train", "val", "test")]


def test_npz_with_x_and_y_splits_as_digits_do(tmp_path):
    path = str(tmp_path / "my.npz")
    np.savez(path, x=X, y=Y)
    d = load_dataset("arrays", path=path, val_fraction=0.25, test_fraction=0.2, seed=3)
    assert d.name == "arrays" and d.num_classes == 4 and d.shape == (1, 6)  # one channel
    assert sizes(d) == [24, 8, 8]
    assert d.train[0].dtype == torch.float32 and d.train[1].dtype == torch.int64
    # every sample lands in exactly one split, unchanged but for float32
    got = torch.cat([d.train[0], d.val[0], d.test[0]]).reshape(40, 6)
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, X.astype(np.float32).tolist()))
    again = load_dataset("arrays", path=path, val_fraction=0.25, test_fraction=0.2, seed=3)
    assert torch.equal(again.val[0], d.val[0])
    other = load_dataset("arrays", path=path, val_fraction=0.25, test_fraction=0.2, seed=4)
    assert not torch.equal(other.val[0], d.val[0])


@pytest.mark.parametrize("xk,yk", [("X", "labels"), ("inputs", "targets"), ("data", "Y")])
def test_npz_common_key_names_are_found(tmp_path, xk, yk):
    path = str(tmp_path / "my.npz")
    np.savez(path, **{xk: X, yk: Y})
    assert load_dataset("arrays", path=path).num_classes == 4


def test_npz_keys_given_and_unknown_keys_listed(tmp_path):
    path = str(tmp_path / "my.npz")
    np.savez(path, feats=X, cls=Y)
    d = load_dataset("arrays", path=path, x_key="feats", y_key="cls", shape=[2, 3])
    assert d.shape == (2, 3) and d.train[0].shape[1:] == (2, 3)
    with pytest.raises(ConfigError, match=r"has no input array: looked for \['x', 'X', "
                       r"'inputs', 'data'\].*it has \['feats', 'cls'\]; name yours with "
                       r"data.x_key \(e.g. --set data.x_key=feats\)"):
        load_dataset("arrays", path=path)
    with pytest.raises(ConfigError, match=r"has no array 'lab' \(data.y_key\); it has"):
        load_dataset("arrays", path=path, x_key="feats", y_key="lab")
    with pytest.raises(ConfigError, match=r"data.shape \[4, 4\] holds 16 values per sample, "
                                          r"but the samples of .* have 6 \(shape \[6\]\)"):
        load_dataset("arrays", path=path, x_key="feats", y_key="cls", shape=[4, 4])


def test_npz_of_its_own_splits(tmp_path):
    path = str(tmp_path / "s.npz")
    np.savez(path, x_train=X[:30], y_train=Y[:30], x_val=X[30:35], y_val=Y[30:35],
             x_test=X[35:], y_test=Y[35:])
    d = load_dataset("arrays", path=path)
    assert sizes(d) == [30, 5, 5]
    assert torch.equal(d.test[0][:, 0], torch.as_tensor(X[35:], dtype=torch.float32))
    np.savez(path, x_train=X[:30], y_train=Y[:30], x_test=X[30:], y_test=Y[30:])
    assert sizes(load_dataset("arrays", path=path, val_fraction=0.2)) == [24, 6, 10]
    np.savez(path, x_train=X, y_train=Y, x_val=X[:4])
    with pytest.raises(ConfigError, match="has x_val but no y_val; it has"):
        load_dataset("arrays", path=path)


def test_npy_pair_and_pt_files(tmp_path):
    xs, ys = str(tmp_path / "inputs.npy"), str(tmp_path / "labels.npy")
    np.save(xs, X.astype(np.float16))
    np.save(ys, Y.astype(np.uint8))
    d = load_dataset("arrays", path=xs, labels=ys)
    assert d.num_classes == 4 and d.info["labels"] == ys
    with pytest.raises(ConfigError, match="is a .npy file of one array: give the labels in "
                                          "another with data.labels=labels.npy"):
        load_dataset("arrays", path=xs)
    pt = str(tmp_path / "d.pt")
    torch.save({"x": torch.as_tensor(X), "y": torch.as_tensor(Y)}, pt)
    assert load_dataset("arrays", path=pt).train[0].dtype == torch.float32
    torch.save((torch.as_tensor(X), torch.as_tensor(Y)), str(tmp_path / "t.pth"))
    assert load_dataset("arrays", path=str(tmp_path / "t.pth")).num_classes == 4


class Payload:  # a pickled object: loading it would run code
    def __reduce__(self):
        return (os.getcwd, ())


def test_files_that_need_unpickling_are_refused(tmp_path):
    pt = str(tmp_path / "evil.pt")
    torch.save({"x": torch.zeros(4, 2), "y": Payload()}, pt)
    with pytest.raises(ConfigError, match=r"evil.pt' does not load as plain tensors \("
                                          r"it needs posix.getcwd\): .*only "
                                          r"full unpickling can load, and unpickling can run "
                                          r"code, so it is not read; save plain tensors"):
        load_dataset("arrays", path=pt)
    npz = str(tmp_path / "obj.npz")
    np.savez(npz, x=X, y=np.array([object()] * 40))
    with pytest.raises(ConfigError, match=r"array 'y': it holds Python objects, which NumPy "
                                          "reads only by unpickling"):
        load_dataset("arrays", path=npz)
    npy = str(tmp_path / "obj.npy")
    np.save(npy, np.array([{"a": 1}] * 3), allow_pickle=True)
    with pytest.raises(ConfigError, match="it holds Python objects"):
        load_dataset("arrays", path=npy, labels=npy)


def test_csv_with_named_classes_and_numeric_features(tmp_path):
    path = tmp_path / "flowers.csv"
    names = ["setosa", "virginica", "versicolor"]
    rows = [f"{i * 0.1:.1f},{(i % 5) * 1.5},{names[i % 3]}" for i in range(30)]
    path.write_text("petal, sepal, species\n" + "\n".join(rows) + "\n\n")
    d = load_dataset("arrays", path=str(path), label_column="species")
    assert d.info["classes"] == {"setosa": 0, "versicolor": 1, "virginica": 2}
    assert d.num_classes == 3 and d.shape == (1, 2) and sum(sizes(d)) == 30
    path.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(ConfigError, match=r"flowers.csv', line 3, column 'b': 'x' is not a "
                                          r"number; feature columns must be numeric"):
        load_dataset("arrays", path=str(path))
    with pytest.raises(ConfigError, match=r"has no column 'kind' \(data.label_column\); its "
                                          r"columns are \['a', 'b', 'label'\]"):
        load_dataset("arrays", path=str(path), label_column="kind")
    path.write_text("a,b,c\n1,2,0\n3,4\n")
    with pytest.raises(ConfigError, match="line 3: 2 cells, but the header has 3 columns"):
        load_dataset("arrays", path=str(path))


def test_csv_last_column_is_the_default_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("f1,f2,cls\n" + "\n".join(f"{i},{-i},{i % 2}.0" for i in range(20)))
    d = load_dataset("arrays", path=str(path))
    assert d.num_classes == 2 and "classes" not in d.info and d.shape == (1, 2)


@pytest.mark.parametrize("y,message", [
    (Y + 0.5, r"array 'y': labels must be integer class indices, but sample 0 has 0.5"),
    (Y - 1, r"labels must be class indices from 0, but sample 0 has -1; number the classes"),
    (np.zeros(40), r"every label is 0, one class; a classifier needs at least 2"),
    (Y[:39], r"bad.npz', array 'x': 40 samples, but array 'y' has 39 labels; give one label"),
    (np.eye(4)[Y], (r"labels must be one class index per sample \(shape \(n,\)\), got "
                    r"shape \(40, 4\); for one-hot labels save y.argmax\(1\)")),
    (np.where(Y == 3, np.nan, Y), r"1. non-finite label values"),
])
def test_labels_that_are_not_class_indices_are_refused(tmp_path, y, message):
    path = str(tmp_path / "bad.npz")
    np.savez(path, x=X, y=y)
    with pytest.raises(ConfigError, match=message):
        load_dataset("arrays", path=path)


def test_num_classes_is_checked_and_labels_beyond_it_named(tmp_path):
    path = str(tmp_path / "my.npz")
    np.savez(path, x=X, y=Y)
    assert load_dataset("arrays", path=path, num_classes=10).num_classes == 10
    with pytest.raises(ConfigError, match=r"array 'y': labels go up to 3 \(sample 3\) but "
                                          r"data.num_classes is 3 \(classes 0..2\); set "
                                          r"data.num_classes to 4 or more"):
        load_dataset("arrays", path=path, num_classes=3)
    with pytest.raises(ConfigError, match="data.num_classes must be an int of at least 2"):
        load_dataset("arrays", path=path, num_classes=1)


def test_nan_inputs_named_with_the_file_and_sample(tmp_path):
    path = str(tmp_path / "nan.npz")
    x = X.copy()
    x[7, :2] = np.nan
    x[9, 0] = 1e300  # finite in float64, inf in float32
    np.savez(path, x=x, y=Y)
    with pytest.raises(ConfigError, match=r"nan.npz', array 'x': 2 non-finite input values "
                                          r"\(NaN or inf\) in 1 sample \(first: sample 7\); "
                                          r"drop or repair those samples in the file"):
        load_dataset("arrays", path=path)
    x[7, :2] = 0.0
    np.savez(path, x=x, y=Y)
    with pytest.raises(ConfigError, match=r"1 non-finite input value \(NaN or inf\) in 1 sample "
                                          r"\(first: sample 9\) \(float64 values beyond "
                                          r"float32's range"):
        load_dataset("arrays", path=path)


def test_too_few_samples_for_the_splits(tmp_path):
    path = str(tmp_path / "few.npz")
    np.savez(path, x=X[:6], y=Y[:6])
    with pytest.raises(ConfigError, match=r"few.npz': 6 samples of the file cannot give "
                                          r"data.test_fraction=0.2 \(1 and 5\); each part needs "
                                          r"at least 2"):
        load_dataset("arrays", path=path)
    np.savez(path, x_train=X, y_train=Y, x_test=X[:1], y_test=Y[:1])
    with pytest.raises(ConfigError, match=r"array 'x_test': 1 sample; a split needs at least 2"):
        load_dataset("arrays", path=path)
    np.savez(path, x=X[:0], y=Y[:0])
    with pytest.raises(ConfigError, match=r"array 'x': no samples"):
        load_dataset("arrays", path=path)


def test_paths_and_options_that_do_not_fit(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"needs data.path, the file of your arrays"):
        load_dataset("arrays")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data.path 'gone.npz': no such file \(a relative "
                                          r"path is read from the current directory, "):
        load_dataset("arrays", path="gone.npz")
    with pytest.raises(ConfigError, match=r"unknown file type '.txt'; give a .npz, .npy, .pt, "
                                          r".pth, .csv file"):
        load_dataset("arrays", path="x.txt")
    np.savez("rel.npz", x=X, y=Y)  # a relative path: from the current directory
    assert load_dataset("arrays", path="rel.npz").info["path"] == "rel.npz"
    with pytest.raises(ConfigError, match=r"data.label_column is for a .csv data.path, not a "
                                          r".npz file"):
        load_dataset("arrays", path="rel.npz", label_column="y")
    with pytest.raises(ConfigError, match=r"data.val_fraction must be a number"):
        load_dataset("arrays", path="rel.npz", val_fraction="half")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"broken.npz' cannot be read \("):
        load_dataset("arrays", path="broken.npz")
