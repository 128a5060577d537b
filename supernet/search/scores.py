"""Saliency scores for pruning and regrowth, over a compiled unit module and a batch.

Connection scores are arrays with one value per mask entry (a scalar weight at neuron
level, a whole kernel at channel level), keyed ``"u->v"``; unit scores have one value per
unit, keyed by node. Turn them into edits with :func:`supernet.search.discretize.units` or
:func:`supernet.search.discretize.grow`.

* :func:`magnitude`: ``|w|`` per connection (the L1 norm of a kernel); per unit, the L1
  norm of its incoming weights (Li et al., 2017).
* :func:`snip`: connection sensitivity ``|w * dL/dw|`` (summed over a kernel's taps before
  the absolute value, as the sensitivity of its mask variable), normalized to sum to one
  (Lee et al., 2019); meant to be computed at initialization.
* :func:`taylor`: first-order Taylor expansion of the loss change when a unit is removed,
  ``|mean over positions of z * dL/dz|`` per example, averaged over the batch, then
  L2-normalized per node (Molchanov et al., 2017).
* :func:`gradient`: ``|dL/dW|`` at *every* potential connection, dense, for regrowth (RigL,
  Evci et al., 2020: grow the missing connections with the largest gradient magnitude).
* :func:`obd`: Optimal Brain Damage (LeCun et al., 1990), the second-order saliency
  ``h_kk w_k² / 2`` of each connection, ``h_kk`` the diagonal of the loss Hessian (estimated
  by Hutchinson's method from Hessian-vector products, or exact for small networks).
* :func:`bn_scale`: ``|γ|`` per unit of every batch-normalized node, the channel score of
  network slimming (Liu et al., 2017), after training with the L1 penalty of
  :func:`supernet.train.slimming_loss`.

Examples:
    >>> import torch
    >>> from supernet import compile
    >>> from supernet.units import mlp
    >>> from supernet.search import scores
    >>> g = mlp([4, 6, 3], density=0.5, seed=0); net = compile(g, seed=0)
    >>> batch = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> s = scores.snip(net, batch)
    >>> round(float(sum(v.sum() for v in s.values())), 4)
    1.0
    >>> scores.gradient(net, batch)["x->h1"].shape
    (6, 4)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from supernet.errors import SupernetError
from supernet.train.slimming import bn_scales
from supernet.units.build import edge_key, taps
from supernet.units.layout import Layout

__all__ = ["magnitude", "snip", "taylor", "gradient", "obd", "bn_scale", "entry_weights"]


def _weighted(module):
    g = module.graph
    for v in g.topological_order():
        for u, _ in g.in_edges(v):
            e = g.nx.edges[u, v]
            if e["kind"] != "identity":
                yield u, v, e, module.block(u, v)


def entry_weights(block, t: torch.Tensor | None = None) -> torch.Tensor:
    """Values of ``t`` (default: the block's weights) per mask entry: ``(nnz,)``, or
    ``(nnz, taps)`` when a connection is a whole kernel."""
    t = block.storage() if t is None else t
    flat = t.reshape(-1)
    return flat[block.entry_index] if hasattr(block, "entry_index") else flat


def magnitude(module, what: str = "connections") -> dict[str, np.ndarray]:
    """``|w|`` per connection, or per unit the L1 norm of its incoming weights."""
    if what not in ("connections", "units"):
        raise SupernetError(f"magnitude: what is 'connections' or 'units', got {what!r}")
    out = {}
    with torch.no_grad():
        for u, v, e, block in _weighted(module):
            w = entry_weights(block).abs()
            w = w.sum(-1) if w.dim() == 2 else w
            if what == "connections":
                out[edge_key(u, v)] = w.cpu().numpy()
                continue
            rows = torch.from_numpy(_rows(e["mask"]))
            acc = out.setdefault(v, np.zeros(e["mask"].shape[0]))
            acc += torch.zeros(e["mask"].shape[0], dtype=w.dtype).index_add(0, rows, w).numpy()
    return out


def _rows(mask) -> np.ndarray:
    return np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))


def _loss(module, batch, loss_fn, **run):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise SupernetError("a batch is (inputs, targets); inputs a tensor or a tuple of them")
    x, y = batch
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    values = module.run(inputs, **run)
    outs = [values[o] for o in module.graph.outputs]
    out = outs[0] if len(outs) == 1 else tuple(outs)
    return (loss_fn or F.cross_entropy)(out, y), values


def snip(module, batch, loss_fn: Callable | None = None) -> dict[str, np.ndarray]:
    """SNIP connection sensitivity ``|sum over taps of w * dL/dw|``, normalized to sum 1."""
    params = [b.storage() for *_, b in _weighted(module)]
    grads = torch.autograd.grad(_loss(module, batch, loss_fn)[0], params, allow_unused=True)
    out, total = {}, 0.0
    for (u, v, e, block), g in zip(_weighted(module), grads):
        g = torch.zeros_like(block.storage()) if g is None else g
        s = entry_weights(block) * entry_weights(block, g)
        s = (s.sum(-1) if s.dim() == 2 else s).abs().detach()
        out[edge_key(u, v)] = s.cpu().numpy().astype(np.float64)
        total += float(s.sum())
    if total > 0:
        out = {k: s / total for k, s in out.items()}
    return out


def taylor(module, batch, loss_fn: Callable | None = None,
           normalize: bool = True) -> dict[str, np.ndarray]:
    """First-order Taylor criterion per unit of every computed node (Molchanov et al.)."""
    g = module.graph
    nodes = [n for n in g.topological_order() if g.nx.nodes[n]["kind"] == "units"]
    loss, values = _loss(module, batch, loss_fn)
    acts = [values[n] for n in nodes]
    grads = torch.autograd.grad(loss, acts, allow_unused=True)
    out = {}
    for n, z, dz in zip(nodes, acts, grads):
        if dz is None:
            out[n] = np.zeros(z.shape[1])
            continue
        prod = (z * dz).detach().flatten(2) if z.dim() > 2 else (z * dz).detach().unsqueeze(-1)
        theta = prod.mean(-1).abs().mean(0)
        if normalize:
            norm = theta.norm()
            theta = theta / norm if norm > 0 else theta
        out[n] = theta.cpu().numpy().astype(np.float64)
    return out


def _probes(module):
    """Dense copies of every block's effective weight (leaves to differentiate), and the
    layout that maps each weight entry to its position in the block's mask."""
    probe, layouts = {}, {}
    for u, v, e, block in _weighted(module):
        probe[edge_key(u, v)] = block.effective().detach().clone().requires_grad_(True)
        per = taps(e)
        grid_mask = np.ones(e["mask"].shape, bool)  # every position is a candidate
        layouts[edge_key(u, v)] = (Layout("grid", sp.csr_array(grid_mask), per,
                                          module.graph.level == "neuron" and per > 1,
                                          e.get("groups", 1)), e["mask"].shape)
    return probe, layouts


def _mask_shaped(layout, shape, t: torch.Tensor | None) -> np.ndarray:
    """A per-weight-entry tensor summed into its mask's shape (a kernel's taps together)."""
    dense = np.zeros(shape)
    if t is None:
        return dense
    i, j, k = layout.coords()
    col = j * layout.taps + k if layout.per_tap else j
    np.add.at(dense, (i, col), t.detach().reshape(-1).cpu().numpy())
    return dense


def gradient(module, batch, loss_fn: Callable | None = None) -> dict[str, np.ndarray]:
    """``|dL/dW|`` at every potential connection, as a dense array of each mask's shape
    (a kernel's taps summed at channel level). Existing and missing connections alike."""
    probe, layouts = _probes(module)
    loss, _ = _loss(module, batch, loss_fn, probe=probe)
    grads = torch.autograd.grad(loss, list(probe.values()), allow_unused=True)
    return {key: _mask_shaped(*layouts[key], None if g is None else g.abs())
            for key, g in zip(probe, grads)}


def obd(module, batch, loss_fn: Callable | None = None, samples: int = 64, seed: int = 0,
        exact: bool = False) -> dict[str, np.ndarray]:
    """Optimal Brain Damage saliency ``h_kk w_k² / 2`` per existing connection (a kernel's
    taps summed), in the order of the mask's entries, as :func:`snip`.

    ``h_kk`` is the diagonal of the Hessian of the loss on ``batch`` with respect to the
    weights, estimated by Hutchinson's method, ``E[z * Hz]`` over ``samples`` Rademacher
    vectors ``z`` (each ``Hz`` one Hessian-vector product by double back-propagation), or,
    with ``exact=True``, one Hessian-vector product per weight (small networks only).
    """
    if samples < 1:
        raise SupernetError(f"obd: samples must be >= 1, got {samples}")
    probe, layouts = _probes(module)
    weights = list(probe.values())
    loss, _ = _loss(module, batch, loss_fn, probe=probe)
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    pairs = [(w, g) for w, g in zip(weights, grads) if g is not None and g.requires_grad]
    diag = {id(w): torch.zeros_like(w) for w in weights}

    def hvp(vectors):
        return torch.autograd.grad([g for _, g in pairs], [w for w, _ in pairs],
                                   grad_outputs=vectors, retain_graph=True, allow_unused=True)

    if exact:
        for k, (w, _) in enumerate(pairs):
            for idx in range(w.numel()):
                vectors = [torch.zeros_like(v) for v, _ in pairs]
                vectors[k].view(-1)[idx] = 1.0
                h = hvp(vectors)[k]
                if h is not None:
                    diag[id(w)].view(-1)[idx] = h.reshape(-1)[idx]
    else:
        gen = torch.Generator().manual_seed(seed)
        for _ in range(samples):
            zs = [(torch.randint(0, 2, w.shape, generator=gen) * 2 - 1).to(w) for w, _ in pairs]
            for (w, _), z, h in zip(pairs, zs, hvp(zs)):
                if h is not None:
                    diag[id(w)] += z * h / samples
    out = {}
    for (u, v, e, _), (key, w) in zip(_weighted(module), probe.items()):
        saliency = _mask_shaped(*layouts[key], 0.5 * diag[id(w)] * w.detach() ** 2)
        mask = e["mask"]
        out[key] = saliency[_rows(mask), mask.indices]
    return out


def bn_scale(module, nodes=None) -> dict[str, np.ndarray]:
    """Network slimming's channel score: ``|γ|``, the batch-norm scale factor of each unit.

    Liu et al., "Learning Efficient Convolutional Networks through Network Slimming" (ICCV
    2017), Section 3: after training with ``λ Σ |γ|`` added to the loss
    (:func:`supernet.train.slimming_loss`), the channels of smallest ``|γ|`` are pruned.
    Keys are the batch-normalized nodes of the module's graph (``nodes``: only these; a node
    without batch norm, or not in the graph, is refused by name). Pruned by
    :func:`supernet.search.discretize.units.prune`, tied units (a residual stream) go
    together, scored by the sum of their ``|γ|``.

    Examples:
        >>> from supernet import Graph, compile
        >>> from supernet.units import add_group, add_input, connect
        >>> g = Graph("channel"); add_input(g, "x", 2)
        >>> add_group(g, "c", 3, norm="batchnorm", bias=False); connect(g, "x", "c", "conv", kernel=1)
        >>> g.set_outputs(["c"]); net = compile(g)
        >>> bn_scale(net)["c"]
        array([1., 1., 1.])
    """
    graph = getattr(module, "graph", None)
    if graph is None or getattr(graph, "level", None) not in ("channel", "neuron"):
        raise SupernetError("bn_scale: scores units of a compiled channel- or neuron-level "
                            f"module, got {type(module).__name__}")
    if nodes is not None:
        for n in nodes:
            if n not in graph.nx:
                raise SupernetError(f"{graph.name}: bn_scale: no node {n!r} in the graph")
    with torch.no_grad():
        return {n: g.detach().abs().cpu().numpy().astype(np.float64)
                for n, g in bn_scales(module, nodes).items()}
