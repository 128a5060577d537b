"""Small super-networks for the search tests, built with the public graph API."""

from __future__ import annotations

import torch

from supernet import Graph

PRIMITIVES = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "dil_conv_3x3"]


def cell_template(name: str, reduce: bool, steps: int = 2, ops=PRIMITIVES) -> Graph:
    """A DARTS cell on preprocessed inputs: ``steps`` nodes, each summing gated edges from
    both inputs and every earlier node; the output concatenates the nodes."""
    t = Graph("layer", name=name)
    t.add_input("c0", channels="$C")
    t.add_input("c1", channels="$C")
    nodes = []
    for i in range(steps):
        n = f"n{i}"
        t.add_node(n, channels="$C")
        for j, src in enumerate(["c0", "c1", *nodes]):
            stride = 2 if reduce and j < 2 else 1
            t.add_edge(src, n, list(ops), stride=stride, affine=False, pool_bn=True)
        nodes.append(n)
    t.add_node("out", merge="concat")
    for n in nodes:
        t.add_edge(n, "out", "identity")
    t.set_outputs(["out"])
    return t


def darts_like(C: int = 4, layers: int = 2, steps: int = 2, classes: int = 3, in_ch: int = 3,
               ops=PRIMITIVES, name: str = "tiny_darts") -> Graph:
    """Stem, ``layers`` cells (reductions at 1/3 and 2/3; with 2 layers the second one),
    global pooling and a classifier. Gates are shared per cell type."""
    g = Graph("layer", name=name)
    g.add_input("x", channels=in_ch)
    g.add_cell("normal", cell_template("normal", False, steps, ops))
    g.add_cell("reduce", cell_template("reduce", True, steps, ops))
    g.add_node("stem", channels=3 * C)
    g.add_edge("x", "stem", "stem_conv_bn")
    prev_prev, prev, c = "stem", "stem", C
    reductions = {layers // 3, 2 * layers // 3} if layers > 2 else {1}
    reduction_prev = False
    for i in range(layers):
        red = i in reductions
        if red:
            c *= 2
        p0, p1 = f"pre0_{i}", f"pre1_{i}"
        g.add_node(p0, channels=c)
        g.add_edge(prev_prev, p0, "factorized_reduce" if reduction_prev else "relu_conv_bn",
                   affine=False)
        g.add_node(p1, channels=c)
        g.add_edge(prev, p1, "relu_conv_bn", affine=False)
        cell = f"cell{i}"
        g.add_call(cell, "reduce" if red else "normal", [p0, p1], bind={"C": c})
        prev_prev, prev, reduction_prev = prev, cell, red
    g.add_node("gap", channels=steps * c)
    g.add_edge(prev, "gap", "global_avg_pool")
    g.add_node("logits", channels=classes)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(["logits"])
    g.meta["constraints"] = {"normal": {"max_inputs": 2, "exclude": ["none"]},
                             "reduce": {"max_inputs": 2, "exclude": ["none"]}}
    return g


def chain(C: int = 4, ops=("conv_3x3", "conv_1x1", "skip_connect", "none"), n: int = 2,
          classes: int = 3, name: str = "chain") -> Graph:
    """A chain of ``n`` gated edges (a ProxylessNAS/SPOS-like space)."""
    g = Graph("layer", name=name)
    g.add_input("x", channels=3)
    g.add_node("stem", channels=C)
    g.add_edge("x", "stem", "conv_3x3")
    prev = "stem"
    for i in range(n):
        g.add_node(f"b{i}", channels=C)
        g.add_edge(prev, f"b{i}", list(ops))
        prev = f"b{i}"
    g.add_node("gap", channels=C)
    g.add_edge(prev, "gap", "global_avg_pool")
    g.add_node("logits", channels=classes)
    g.add_edge("gap", "logits", "classifier")
    g.set_outputs(["logits"])
    return g


def data(n: int = 32, classes: int = 3, size: int = 8, in_ch: int = 3, seed: int = 0):
    """Random images whose class shifts the mean of one channel (learnable)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    x = torch.randn(n, in_ch, size, size, generator=gen)
    x[:, 0] += y.float().view(-1, 1, 1)
    return x, y


def small_config(**kw) -> dict:
    base = {"epochs": 1, "batch_size": 8, "steps_per_epoch": 2, "eval_batches": 0}
    base.update(kw)
    return base
