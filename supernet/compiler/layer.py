"""Compile a layer-level graph to an ``nn.Module``.

Every edge becomes an :class:`Edge`: its candidate ops keyed by name, so that parameter
names survive pruning and growth of candidates. Every node becomes a :class:`NodeModule`
holding its in-edges (in port order), its post-merge op or its cell. Modules are registered
in schedule order, so parameters enumerate in the order a hand-written network of the same
structure registers them.

``forward`` runs a plan computed once at compile time (and after each edit): a flat
sequence of steps referencing the op modules directly, exposed read-only as
:attr:`LayerModule.plan` (see :mod:`supernet.compiler.plan`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

import torch
import torch.nn as nn

from supernet.compiler.base import register_compiler
from supernet.compiler.module import GraphModule, module_key
from supernet.compiler.plan import CallStep, LayerPlan, MergeStep, PlanEdge
from supernet.compiler.recompute import (
    check_memory_mode,
    lean_shared,
    recompute_mix,
    runs_several,
)
from supernet.errors import GraphError, ShapeError, SupernetError
from supernet.gates import Decision, Relaxation, Softmax
from supernet.compiler.memory_format import (
    check_memory_format,
    resolve_memory_format,
    to_memory_format,
)
from supernet.ops.prefix import has_hooks, split_norm_tail, split_prefix
from supernet.ops.weighted_norm import weighted_batch_norm
from supernet.ops.registry import build_op, resolve_op
from supernet.schema import bind_value
from supernet.shapes import edge_args, infer_channels

__all__ = ["LayerModule", "Edge", "NodeModule", "drop_path", "compile_layer", "partial_groups"]


def drop_path(x: torch.Tensor, p: float) -> torch.Tensor:
    """Zero whole samples with probability ``p`` and rescale the rest (DARTS drop-path)."""
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x / keep * mask


class Edge(nn.ModuleDict):
    """The candidate ops of one edge, keyed by op name."""

    def __init__(self):
        super().__init__()
        # Plain attributes are underscored: op names are the module names of this dict.
        self._shapes: dict[str, tuple] = {}
        self._zero: list[bool] = []
        self._ident: list[bool] = []
        self._ctx: list[tuple] = []
        self._drop_path = False
        self._partial = 1

    @property
    def names(self) -> list[str]:
        return list(self.keys())


def partial_groups(e: dict, C_in: int, C_out: int, where: str) -> int:
    """``K`` of an edge marked ``partial=K`` (PC-DARTS): its ops see ``1/K`` of the channels.

    Honoured on gates only (edges with more than one candidate): a discretized edge runs
    its op on every channel.
    """
    k = e.get("partial")
    if not k or len(e.get("ops", ())) < 2:
        return 1
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise GraphError(f"{where}: partial must be a positive int K, got {k!r}")
    if C_in != C_out or C_in % k:
        raise ShapeError(
            f"{where}: partial={k} needs equal input and output widths divisible by {k}, got "
            f"{C_in} -> {C_out}; mark only same-width gates partial, or choose K dividing C"
        )
    return k


class NodeModule(nn.Module):
    """Modules computing one node: in-edges by source, then a post-merge op or a cell."""

    def __init__(self):
        super().__init__()
        self.inputs = nn.ModuleDict()


def _init_alpha(K: int) -> torch.Tensor:
    return 1e-3 * torch.randn(1, K)


class LayerModule(GraphModule):
    """A compiled layer-level graph.

    Call it with the graph's inputs in order (``graph.inputs``) and context tensors by
    keyword (e.g. ``edge_index=`` for graph convolutions). It returns the output tensor, or a
    tuple when the graph has several outputs.

    Attributes:
        steps: one :class:`NodeModule` per computed node, in schedule order.
        plan: the schedule ``forward`` runs, read-only
            (:class:`~supernet.compiler.plan.LayerPlan`).
        arch: architecture parameters, one ``(1, K)`` tensor per gate (top level only).
        relaxation: turns ``arch`` into decisions each forward (default: softmax).
        drop_path_prob: drop-path rate for edges marked ``drop_path`` (training only).
        memory: ``"normal"``, or ``"lean"``: the gated edges that run several candidates
            recompute them in backward (:mod:`supernet.compiler.recompute`).
    """

    def __init__(self, graph, bind: dict | None = None, input_channels: list[int] | None = None,
                 gate_prefix: str = "", top: bool = True, shared: dict | None = None,
                 _pass: dict | None = None):
        super().__init__(graph)
        if graph.level != "layer":
            raise GraphError(f"LayerModule compiles layer-level graphs, got {graph.level!r}")
        self.bind = dict(bind or {})
        self.input_channels = input_channels
        self.gate_prefix = gate_prefix
        self.top = top
        self.steps = nn.ModuleDict()
        self._shared = {} if shared is None else shared
        self.drop_path_prob = 0.0
        self.memory = "normal"
        self._memory_format = "auto"
        self.share_prefixes = True
        self._arch_names: dict[str, tuple[str, ...]] = {}
        self.sync(_pass=_pass)
        if top:
            self._arch_names = {k: tuple(ops) for k, ops in self.gates().items()}
            self.arch = nn.ParameterDict(OrderedDict(
                (module_key(k), nn.Parameter(_init_alpha(len(ops))))
                for k, ops in self._arch_names.items()
            ))
            self.relaxation: Relaxation | None = Softmax() if len(self.arch) else None

    @property
    def memory_format(self) -> str:
        """The format of 4-D inputs: ``"auto"`` (``channels_last`` on CPUs, for a module
        with gates),
        ``"channels_last"``, ``"contiguous"`` or ``"preserve"``
        (:mod:`supernet.compiler.memory_format`)."""
        return getattr(self, "_memory_format", "auto")

    @memory_format.setter
    def memory_format(self, value: str) -> None:
        self._memory_format = check_memory_format(value)

    # ------------------------------------------------------------------ structure
    def gates(self) -> dict[str, list[str]]:
        """Gate key -> candidate op names, for this graph and every cell it calls."""
        out: dict[str, list[str]] = {}
        for n, step in self.steps.items():
            for src, edge in step.inputs.items():
                if len(edge) > 1:
                    out[self.gate_prefix + f"{src}->{n}"] = edge.names
            cell = getattr(step, "cell", None)
            if cell is not None:
                out.update(cell.gates())
        return out

    def edge_module(self, u: str, v: str) -> Edge:
        """The :class:`Edge` of ``u -> v``."""
        try:
            return self.steps[module_key(v)].inputs[module_key(u)]
        except KeyError:
            raise GraphError(f"{self.graph.name}: no compiled edge {u}->{v}") from None

    def gate_keys(self, u: str, v: str, cell: str | None = None) -> list[str]:
        """Keys in :attr:`arch` of edge ``u -> v`` of this graph or of cell template ``cell``."""
        edge = f"{module_key(u)}->{module_key(v)}"
        if cell is None:
            return [edge] if edge in self.gates() else []
        suffix = f"{module_key(cell)}:{edge}"
        return [k for k in self.gates() if k == suffix or k.endswith(":" + suffix)]

    def cell_modules(self, cell: str) -> list["LayerModule"]:
        """Distinct compiled instances of cell template ``cell`` (recursively)."""
        found: dict[int, LayerModule] = {}
        for n in self.graph.topological_order():
            d = self.graph.nx.nodes[n]
            if d.get("kind") != "call":
                continue
            m = self.steps[module_key(n)].cell
            if d["cell"] == cell:
                found[id(m)] = m
            for sub in m.cell_modules(cell):
                found[id(sub)] = sub
        return list(found.values())

    def sync(self, init: dict | None = None, _pass: dict | None = None) -> dict:
        """Make the modules match the graph, keeping every surviving op module.

        Ops that are new, or whose shape or arguments changed, are built; ``init`` maps
        ``(graph.uid, u, v, op_name)`` to a callable ``f(new_module, old_edge)`` that
        initializes a new op module (by default the op's own initialization). Returns ``{"built": [...], "removed": [...]}``
        as lists of ``(edge key, op name)``.
        """
        init = init or {}
        _pass = {} if _pass is None else _pass  # cells synced in this pass, by share key
        g = self.graph
        report = {"built": [], "removed": []}
        place = self.placement()
        info = infer_channels(g, self.bind, self.input_channels)
        keep_nodes = set()
        order = g.topological_order()
        # containers built here take the module's mode, as the ops built do
        mode = self.training
        new_steps = nn.ModuleDict().train(mode)
        commit = []
        for n in order:
            d = g.nx.nodes[n]
            kind = d.get("kind", "merge")
            if kind == "input":
                continue
            if n in info.idle:
                continue
            key = module_key(n)
            if key in new_steps:
                raise GraphError(f"{g.name}: nodes collide on module name {key!r}; rename {n!r}")
            keep_nodes.add(key)
            step = self.steps[key] if key in self.steps else NodeModule().train(mode)
            if kind == "call":
                commit.append((step, nn.ModuleDict().train(mode),
                               self._cell_module(n, d, info, init, report, _pass, place), None))
            else:
                inputs = self._sync_edges(n, step, info, init, report, place)
                commit.append((step, inputs, None, self._post_op(n, d, step, info, place)))
            new_steps[key] = step
        # Everything is built: only now change the modules (a failure above leaves them intact).
        for step, inputs, cell, post in commit:
            step.inputs = inputs
            if cell is not None:
                step.cell = cell
            if post is not None:
                if post[0] is None:
                    if hasattr(step, "op"):
                        del step.op
                    step.op_shape = None
                else:
                    step.op, step.op_shape = post
        for key, step in self.steps.items():
            if key not in keep_nodes:
                for src, edge in step.inputs.items():
                    report["removed"] += [(f"{src}->{key}", op) for op in edge.names]
        self.steps = new_steps
        self._build_plan()
        self.mark_synced()
        return report

    def placement(self) -> dict:
        """Where what is built goes: the device and floating dtype of the module's existing
        tensors (a module moved to a GPU grows its new ops on that GPU)."""
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return {"device": t.device, "dtype": t.dtype}
        return {}

    def _sync_edges(self, n, step, info, init, report, place):
        g = self.graph
        new_inputs = nn.ModuleDict().train(self.training)
        for u, _ in g.in_edges(n):
            if (u, n) not in info.edges:
                continue  # from a node with no value yet
            e = g.nx.edges[u, n]
            ukey = module_key(u)
            where = f"{g.name}: edge {u}->{n}"
            gate = self.gate_prefix + f"{ukey}->{module_key(n)}"
            edge = step.inputs[ukey] if ukey in step.inputs else Edge()
            C_in, C_out = info.edges[(u, n)]
            args = edge_args(g, u, n, self.bind)
            groups = partial_groups(e, C_in, C_out, where)
            fresh = Edge().train(self.training)
            for op in e["ops"]:
                spec = resolve_op(op, where)
                op_args = {k: v for k, v in args.items() if k in spec.params}
                shape = (C_in // groups, C_out // groups, tuple(sorted(op_args.items())))
                if op in edge and edge._shapes.get(op) == shape:
                    fresh[op] = edge[op]
                else:
                    module = build_op(op, C_in // groups, C_out // groups, op_args,
                                      where).train(self.training).to(**place)
                    policy = init.get((g.uid, u, n, op))
                    if policy is not None:
                        policy(module, edge)
                    fresh[op] = module
                    report["built"].append((gate, op))
                fresh._shapes[op] = shape
            for op in edge.names:
                if op not in fresh:
                    report["removed"].append((gate, op))
            fresh._zero = [resolve_op(op).zero for op in fresh.names]
            fresh._ident = [isinstance(fresh[op], nn.Identity) for op in fresh.names]
            fresh._ctx = [resolve_op(op).context for op in fresh.names]
            fresh._drop_path = bool(e.get("drop_path", False))
            fresh._partial = groups
            new_inputs[ukey] = fresh
        return new_inputs

    def _post_op(self, n, d, step, info, place):
        """``None`` to keep the post-merge op, else ``(module or None, shape)``."""
        op = d.get("op")
        if op is None:
            return (None, None) if hasattr(step, "op") else None
        args = bind_value(d.get("op_args", {}), self.bind, f"{self.graph.name}: node {n!r}")
        C = info.nodes[n]
        shape = (op, C, tuple(sorted(args.items())))
        if getattr(step, "op_shape", None) == shape:
            return None
        module = build_op(op, C, C, args, f"{self.graph.name}: node {n!r}")
        return module.train(self.training).to(**place), shape

    def _cell_module(self, n, d, info, init, report, _pass, place) -> "LayerModule":
        g = self.graph
        template = g.cells[d["cell"]]
        bind = {**self.bind, **bind_value(d.get("bind", {}), self.bind, f"{g.name}: node {n!r}")}
        arg_channels = [info.nodes[a] for a in d["args"]]
        weights = d.get("weights") or n
        share_key = (weights if weights != n else self.gate_prefix + n, d["cell"])
        if share_key in _pass:
            module = _pass[share_key]
            if module.input_channels != arg_channels or module.bind != bind:
                raise ShapeError(
                    f"{g.name}: call node {n!r} shares weights {weights!r} with a call of "
                    f"another shape ({module.input_channels} vs {arg_channels} channels, "
                    f"bind {module.bind} vs {bind}); give it its own weights key"
                )
            return module
        step = self.steps[module_key(n)] if module_key(n) in self.steps else None
        old = self._shared.get(share_key) or getattr(step, "cell", None)
        if (old is not None and old.graph is template and old.input_channels == arg_channels
                and old.bind == bind):
            sub = old.sync(init, _pass)
            report["built"] += sub["built"]
            report["removed"] += sub["removed"]
            module = old
        else:
            module = LayerModule(template, bind, arg_channels,
                                 gate_prefix=self.gate_prefix + f"{module_key(d['cell'])}:", top=False,
                                 shared=self._shared, _pass=_pass).train(self.training)
            module.to(**place)
        _pass[share_key] = module
        self._shared[share_key] = module
        return module

    def _build_plan(self) -> None:
        g = self.graph
        steps = []
        for n in g.topological_order():
            d = g.nx.nodes[n]
            kind = d.get("kind", "merge")
            if kind == "input":
                continue
            if module_key(n) not in self.steps:
                continue  # no inputs yet
            step = self.steps[module_key(n)]
            train_only = bool(d.get("train_only", False))
            if kind == "call":
                steps.append(CallStep(n, step.cell, tuple(d["args"]), train_only))
                continue
            edges = []
            for u, _ in g.in_edges(n):
                if module_key(u) not in step.inputs:
                    continue
                edge = step.inputs[module_key(u)]
                gate = self.gate_prefix + f"{module_key(u)}->{module_key(n)}"
                ops = tuple(edge.values())
                shared = tuple(None if z or any(c) else split_prefix(op)
                               for op, z, c in zip(ops, edge._zero, edge._ctx))
                tails = tuple(_tails(op, sp) if len(ops) > 1 and not z and not any(c) else None
                              for op, sp, z, c in zip(ops, shared, edge._zero, edge._ctx))
                edges.append(PlanEdge(u, ops, tuple(edge.names), tuple(edge._zero),
                                      tuple(edge._ident), tuple(edge._ctx),
                                      gate if len(ops) > 1 else None, edge._drop_path,
                                      edge._partial, shared if any(shared) else (),
                                      tails if any(tails) else ()))
            post = getattr(step, "op", None)
            steps.append(MergeStep(n, tuple(edges), d.get("merge", "sum"), post, train_only))
        self._plan = LayerPlan(tuple(g.inputs), tuple(g.outputs), _with_releases(steps, g.outputs))

    @property
    def plan(self) -> LayerPlan:
        """The compiled schedule, read-only (see :mod:`supernet.compiler.plan`)."""
        return self._plan

    def recompile(self) -> None:
        """Rebuild what changed in the graph; surviving op modules keep their weights."""
        self.sync()
        if self.top:
            self.sync_arch()

    @property
    def arch_names(self) -> Mapping[str, tuple[str, ...]]:
        """Gate key -> the candidate names the logits of its :attr:`arch` entry stand for,
        as of the last :meth:`sync_arch` (read-only; empty below the top level)."""
        return MappingProxyType(self._arch_names)

    def sync_arch(self, new_alpha: dict | None = None) -> None:
        """Resize ``arch`` to the current gates, keeping the logits of surviving candidates.

        Call it after :meth:`sync` (edits do, through
        :func:`supernet.edits.layer.sync_module`); the relaxation then resyncs its own
        entries of ``arch``.

        Args:
            new_alpha: gate key -> the parameter to use for that gate instead (e.g. the
                logits a grown op was given).
        """
        if not self.top:
            raise SupernetError(
                f"{self.graph.name}: a cell's gates live in the arch of the top-level module "
                f"that calls it (gate prefix {self.gate_prefix!r}); call sync_arch on that one"
            )
        new_alpha = new_alpha or {}
        gates = {k: tuple(ops) for k, ops in self.gates().items()}
        names = self._arch_names
        arch = nn.ParameterDict(OrderedDict()).train(self.training)
        gate_keys = {module_key(k) for k in gates} | {module_key(k) for k in names}
        # Entries that are no gate belong to the relaxation (attach); it resizes them in resync.
        extras = [(k, p) for k, p in self.arch.items() if k not in gate_keys]
        for key, ops in gates.items():
            k = module_key(key)
            if key in new_alpha:
                arch[k] = new_alpha[key]
                continue
            if k in self.arch and names.get(key) == ops:
                arch[k] = self.arch[k]
                continue
            old = self.arch[k] if k in self.arch else None
            value = _init_alpha(len(ops)).to(**self.placement())
            if old is not None and key in names:
                for j, op in enumerate(ops):
                    if op in names[key]:
                        value[0, j] = old.detach()[0, names[key].index(op)]
            arch[k] = nn.Parameter(value)
        for k, p in extras:
            arch[k] = p
        self.arch = arch
        self._arch_names = gates
        if self.relaxation is None and len(arch):
            self.relaxation = Softmax()
        if self.relaxation is not None:
            self.relaxation.resync(self)

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, gates: dict[str, Decision] | None = None, **context):
        if self.top:
            self.check_fresh()
            if len(inputs) != len(self._plan.inputs):
                raise SupernetError(
                    f"{self.graph.name}: expected {len(self._plan.inputs)} input(s) "
                    f"{list(self._plan.inputs)}, got {len(inputs)}"
                )
            if gates is None and len(self.arch):
                if self.relaxation is None:
                    raise SupernetError(
                        f"{self.graph.name}: the graph has {len(self.arch)} gate(s) but no "
                        "relaxation; set module.relaxation or discretize the graph"
                    )
                gates = self.relaxation(dict(self.arch.items()))
            fmt = resolve_memory_format(self.memory_format, inputs, gated=len(self.arch) > 0)
            if fmt is not None:
                inputs = tuple(to_memory_format(x, fmt) for x in inputs)
        p = self.drop_path_prob if self.training else 0.0
        lean = check_memory_mode(self.memory, "memory") == "lean" and torch.is_grad_enabled()
        values = self.run(inputs, gates, context, p, release=True,
                          share=getattr(self, "share_prefixes", True), lean=lean)
        outs = tuple(values[o] for o in self._plan.outputs)
        return outs[0] if len(outs) == 1 else outs

    def run(self, inputs, gates=None, context=None, drop_prob=0.0, *, release=False,
            share=True, lean=False):
        """Evaluate the plan; returns the dict of node values.

        Args:
            release: drop each value after its last reader (``forward`` does; the dict then
                holds the outputs only). By default every node's value is returned.
            share: compute each parameter-free prefix of a node's value once for all the
                candidates of its out-edges (:attr:`PlanEdge.shared`).
            lean: recompute in backward the gated edges that run several candidates
                (:mod:`supernet.compiler.recompute`; their prefixes are recomputed too).
        """
        plan = self._plan
        values = dict(zip(plan.inputs, inputs))
        context = {} if context is None else context
        prefixes: dict[str, dict] = {}  # node -> prefix key -> value
        training = self.training
        for step in plan.steps:
            n = step.node
            if step.train_only and not training:
                values[n] = None
                _release(step, values, prefixes, release)
                continue
            if type(step) is CallStep:
                cell = step.cell
                sub = cell.run([values[a] for a in step.args], gates, context, drop_prob,
                               release=release, share=share, lean=lean)
                values[n] = sub[cell._plan.outputs[0]]
                _release(step, values, prefixes, release)
                continue
            outs = []
            for e in step.edges:
                u, ops, gate = e.src, e.ops, e.gate
                x = values[u]
                try:
                    ctx = e.context
                    if any(ctx):
                        ops = tuple(_bind_context(o, c, context) for o, c in zip(ops, ctx))
                    if gate is None:
                        if share and e.shared and e.shared[0] is not None:
                            ops = _bind(e, ops, x, prefixes.setdefault(u, {}), (0,), (0,))
                        y = ops[0](x)
                    else:
                        if gates is None or gate not in gates:
                            raise SupernetError(
                                f"{self.graph.name}: edge {u}->{n} is a gate "
                                f"({', '.join(e.names)}) but no decision was given for it"
                            )
                        decision = gates[gate]
                        recompute = lean and runs_several(decision)
                        if (e.shared or e.tails) and decision.calls_on_input():
                            active = decision.active[0] if decision.active else range(len(ops))
                            shared = active if share and e.shared else ()
                            if recompute and shared:  # only the prefixes kept at little cost
                                shared = lean_shared(e.shared, shared)
                            ops = _bind(e, ops, x, prefixes.setdefault(u, {}), active, shared)
                        if recompute:
                            y = recompute_mix(decision, 0, ops, e.zero, x, e.ops)
                        else:  # one mixed edge: the candidates' callables of x, mixed
                            y = decision.mix(0, ops, e.zero, x)
                except RuntimeError as exc:
                    shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
                    raise ShapeError(
                        f"{self.graph.name}: edge {u}->{n} ({'|'.join(e.names)}) failed on an "
                        f"input of shape {shape}: {exc}"
                    ) from exc
                if e.drop_path and drop_prob > 0.0 and not (gate is None and e.identity[0]):
                    y = drop_path(y, drop_prob)
                outs.append(y)
            merge, post = step.merge, step.post
            try:
                if merge == "concat":
                    v = torch.cat(outs, dim=1)
                else:
                    v = outs[0]
                    for y in outs[1:]:
                        v = v + y
                if post is not None:
                    v = post(v)
            except RuntimeError as exc:
                shapes = [tuple(o.shape) for o in outs]
                raise ShapeError(
                    f"{self.graph.name}: node {n!r} cannot {merge} its inputs of shapes {shapes}: "
                    f"{exc}"
                ) from exc
            del outs
            values[n] = v
            _release(step, values, prefixes, release)
        return values


def _with_releases(steps, outputs) -> tuple:
    """``steps`` with :attr:`MergeStep.release` filled in: each node that is no output is
    released by the last step that reads it."""
    last: dict[str, int] = {}
    for i, st in enumerate(steps):
        reads = st.args if type(st) is CallStep else [e.src for e in st.edges]
        for u in reads:
            last[u] = i
    keep = set(outputs)
    drops: dict[int, list[str]] = {}
    for u, i in last.items():
        if u not in keep:
            drops.setdefault(i, []).append(u)
    return tuple(replace(st, release=tuple(drops[i])) if i in drops else st
                 for i, st in enumerate(steps))


def _release(step, values, prefixes, release) -> None:
    if release:
        for u in step.release:
            values.pop(u, None)
            prefixes.pop(u, None)


class _Bound:
    """A candidate op of a mixed edge bound, for one forward pass, to what the plan computes
    for it: ``p``, its parameter-free prefix of the edge's input ``x`` computed once per node
    (of ``x``'s first ``c`` channels for a partial-channel gate, ``c`` 0 otherwise), and the
    splits of its last batch norm (``tail``: of ``rest``; ``op_tail``: of the op). Called on
    another tensor than that input, it is the op itself."""

    __slots__ = ("op", "x", "c", "p", "rest", "tail", "op_tail")

    def __init__(self, op, x, c, p, rest, tail, op_tail):
        self.op, self.x, self.c, self.p, self.rest = op, x, c, p, rest
        self.tail, self.op_tail = tail, op_tail

    def _on_prefix(self, z) -> bool:
        if self.p is None:
            return False
        return _is_head(z, self.x, self.c) if self.c else z is self.x

    def __call__(self, z):
        if self._on_prefix(z):
            return self.p if self.rest is None else self.rest(self.p)
        return self.op(z)

    def mix_weighted(self, z, w):
        """``self(z) * w``, through the op's last batch norm where it has one
        (:func:`supernet.ops.weighted_norm.weighted_batch_norm`)."""
        on = self._on_prefix(z)
        split = self.tail if on else self.op_tail
        if split is None:
            return self(z) * w
        body, bn = split
        v = self.p if on else z
        return weighted_batch_norm(v if body is None else body(v), bn, w)


def _is_head(z, x, c) -> bool:
    """Whether ``z`` is the view ``x[:, :c]``."""
    return (type(z) is torch.Tensor and z.dim() == x.dim() and z.shape[1] == c
            and z.shape[0] == x.shape[0] and z.shape[2:] == x.shape[2:]
            and z.stride() == x.stride() and z.dtype == x.dtype
            and z.data_ptr() == x.data_ptr())


def _bind(e, ops, x, cache, active, shared):
    """``ops`` with each candidate of ``active`` that has a parameter-free prefix (those of
    ``shared`` only) or a last batch norm bound to them (:class:`_Bound`); each prefix is
    computed once per node, prefix key and channel slice (in ``cache``)."""
    out = list(ops)
    c = x.shape[1] // e.partial if e.partial > 1 and torch.is_tensor(x) else 0
    for k in active:
        split = e.shared[k] if k in shared else None
        tails = e.tails[k] if e.tails else None
        if (split is None and tails is None) or has_hooks(ops[k]):
            continue
        p = rest = None
        if split is not None:
            key, prefix, rest = split
            ck = (key, c) if c else key
            p = cache.get(ck)
            if p is None:
                p = cache[ck] = prefix(x[:, :c] if c else x)
        op_tail, rest_tail = tails or (None, None)
        tail = rest_tail if split is not None else None
        out[k] = _Bound(ops[k], x, c, p, rest, tail, op_tail)
    return tuple(out)


def _tails(op, split):
    """``(op_tail, rest_tail)``: :func:`~supernet.ops.prefix.split_norm_tail` of the op and of
    the rest after its prefix (``split``), or ``None`` when neither ends in a batch norm."""
    op_tail = split_norm_tail(op)
    rest = None if split is None else split[2]
    rest_tail = None if rest is None else split_norm_tail(rest)
    return None if op_tail is None and rest_tail is None else (op_tail, rest_tail)


def _bind_context(op, names, context):
    if not names:
        return op
    missing = [c for c in names if c not in context]
    if missing:
        raise SupernetError(f"op {type(op).__name__} needs context {missing}; pass it by keyword")
    kw = {c: context[c] for c in names}
    return lambda x: op(x, **kw)


@register_compiler("layer")
def compile_layer(graph, **kwargs) -> LayerModule:
    """Compile a layer-level graph (see :class:`LayerModule`)."""
    return LayerModule(graph, **kwargs)
