"""Tiny channel- and neuron-level spaces, learnable synthetic data and checks shared by the
unit-level search tests."""

from __future__ import annotations

import torch

from search_spaces import create_space
from supernet import compile, lint
from supernet.edits import EditLog, Editor
from supernet.search import SearchState


def tiny_mlp(**kw):
    """``neuron_mlp``: 8 features, hidden (6, 5), 3 classes, skip blocks; units and
    synapses gated."""
    args = dict(in_features=8, hidden=(6, 5), num_classes=3, density=0.6, skip_density=0.3,
                seed=0)
    return create_space("neuron_mlp", **{**args, **kw})


def tiny_cnn(**kw):
    """``channel_cnn``: stages of 4 and 8 channels, one block each, 8x8 images, 3 classes;
    inner and stream channels gated (the streams tie channels across nodes)."""
    args = dict(widths=(4, 8), depths=(1, 1), num_classes=3, input_size=8)
    return create_space("channel_cnn", **{**args, **kw})


def mlp_data(n: int = 48, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    return x, x[:, :3].argmax(1)


def cnn_data(n: int = 32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=gen)
    return x, x.mean((2, 3)).argmax(1) % 3


def sizes(graph) -> tuple[int, int]:
    """Total units of computed nodes and total connections."""
    units = sum(len(d["units"]) for _, d in graph.nx.nodes(data=True) if d["kind"] == "units")
    conns = sum(e["mask"].nnz for *_, e in graph.nx.edges(data=True) if e["kind"] != "identity")
    return units, conns


def check_compiled(graph, module) -> None:
    """The compiled tensors have the graph's (shrunk) shapes."""
    for n, d in graph.nx.nodes(data=True):
        if d["kind"] == "units":
            assert module.unit_params(n).units.tolist() == d["units"].tolist(), n
    for u, v, e in graph.nx.edges(data=True):
        if e["kind"] == "identity":
            continue
        block = module.block(u, v)
        n_dst, n_src = len(graph.node(v)["units"]), len(graph.node(u)["units"])
        if hasattr(block, "values"):
            assert block.values.numel() == e["mask"].nnz, (u, v)
        else:
            assert tuple(block.weight.shape[:2]) == (n_dst, n_src // e.get("groups", 1)), (u, v)


def check_final(graph, module, before: tuple[int, int], x) -> None:
    """A discretized search result: lints, no gate left anywhere, the module runs without
    relaxation, tensors match the graph and something was removed."""
    lint(graph)
    assert not [n for n, d in graph.nx.nodes(data=True) if d.get("gated")]
    assert not [(u, v) for u, v, e in graph.nx.edges(data=True) if e.get("gated")]
    assert len(module.arch) == 0 and module.relaxation is None
    check_compiled(graph, module)
    after = sizes(graph)
    assert after[0] <= before[0] and after[1] <= before[1] and after != before
    module.eval()
    with torch.no_grad():
        out = module(x)
    assert out.shape[0] == len(x) and torch.isfinite(out).all()


def mini_state(graph, data, module=None, epochs: int = 4, batch_size: int = 16, seed: int = 0):
    """A search state over ``graph`` with both optimizers, an editor and the training
    batches of ``data``, for driving policies by hand."""
    module = module if module is not None else compile(graph, seed=seed)
    w_opt = torch.optim.SGD(module.weights(), lr=0.05, momentum=0.9)
    a_opt = torch.optim.Adam(module.arch_parameters(), lr=0.05) if len(module.arch) else None
    opts = [o for o in (w_opt, a_opt) if o is not None]
    editor = Editor(graph, module, opts, log=EditLog(), seed=seed)
    x, y = data

    def batches():
        for i in range(0, len(y), batch_size):
            yield (x[i:i + batch_size],), {}, y[i:i + batch_size]

    return SearchState(graph, module, editor, epoch=0, epochs=epochs, train_batches=batches,
                       val_batches=batches, weight_optimizer=w_opt, arch_optimizer=a_opt)


def train_step(state, data, arch: bool = True) -> None:
    """One weight step (and one architecture step) on ``data``."""
    x, y = data
    m = state.module
    m.train()
    opts = [state.weight_optimizer] + ([state.arch_optimizer] if arch and state.arch_optimizer
                                        else [])
    for o in opts:
        o.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    for o in opts:
        o.step()
