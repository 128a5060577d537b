"""Graph data sets that torch-geometric builds offline, for node classification."""

from __future__ import annotations

import torch

from .base import DataSplits, register_dataset

__all__ = ["ba_shapes", "node_masks"]


def node_masks(n: int, val_fraction: float, test_fraction: float, seed: int):
    """Boolean train/val/test masks over ``n`` nodes."""
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
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph
    from torch_geometric.utils import degree

    torch.manual_seed(seed)
    data = ExplainerDataset(graph_generator=BAGraph(num_nodes=num_nodes, num_edges=5),
                            motif_generator="house", num_motifs=num_motifs)[0]
    n = data.y.numel()
    deg = degree(data.edge_index[0], n)
    x = torch.stack([torch.ones(n), deg / deg.max()], dim=1)
    tr, va, te = node_masks(n, val_fraction, test_fraction, seed)
    y = data.y.long()
    info = {"source": "torch_geometric ExplainerDataset(BAGraph, house)",
            "edge_index": data.edge_index, "nodes": n}
    return DataSplits((x, y, tr), (x, y, va), (x, y, te), int(y.max()) + 1, (2,),
                      "ba_shapes", info)
