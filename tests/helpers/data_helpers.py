"""A tiny searchable network and a data set read item by item, for the data-check tests."""

from __future__ import annotations

import torch

from supernet import Graph


def toy(classes: int = 10, channels: int = 3, ops=("conv_3x3", "conv_1x1")) -> Graph:
    """Input ``x`` of ``channels`` channels, one gated conv edge, pooling and a classifier
    of ``classes`` outputs."""
    g = Graph("layer", name="toy")
    g.add_input("x", channels=channels)
    g.add_node("h", channels=channels + 1)
    g.add_edge("x", "h", list(ops))
    g.add_node("p", channels=channels + 1)
    g.add_edge("h", "p", "global_avg_pool")
    g.add_node("y", channels=classes)
    g.add_edge("p", "y", "classifier")
    g.set_outputs(["y"])
    return g


class Items(torch.utils.data.Dataset):
    """``(x[i], y[i])`` item by item: a data set that is not made of tensors."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]
