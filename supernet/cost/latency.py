"""Measured latency of every candidate op: the lookup table of latency-aware searches.

ProxylessNAS makes its latency loss differentiable with a table of each candidate's
latency, profiled on the target device. :func:`gate_latency` builds that table for a
compiled layer-level module, on the device the module is on: one forward pass with every
candidate of every gate running records the inputs each candidate op receives; each op is
then timed alone on its own input (median of ``repeats`` runs after ``warmup`` runs), and
a gate's figure is the sum over the calls of its cell template. The zero op (``none``)
costs nothing.

Examples:
    >>> import torch
    >>> from supernet import Graph, compile
    >>> g = Graph("layer"); g.add_input("x", channels=3, shape=[3, 16, 16])
    >>> g.add_node("h", channels=8); g.add_edge("x", "h", ["conv_3x3", "none"])
    >>> g.set_outputs(["h"])
    >>> table = gate_latency(compile(g), (torch.randn(1, 3, 16, 16),), repeats=3)
    >>> list(table), table["x->h"][0] > 0.0, table["x->h"][1]
    (['x->h'], True, 0.0)
"""

from __future__ import annotations

import statistics
import time

import torch

from supernet.compiler.layer import LayerModule
from supernet.errors import ConfigError
from supernet.gates import Decision

__all__ = ["gate_latency"]


def _gated_ops(module):
    """``(gate key, candidate index, op module)`` of every gated edge of ``module`` and of
    the cells it calls."""
    for edge in module.plan.iter_edges():
        if edge.gate is not None:
            for i, (op, z) in enumerate(zip(edge.ops, edge.zero)):
                if not z:
                    yield edge.gate, i, op


def gate_latency(module, inputs: tuple, context: dict | None = None, repeats: int = 20,
                 warmup: int = 3) -> dict[str, list[float]]:
    """Per gate key of ``module``, the latency in milliseconds of each candidate.

    Args:
        module: a compiled layer-level module.
        inputs: example inputs (their batch size is the one timed; ProxylessNAS profiles
            batch 1).
        context: context tensors of the forward pass (e.g. ``edge_index``).
    """
    if not isinstance(module, LayerModule):
        name = getattr(getattr(module, "graph", None), "name", type(module).__name__)
        raise ConfigError(f"{name}: latency tables are built for the candidate ops of "
                          "layer-level gates; this module has no such gate (compile a "
                          "layer-level graph)")
    gates = module.gates()
    calls: dict[int, list] = {}  # an op of a shared cell runs once per call of the cell
    handles = []
    where = list(_gated_ops(module))
    for op in {id(op): op for _, _, op in where}.values():
        def keep(m, args, kwargs):
            calls.setdefault(id(m), []).append((args, kwargs))

        handles.append(op.register_forward_pre_hook(keep, with_kwargs=True))
    every = {k: Decision(torch.full((1, len(v)), 1.0 / len(v))) for k, v in gates.items()}
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            try:
                module(*inputs, gates=every, **(context or {}))
            finally:
                for h in handles:  # recorded: the timing runs below must not add calls
                    h.remove()
            table = {k: [0.0] * len(v) for k, v in gates.items()}
            timed = set()
            for key, i, op in where:
                if id(op) in timed:
                    continue  # a shared cell's op: every call is timed once below
                timed.add(id(op))
                for args, kwargs in calls.get(id(op), []):  # none: not reached by the pass
                    table[key][i] += _median_ms(op, args, kwargs, repeats, warmup)
    finally:
        module.train(was)
    return table


def _median_ms(op, args, kwargs, repeats: int, warmup: int) -> float:
    sync = torch.cuda.synchronize if any(
        torch.is_tensor(a) and a.is_cuda for a in args) else (lambda: None)
    for _ in range(warmup):
        op(*args, **kwargs)
    times = []
    for _ in range(max(1, repeats)):
        sync()
        t0 = time.perf_counter()
        op(*args, **kwargs)
        sync()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)
