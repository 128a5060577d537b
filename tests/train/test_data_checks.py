"""Data mistakes given to the Python API are named before training: NumPy arrays and float64
inputs are taken, and labels out of range, float or negative labels, lengths that differ,
samples the graph cannot take and empty data sets fail with a SearchError naming the data,
the input node or the sample, and the fix."""

import numpy as np
import pytest
import torch
from data_helpers import Items, toy

from supernet import Graph, compile
from supernet.errors import SearchError
from supernet.search import search
from supernet.train import as_dataset, check_data, default_batch_fn, fine_tune, retrain

FAST = {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "progress": False}


def fixed() -> Graph:
    """The toy network with its gate decided."""
    g = toy()
    g.set_edge_attrs("x", "h", ops=["conv_1x1"])
    return g


X = torch.randn(16, 3, 8, 8)
Y = torch.arange(16) % 10


def test_numpy_float64_and_int32_data_are_converted_and_searched():
    result = search(toy(), (X.double().numpy(), Y.numpy().astype(np.int32)), config=FAST)
    assert len(result.history) == 1
    ds = as_dataset((X.double(), Y.to(torch.int32)), dtype=torch.float32)
    assert [t.dtype for t in ds.tensors] == [torch.float32, torch.int64]
    assert torch.equal(ds.tensors[0], X)  # the same values
    kept = torch.utils.data.TensorDataset(X, Y)
    assert as_dataset(kept, dtype=torch.float32) is kept  # nothing to convert: no copy


@pytest.mark.parametrize("y,message", [
    (torch.full((16,), 10), (r"train data: labels go up to 10 but the network has 10 outputs "
                             r"\(classes 0..9\); sample 0 is the first beyond them; give the "
                             r"graph's output 11 or more classes")),
    (Y.float(), (r"labels are float32, but the loss \(cross-entropy over the network's 10 "
                 r"outputs\) needs integer class indices; give them as integers: y.long\(\)")),
    (Y.float() + 0.5, r"needs integer class indices; sample 0 has 0.5, which is no class"),
    (torch.where(Y == 4, -1, Y), r"labels must be class indices from 0, but sample 4 has -1"),
    (Y[:, None], (r"targets of per-sample shape \[1\] for outputs of shape \[10\]: "
                  r"cross-entropy takes one class index per sample")),
    (Y[:15], r"train data: tensors of different lengths \[\(16, 3, 8, 8\), \(15,\)\]"),
])
def test_labels_that_are_no_class_of_the_network_are_refused(y, message):
    with pytest.raises(SearchError, match=message):
        search(toy(), (X, y), config=FAST)


def test_a_label_beyond_the_outputs_in_the_split_off_part_is_named_in_the_train_data():
    y = Y.clone()
    y[13] = 12  # in the part that train_portion=0.5 gives the architecture
    with pytest.raises(SearchError, match=r"train data: labels go up to 12 .* sample 13 is the "
                                          r"first beyond them"):
        search(toy(), (X, y), config=FAST)
    with pytest.raises(SearchError, match=r"val data: labels go up to 12"):
        search(toy(), (X, Y), (X, y), config=FAST)


def test_ignored_targets_pass_and_a_custom_loss_is_trusted():
    y = Y.clone()
    y[3] = -100  # IGNORE_INDEX: no sample
    assert search(toy(), (X, y), config=FAST).history
    def mse(out, t):
        return ((out - t) ** 2).mean()

    assert search(toy(), (X, torch.randn(16, 10)), config=FAST, loss_fn=mse).history


