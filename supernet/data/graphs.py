"""Graph data sets that torch-geometric builds offline, for node classification.

A node-classification split is searched and trained on the whole graph at every step
(full-batch, as GNN papers train on such graphs): :func:`whole_graph_splits` turns the
splits of a data set into :class:`WholeGraph` data sets of one item, the graph with the
targets of the split's nodes, and :func:`whole_graph_batch` unpacks their batches.

Examples:
    >>> import torch
    >>> x, ei = torch.ones(4, 2), torch.tensor([[0, 1], [1, 2]])
    >>> y, mask = torch.tensor([0, 1, 1, 0]), torch.tensor([True, False, True, False])
    >>> (inputs, ctx, target), = [whole_graph_batch(b) for b in torch.utils.data.DataLoader(
    ...     WholeGraph(x, ei, y, mask))]
    >>> inputs[0].shape, ctx["edge_index"].shape, target.tolist()
    (torch.Size([4, 2]), torch.Size([2, 2]), [0, -100, 1, -100])
"""

from __future__ import annotations

import numpy as np
import torch

from supernet.data.base import DataSplits, check_fraction, register_dataset
from supernet.errors import ConfigError
from supernet.train.training import IGNORE_INDEX

__all__ = ["ba_shapes", "node_masks", "WholeGraph", "whole_graph_batch", "whole_graph_splits"]


class WholeGraph(torch.utils.data.Dataset):
    """One split of a node-classification graph as a data set of one item
    ``(x, edge_index, target)``: the whole graph, with the class of the split's nodes and
    :data:`~supernet.train.training.IGNORE_INDEX` at the others (the loss, the accuracy
    and the sample counts pass those over)."""

    whole_batches = True  # one item is a whole batch: the search needs no two of them

    def __init__(self, x: torch.Tensor, edge_index: torch.Tensor, y: torch.Tensor,
                 mask: torch.Tensor):
        if not bool(mask.any()):
            raise ConfigError(f"a node-classification split needs at least one node; its mask "
                              f"selects none of the graph's {mask.numel()} nodes")

        self.x, self.edge_index = x, edge_index
        self.y = torch.where(mask, y, torch.full_like(y, IGNORE_INDEX))

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i):
        if i != 0:
            raise IndexError(i)
        return self.x, self.edge_index, self.y


def whole_graph_batch(batch):
    """A loader's batch of :class:`WholeGraph` (one item) -> ``((x,), {"edge_index": ...},
    target)``, the batch layout of a search (``batch_fn``)."""
    x, edge_index, y = batch
    return (x[0],), {"edge_index": edge_index[0]}, y[0]


def whole_graph_splits(data: DataSplits) -> dict[str, WholeGraph]:
    """The splits of a node-classification data set (``info["edge_index"]``, splits
    ``(x, y, mask)``) as :class:`WholeGraph` data sets, ``"train+val"`` included."""
    ei = data.info["edge_index"]
    out = {k: WholeGraph(x, ei, y, m) for k, (x, y, m) in
           (("train", data.train), ("val", data.val), ("test", data.test))}
    x, y, m = data.train
    out["train+val"] = WholeGraph(x, ei, y, m | data.val[2])
    return out


def node_masks(n: int, val_fraction: float, test_fraction: float, seed: int,
               name: str = "graph"):
    """Boolean train/val/test masks over ``n`` nodes; each split gets at least one node.

    Examples:
        >>> [int(m.sum()) for m in node_masks(10, 0.2, 0.3, seed=0)]
        [5, 2, 3]
    """
    check_fraction(val_fraction, "val_fraction", name)
    check_fraction(test_fraction, "test_fraction", name)
    sizes = {"val": int(n * val_fraction), "test": int(n * test_fraction)}
    sizes["train"] = n - sizes["val"] - sizes["test"]
    empty = [k for k, v in sizes.items() if v < 1]
    if empty:
        raise ConfigError(
            f"data set {name!r}: splitting {n} nodes with data.val_fraction={val_fraction} and "
            f"data.test_fraction={test_fraction} leaves no node for {empty}; each split needs "
            "at least one (the two fractions must sum to less than 1)"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = int(n * val_fraction), int(n * test_fraction)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[1][perm[:n_val]] = True
    masks[2][perm[n_val:n_val + n_test]] = True
    masks[0][perm[n_val + n_test:]] = True
    return masks


@register_dataset("ba_shapes")
def ba_shapes(val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
              num_nodes: int = 300, num_motifs: int = 80) -> DataSplits:
    """BA-Shapes (Ying et al., 2019): a Barabási-Albert graph with house motifs attached;
    nodes are classified by their role (base, house top, middle, bottom). Features: a
    constant and the normalized degree.

    The splits hold ``(x, y)`` of the whole graph plus a node mask, as one tensor triple:
    ``split = (x, y, mask)``; ``info["edge_index"]`` holds the graph.
    """
    for key, value in (("num_nodes", num_nodes), ("num_motifs", num_motifs)):
        if value < 1:
            raise ConfigError(f"data set 'ba_shapes': data.{key} must be >= 1, got {value}")
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph
    from torch_geometric.utils import degree

    # PyG draws the graph with torch and numpy's global generators: seed both, and leave
    # the caller's generators as they were
    saved = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            data = ExplainerDataset(graph_generator=BAGraph(num_nodes=num_nodes, num_edges=5),
                                    motif_generator="house", num_motifs=num_motifs)[0]
    finally:
        np.random.set_state(saved)
    n = data.y.numel()
    deg = degree(data.edge_index[0], n)
    x = torch.stack([torch.ones(n), deg / deg.max()], dim=1)
    tr, va, te = node_masks(n, val_fraction, test_fraction, seed, "ba_shapes")
    y = data.y.long()
    info = {"source": "torch_geometric ExplainerDataset(BAGraph, house)",
            "edge_index": data.edge_index, "nodes": n}
    return DataSplits((x, y, tr), (x, y, va), (x, y, te), int(y.max()) + 1, (2,),
                      "ba_shapes", info)
