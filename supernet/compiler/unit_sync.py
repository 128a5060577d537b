"""Bring a compiled unit module in line with its graph, carrying every surviving weight.

For each node the module compares the unit ids it was built for with the graph's, giving a
map from new positions to old ones (or to the template a new unit copies); each block then
takes its weights through :func:`supernet.units.layout.remap`. Optimizer state moves with
the weights (sliced the same way), removed tensors leave the optimizers, new ones join the
param group of their siblings. What is created is initialized by an
:class:`supernet.init.InitPolicy`.

A failing synchronization is undone by its caller: :func:`supernet.edits.apply_edit` puts
the graph, the module and the optimizers back as they were.

Examples:
    >>> from supernet import compile
    >>> from supernet.init import InitPolicy
    >>> from supernet.units import mlp
    >>> from supernet.units.surgery import add_units
    >>> g = mlp([3, 4, 2]); net = compile(g)
    >>> w = net.block("x", "h1").weight.detach().clone()
    >>> _ = add_units(g, "h1", 1)  # the graph changed: the module is stale
    >>> report = net.sync(InitPolicy("zero", seed=0))
    >>> report["resized"], bool((net.block("x", "h1").weight[:4] == w).all())
    (['h1', 'x->h1', 'h1->y'], True)
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn as nn

from supernet.compiler.blocks import GridBlock, IdentityBlock, InputSelect, SparseBlock, UnitParams
from supernet.compiler.module import module_key
from supernet.init import InitPolicy
from supernet.optim import add_params, remove_params, replace_param
from supernet.units.build import columns_per_unit, edge_key, taps
from supernet.units.layout import Layout, Remap, entry_remap, remap
from supernet.units.masks import lookup

__all__ = ["sync_module", "fan_in"]

#: The name this module used for :class:`supernet.init.InitPolicy`.


def fan_in(graph, node: str) -> int:
    """Weights feeding one unit of ``node`` through all its in-edges (dense count)."""
    total = 0
    for u, _ in graph.in_edges(node):
        e = graph.nx.edges[u, node]
        if e["kind"] != "identity":
            total += len(graph.nx.nodes[u]["units"]) // e.get("groups", 1) * taps(e)
    return total


def _gather(t: torch.Tensor, idx: np.ndarray, shape) -> torch.Tensor:
    """``t.flatten()[idx]`` with zeros where ``idx < 0``, shaped ``shape``."""
    flat = t.detach().reshape(-1)
    index = torch.from_numpy(idx).to(flat.device)
    if len(flat) == 0:
        return flat.new_zeros(len(idx)).view(shape)
    out = flat.index_select(0, index.clamp(min=0))
    return out.masked_fill_(index < 0, 0).view(shape)


def _unit_map(old_units, new_units, copies):
    """``(rmap, rnew, changed)``: old position (or template) per new position."""
    if old_units is None:
        return np.full(len(new_units), -1, np.int64), np.ones(len(new_units), bool), True
    rmap = lookup(old_units, new_units)
    rnew = rmap < 0
    if copies is not None:
        new_ids, templates = copies
        rmap[lookup(new_units, new_ids)] = lookup(old_units, templates)
    changed = copies is not None or not np.array_equal(old_units, new_units)
    return rmap, rnew, changed


class _Sync:
    def __init__(self, module, policy: InitPolicy):
        self.m, self.c, self.g = module, policy, module.graph
        self.rule = policy.rule
        self.copies = policy.source or {}
        tensors = itertools.chain(module.parameters(), module.buffers())
        self.device = next((t.device for t in tensors), torch.device("cpu"))
        self.gen = policy.generator()
        self.swaps, self.fresh, self.removed, self.maps = [], [], [], {}
        self.report = {"built": [], "resized": [], "removed": []}

    # ------------------------------------------------------------------ per unit
    def unit_vector(self, old, rmap, rnew, fill):
        """A per-unit tensor continued from ``old`` (or ``fill`` for created units)."""
        new = torch.as_tensor(fill, dtype=torch.float32).clone()
        if old is not None:
            new = new.to(old.device, old.dtype)
            ok = torch.from_numpy(rmap >= 0)
            new[ok] = old.detach()[torch.from_numpy(rmap[rmap >= 0])]
        return new

    def node(self, n, d, old):
        units = d["units"]
        rmap, rnew, changed = _unit_map(None if old is None else old.units, units,
                                        self.copies.get(n))
        self.maps[n] = (rmap, rnew, changed)
        if d["kind"] == "input":
            if old is not None and not changed and getattr(old, "width", None) == d["width"]:
                return old
            return InputSelect(units, d["width"])
        where = f"{self.g.name}: node {n!r}"
        want_bias, want_norm = bool(d.get("bias", True)), d.get("norm") == "batchnorm"
        if (old is not None and not changed and (old.bias is not None) == want_bias
                and old.has_norm == want_norm):
            old.set_act(d.get("act", "identity"), where)
            _norm_constants(old, d)
            return old
        size = len(units)
        state = np.where(rnew, -1, rmap)
        bias = None
        if want_bias:
            fi = fan_in(self.g, n)
            fill = self.rule.unit_bias(size, 1.0 / math.sqrt(fi) if fi else None, self.gen)
            bias = self.unit_vector(getattr(old, "bias", None), rmap, rnew, fill)
        norm = None
        if want_norm:
            has = old is not None and old.has_norm
            get = (lambda name: getattr(old, name)) if has else (lambda name: None)
            norm = {"weight": self.unit_vector(get("norm_weight"), rmap, rnew, torch.ones(size)),
                    "bias": self.unit_vector(get("norm_bias"), rmap, rnew, torch.zeros(size)),
                    "running_mean": self.unit_vector(get("running_mean"), rmap, rnew,
                                                     torch.zeros(size)),
                    "running_var": self.unit_vector(get("running_var"), rmap, rnew,
                                                    torch.ones(size)),
                    "num_batches_tracked": get("num_batches_tracked").clone() if has
                    else torch.tensor(0, dtype=torch.long)}
        new = UnitParams(units, d.get("act", "identity"), bias, norm, where)
        _norm_constants(new, d)
        for name in ("bias", "norm_weight", "norm_bias"):
            self.carry(getattr(old, name, None) if old is not None else None,
                       getattr(new, name, None), state)
        self.report["resized" if old is not None else "built"].append(n)
        return new

    def carry(self, old_p, new_p, state):
        if old_p is not None and new_p is not None:
            self.swaps.append((old_p, new_p, state))
        elif old_p is not None:
            self.removed.append(old_p)
        elif new_p is not None:
            self.fresh.append(new_p)

    # ------------------------------------------------------------------ per edge
    def block(self, u, v, e, old):
        rmap, rnew, rchanged = self.maps[v]
        cmap, cnew, cchanged = self.maps[u]
        level = self.g.level
        sig = _signature(e)
        groups = e.get("groups", 1)
        layout_kind = self.layout_kind(e)
        if (old is not None and old.signature == sig and old.mask is e["mask"] and not rchanged
                and not cchanged and (old.layout is None or (old.layout.kind == layout_kind
                                                             and old.layout.groups == groups))):
            return old
        key = edge_key(u, v)
        if e["kind"] == "identity":
            if old is None:
                self.report["built"].append(key)
            return IdentityBlock(e["mask"], sig)
        per = taps(e)
        new_layout = Layout(layout_kind, e["mask"], per, level == "neuron" and per > 1, groups)
        keep_old = old is not None and old.signature == sig and old.layout is not None
        if keep_old:
            rm = remap(old.layout, new_layout, rmap, cmap, rnew, cnew)
        else:
            rm = _fresh_remap(new_layout, rnew, cnew)
        bound = 1.0 / math.sqrt(max(len(self.g.nx.nodes[u]["units"]) // groups * per, 1))
        old_store = old.storage() if keep_old else None
        values = self.fill(old_store, rm, new_layout.size, bound)
        if layout_kind == "sparse":
            new = SparseBlock(e["mask"], sig, new_layout, values)
        else:
            shape = (new_layout.r, new_layout.s_in) + tuple(e["kernel"]) if e["kind"] == "conv" \
                else (new_layout.r, new_layout.s_in)
            conv = None if e["kind"] != "conv" else {
                k: e[k] for k in ("kernel", "stride", "padding", "dilation", "groups")}
            new = GridBlock(e["mask"], sig, new_layout, values.view(shape), conv)
        if old is not None and old.storage() is not None:
            if keep_old:
                self.swaps.append((old_store, new.storage(), rm.state))
            else:
                self.removed.append(old.storage())
                self.fresh.append(new.storage())
        else:
            self.fresh.append(new.storage())
        self.report["resized" if old is not None else "built"].append(key)
        return new

    def layout_kind(self, e) -> str:
        if e["kind"] != "dense":
            return "grid"
        choice = self.m.kernel
        if choice in ("dense", "sparse"):
            return "grid" if choice == "dense" else "sparse"
        r, c = e["mask"].shape
        density = e["mask"].nnz / max(r * c, 1)
        return "sparse" if density < self.m.sparse_below and r * c >= self.m.sparse_min else "grid"

    def fill(self, old_store, rm: Remap, size: int, bound: float) -> torch.Tensor:
        if old_store is None:
            out = torch.zeros(size)
        else:
            out = _gather(old_store, rm.src, (size,))
        if rm.factor is not None:
            out *= torch.from_numpy(rm.factor).to(out.device, out.dtype)
        k = len(rm.fresh)
        if k:
            incoming = torch.from_numpy(rm.fresh_new_dst & ~rm.fresh_new_src)
            vals = self.rule.connections(k, bound, incoming, self.gen)
            if k == size:
                out = vals.to(out.device, out.dtype)
            else:
                out[torch.from_numpy(rm.fresh).to(out.device)] = vals.to(out.device, out.dtype)
        if self.c.noise and rm.noisy is not None and len(rm.noisy):
            noise = torch.randn(len(rm.noisy), generator=self.gen) * self.c.noise
            out[torch.from_numpy(rm.noisy).to(out.device)] += noise.to(out.device, out.dtype)
        return out

    # ------------------------------------------------------------------ gates
    def unit_gate(self, n, old_alpha):
        rmap, rnew, _ = self.maps[n]
        size = len(rmap)
        fill = 1e-3 * torch.randn(size, 2, generator=self.gen)
        if old_alpha is None:
            return nn.Parameter(fill), None
        new = fill.to(old_alpha.device, old_alpha.dtype)
        ok = torch.from_numpy(rmap >= 0)
        new[ok] = old_alpha.detach()[torch.from_numpy(rmap[rmap >= 0])]
        return nn.Parameter(new), np.where(rnew, -1, rmap)

    def edge_gate(self, u, v, e, old_alpha, old_block):
        nnz = e["mask"].nnz
        fill = 1e-3 * torch.randn(nnz, 2, generator=self.gen)
        if old_alpha is None or old_block is None:
            return nn.Parameter(fill), None
        rmap, rnew, _ = self.maps[v]
        cmap, cnew, _ = self.maps[u]
        per = columns_per_unit(self.g, e)
        src, state = entry_remap(old_block.mask, e["mask"], rmap, cmap, per, rnew, cnew)
        new = fill.to(old_alpha.device, old_alpha.dtype)
        ok = torch.from_numpy(src >= 0)
        new[ok] = old_alpha.detach()[torch.from_numpy(src[src >= 0])]
        return nn.Parameter(new), state


def _signature(e) -> tuple:
    if e["kind"] == "conv":
        return ("conv", tuple(e["kernel"]), tuple(e["stride"]), tuple(e["padding"]),
                tuple(e["dilation"]))
    return (e["kind"],)


def _fresh_remap(layout: Layout, rnew, cnew) -> Remap:
    if layout.kind == "sparse" and rnew.all() == rnew.any() and cnew.all() == cnew.any():
        n = len(layout.keys)  # every flag is the same: no coordinates needed
        src = np.full(n, -1, np.int64)
        return Remap(src, src, np.arange(n), np.full(n, bool(cnew.any())),
                     np.full(n, bool(rnew.any())))
    i, j, t = layout.coords()
    ex = np.ones(len(i), bool) if layout.kind == "sparse" else layout.exists(i, j, t)
    fresh = np.nonzero(ex)[0]
    src = np.full(len(i), -1, np.int64)
    return Remap(src, src, fresh, cnew[j[fresh]], rnew[i[fresh]])


def sync_module(module, policy: InitPolicy | None = None, optimizers=()) -> dict:
    """Rebuild what changed in ``module.graph``; see the module docstring."""
    s = _Sync(module, policy or InitPolicy())
    g = s.g
    old_arch = dict(module.arch.items())
    nodes, edges, arch = nn.ModuleDict(), nn.ModuleDict(), nn.ParameterDict()
    order = g.topological_order()
    for n in order:
        key = module_key(n)
        nodes[key] = s.node(n, g.nx.nodes[n], module.nodes[key] if key in module.nodes else None)
    for v in order:
        for u, _ in g.in_edges(v):
            key = module_key(edge_key(u, v))
            old = module.edges[key] if key in module.edges else None
            edges[key] = s.block(u, v, g.nx.edges[u, v], old)
    for key, old in module.edges.items():
        if key not in edges:
            s.report["removed"].append(key)
            if old.storage() is not None:
                s.removed.append(old.storage())
    for key, old in module.nodes.items():
        if key not in nodes:
            s.report["removed"].append(key)
            s.removed += [p for p in old.parameters()]
    arch_swaps, arch_fresh = [], []
    for n in order:
        if g.nx.nodes[n].get("gated") and g.nx.nodes[n]["kind"] == "units":
            key = module_key(n)
            alpha, state = s.unit_gate(n, old_arch.get(key))
            _arch_carry(arch, key, alpha, state, old_arch, arch_swaps, arch_fresh, s)
    for v in order:
        for u, _ in g.in_edges(v):
            e = g.nx.edges[u, v]
            if e.get("gated"):
                key = module_key(edge_key(u, v))
                old_block = module.edges[key] if key in module.edges else None
                alpha, state = s.edge_gate(u, v, e, old_arch.get(key), old_block)
                _arch_carry(arch, key, alpha, state, old_arch, arch_swaps, arch_fresh, s)
    ours = getattr(module, "_gate_keys", set())
    produced = set(arch.keys())
    for key, p in old_arch.items():
        if key not in arch and key not in ours:
            arch[key] = p  # added by the relaxation (Relaxation.attach): not ours to change
        elif key not in arch:
            remove_params(optimizers, [p])
    module._gate_keys = produced
    module.nodes, module.edges, module.arch = nodes, edges, arch
    for old_p, new_p, state in s.swaps + arch_swaps:
        replace_param(optimizers, old_p, new_p,
                      fn=lambda t, st=state, shape=new_p.shape: _gather(t, st, shape))
    remove_params(optimizers, s.removed)
    fresh_ids = {id(p) for p in s.fresh}
    add_params(optimizers, s.fresh, like=[p for p in module.weights() if id(p) not in fresh_ids])
    fresh_arch = {id(p) for p in arch_fresh}
    add_params(optimizers, arch_fresh,
               like=[p for p in arch.values() if id(p) not in fresh_arch])
    if s.device.type != "cpu":  # blocks are built on the CPU; follow the module
        module.to(s.device)
    module._after_sync()
    return s.report


def _arch_carry(arch, key, alpha, state, old_arch, swaps, fresh, s):
    arch[key] = alpha
    old = old_arch.get(key)
    if old is not None and state is not None:
        if alpha.shape == old.shape and np.array_equal(state, np.arange(len(state))):
            arch[key] = old  # unchanged: keep the very parameter
            return
        # state maps rows (units or connections); optimizer state is gathered flat
        k = alpha.shape[1]
        flat = np.where(state[:, None] >= 0, state[:, None] * k + np.arange(k), -1)
        swaps.append((old, alpha, flat.reshape(-1)))
        return
    if old is not None:
        s.removed.append(old)
    fresh.append(alpha)


def _norm_constants(params, d) -> None:
    """A node's batch-norm ``eps`` and ``momentum`` (``norm_eps``, ``norm_momentum``; torch's
    defaults when absent), so that a lowered op keeps its own."""
    params.eps = float(d.get("norm_eps", 1e-5))
    params.momentum = float(d.get("norm_momentum", 0.1))