@pytest.mark.parametrize("x,message", [
    (torch.randn(16, 3, 8), (r"train data: graph 'toy' cannot run on its samples \('x': "
                             r"per-sample shape \[3, 8\] of float32 \(it takes 3 channels at "
                             r"dim 1\)\): .*; give samples of the shape and dtype the graph's "
                             r"inputs take")),
    (torch.randn(16, 3), r"'x': per-sample shape \[3\] of float32"),
    (torch.randint(0, 255, (16, 3, 8, 8), dtype=torch.uint8),
     r"of uint8 .*integer inputs: pass x.float\(\) \(scaled as you need\)"),
    (torch.randn(16, 2, 8, 8), r"input 'x' of graph 'toy' expects 3 channels \(dim 1\)"),
])
def test_inputs_the_graph_cannot_take_fail_before_training(x, message):
    with pytest.raises(SearchError, match=message):
        search(toy(), (x, Y), config=FAST)


def test_empty_and_unusable_data_are_named():
    with pytest.raises(SearchError, match=r"train data: 0 sample\(s\) cannot be split"):
        search(toy(), (X[:0], Y[:0]), config=FAST)
    with pytest.raises(SearchError, match=r"val data: 0 sample\(s\)"):
        search(toy(), (X, Y), (X[:0], Y[:0]), config=FAST)
    with pytest.raises(SearchError, match=r"the targets \(item 1\) are a NumPy array of dtype "
                                          r"<U1, not numbers"):
        search(toy(), (X.numpy(), np.array(list("abcdefghijklmnop"))), config=FAST)
    with pytest.raises(SearchError, match=r"expected a torch Dataset or a tuple of tensors or "
                                          r"NumPy arrays \(inputs, targets\), got list of "
                                          r"Tensor, list"):
        search(toy(), [X, Y.tolist()], config=FAST)


def test_a_dataset_of_items_is_checked_on_its_first_samples():
    y = Y.clone()
    y[9] = 30  # the second sample of the part split off for the architecture
    with pytest.raises(SearchError, match=r"labels go up to 30 .* sample 9 is the first"):
        search(toy(), Items(X, y), config=FAST)
    with pytest.raises(SearchError, match=r"input 'x' is float64, but the network computes in "
                                          r"float32; return float32 tensors from the data set"):
        search(toy(), Items(X.double(), Y), config=FAST)
    with pytest.raises(SearchError, match=r"labels go up to 11 .* sample 0 is the first"):
        search(toy(), Items(X, Y + 10), config=FAST)
    with pytest.raises(SearchError, match=r"train data: the data set is empty"):
        fine_tune(compile(fixed()), Items(X[:0], Y[:0]), epochs=1, device="cpu")


def test_retrain_and_fine_tune_check_their_data_too():
    result = retrain(fixed(), (X.double().numpy(), Y.numpy()), (X.double(), Y), epochs=1,
                     batch_size=8, device="cpu")
    assert 0.0 <= result.history[0]["val_acc"] <= 1.0
    with pytest.raises(SearchError, match=r"val data: labels go up to 13"):
        retrain(fixed(), (X, Y), (X, Y + 4), epochs=1, device="cpu")
    with pytest.raises(SearchError, match=r"train data: graph 'toy' cannot run on its samples"):
        fine_tune(compile(fixed()), (torch.randn(16, 3), Y), epochs=1, device="cpu")


def test_the_check_leaves_the_random_state_and_the_mode_as_they_were():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    module = compile(toy())
    module.train()
    state = torch.get_rng_state()
    check_data(module.graph, module, as_dataset((X, Y)), default_batch_fn)
    assert torch.equal(torch.get_rng_state(), state) and module.training
    assert not torch.equal(before, state)  # compiling drew from it, the check did not


def test_a_bad_label_later_in_a_dataset_of_items_is_named_by_the_loss():
    y = Y.clone()
    y[5] = 30  # past the two samples checked before training
    with pytest.raises(SearchError, match=r"the loss \(cross-entropy\) cannot take a batch's "
                                          r"targets: int64 targets of shape \(4,\) for outputs "
                                          r"of shape \(4, 10\) \(Target 30 is out of bounds"):
        search(toy(), Items(X, y), config={**FAST, "steps_per_epoch": 8})
