"""Searches on a node-classification graph: the whole graph at every step, each split
measured on its own nodes only."""

import pytest
import torch
import torch.nn.functional as F

import supernet
from search_spaces import create_space
from supernet.data import load_dataset
from supernet.data.graphs import whole_graph_batch, whole_graph_splits
from supernet.search import BilevelSearch
from supernet.train.retrain import accuracy
from supernet.train.training import default_loss, sample_count


def _data():
    return load_dataset("ba_shapes", num_nodes=60, num_motifs=8)


def test_a_split_counts_its_own_nodes_only():
    data = _data()
    splits = whole_graph_splits(data)
    x, y, mask = data.val
    torch.manual_seed(0)
    net = supernet.compile(create_space("gnn", in_channels=2, hidden=8, num_classes=4)).eval()
    with torch.no_grad():
        out = net(x, edge_index=data.info["edge_index"])
    target = splits["val"][0][2]
    assert sample_count(target) == int(mask.sum()) < len(y)
    assert torch.allclose(default_loss(out, target), F.cross_entropy(out[mask], y[mask]))
    want = int((out[mask].argmax(1) == y[mask]).sum()) / int(mask.sum())
    assert accuracy(net, splits["val"], batch_fn=whole_graph_batch) == pytest.approx(want)
    both = splits["train+val"][0][2]
    assert sample_count(both) == int((data.train[2] | data.val[2]).sum())


def test_a_search_steps_on_the_whole_graph_and_measures_the_validation_nodes():
    data = _data()
    splits = whole_graph_splits(data)
    graph = create_space("gnn", in_channels=2, hidden=8, num_classes=4)
    search = BilevelSearch(graph, splits["train"], splits["val"], strategy="darts",
                           batch_fn=whole_graph_batch,
                           config={"epochs": 3, "batch_size": 1, "eval_batches": None})
    result = search.run()
    assert len(result.history) == 3 and not result.module.gates()
    supernet.lint(result.graph)
    # one step per epoch, measured on the validation nodes alone
    assert all(r["eval_acc"] is not None and 0.0 <= r["eval_acc"] <= 1.0
               for r in result.history)
    n_val = int(data.val[2].sum())  # accuracies are counts of validation nodes
    assert all(abs(r["val_acc"] * n_val - round(r["val_acc"] * n_val)) < 1e-6
               for r in result.history)


def test_the_graph_is_the_same_for_the_same_seed_and_leaves_the_callers_generators():
    import numpy as np

    torch.manual_seed(11)
    np.random.seed(11)
    a = load_dataset("ba_shapes", num_nodes=60, num_motifs=8, seed=4)
    after_torch, after_numpy = torch.rand(1), np.random.rand()
    torch.manual_seed(11)
    np.random.seed(11)
    b = load_dataset("ba_shapes", num_nodes=60, num_motifs=8, seed=4)
    assert torch.equal(a.info["edge_index"], b.info["edge_index"])
    assert torch.equal(torch.rand(1), after_torch) and np.random.rand() == after_numpy
    c = load_dataset("ba_shapes", num_nodes=60, num_motifs=8, seed=5)
    assert not torch.equal(a.info["edge_index"], c.info["edge_index"])


def test_a_split_without_nodes_is_refused():
    from supernet.data.graphs import WholeGraph
    from supernet.errors import ConfigError, SearchError

    x, y = torch.ones(5, 2), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ConfigError, match="needs at least one node; its mask selects none"):
        WholeGraph(x, torch.zeros(2, 0, dtype=torch.long), y, torch.zeros(5, dtype=torch.bool))
    net = torch.nn.Linear(2, 3)
    with pytest.raises(SearchError, match="accuracy: the data has no sample to measure"):
        accuracy(net, (torch.ones(2, 2), torch.full((2,), -100)))
