"""NeST: grow a sparse seed by gradients, then prune it by magnitude to a final size.

Dai, Yin and Jha, "NeST: A Neural Network Synthesis Tool Based on a Grow-and-Prune
Paradigm" (IEEE Transactions on Computers 68(10), 2019), Section 3. From a sparse seed
network, a *growth phase* adds structure where the loss gradient asks for it, then a
*pruning phase* removes what carries least:

* **connection growth** (the paper's gradient-based growth): in every block, add the missing
  connections of largest ``|∂L/∂w|`` (the gradient of a dense weight at a connection that
  is absent), a fraction ``connections`` of the block's current count each time;
* **neuron growth**: for a hidden group ``h`` between groups ``p`` and ``q``, the *bridging
  gradient* ``B[j, i] = Σ_batch x_p[i] ∂L/∂z_q[j]`` is the gradient of a direct connection
  ``p_i -> q_j`` (``z_q`` the pre-activation); each of the ``neurons`` pairs of largest
  ``|B|`` gets a new neuron of ``h`` wired to ``p_i`` and ``q_j`` only, with weights of
  magnitude ``√|B|`` rescaled (``scale``) to the mean magnitude of the block they join;
* **pruning**: magnitude pruning of connections, per block, to ``prune_to`` connections in
  all over the pruning epochs (each removes an equal share of what is left above the target),
  then removal of the hidden neurons left without inputs or outputs.

The schedule: growth at the end of every epoch of ``grow_at``, pruning at the end of every
epoch of ``prune_at``, all growth before all pruning, the training in between being the
search's own epochs.

One choice of ours: NeST draws the signs of a new neuron's two weights at random; here the
incoming weight is positive (a ReLU neuron fed by non-negative activations starts alive) and
the outgoing one has the sign of ``-B``, so that the new path ``p_i -> h -> q_j`` starts as a
descent direction of the loss. New connections of connection growth start at zero (as
RigL's), and grown neurons carry the weights of their record
(:class:`~supernet.edits.units.AddWiredUnits`), so the edit log replays the whole run.

Examples:
    >>> p = NeST(grow_at=[1, 2, 3], prune_at=[5, 6], prune_to=500)
    >>> [p.prune_target(2000, k) for k in range(2)]
    [1250, 500]
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from supernet.edits.units import AddWiredUnits, RemoveUnits
from supernet.errors import ConfigError, SearchError
from supernet.search.base import CreationPolicy, SearchState, require_unit
from supernet.search.creation.deeper import check_epochs
from supernet.search.creation.layer import _epochs
from supernet.search.creation.north import hidden_groups
from supernet.search.discretize.units import grow, prune
from supernet.search.probe import probing, score_batch
from supernet.search.scores import entry_weights, gradient, magnitude
from supernet.units.build import edge_key

__all__ = ["NeST", "bridging_gradient", "connection_count"]


def connection_count(graph) -> int:
    """Connections (scalar weights of the blocks) of a unit graph."""
    return int(sum(e["mask"].nnz for *_, e in graph.nx.edges(data=True)
                   if e["kind"] != "identity"))


def bridging_gradient(module, batch, p: str, q: str, loss_fn: Callable | None = None):
    """``B[j, i] = Σ_batch x_p[i] ∂L/∂z_q[j]`` (``(n_q, n_p)``): the gradient of a dense
    direct block ``p -> q`` at zero, ``z_q`` being ``q``'s summed inputs before its
    activation (and norm). Gradients of the module's parameters are left alone."""
    x, y = batch
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    held = []
    hook = module.unit_params(q).register_forward_pre_hook(lambda m, args: held.append(args[0]))
    try:
        values = module.run(inputs)
    finally:
        hook.remove()
    out = [values[o] for o in module.graph.outputs]
    loss = (loss_fn or F.cross_entropy)(out[0] if len(out) == 1 else tuple(out), y)
    (dz,) = torch.autograd.grad(loss, held[0])
    return (dz.t() @ values[p].detach()).cpu().numpy().astype(np.float64)


class NeST(CreationPolicy):
    """Grow-and-prune (module docstring).

    Args:
        grow_at: epochs (completed) at whose end to grow connections and neurons.
        prune_at: epochs at whose end to prune; all after the last growth.
        prune_to: connections left after the last pruning.
        connections: fraction of a block's connections added by each growth (``0``: none).
        neurons: neurons added per hidden group by each growth (``0``: none).
        grow_to: cap on the connections the growth phase reaches (``None``: no cap); it must
            exceed the seed's count.
        scale: ``α``, the new neurons' weights relative to the mean magnitude of their block.
        nodes: hidden groups that grow neurons (default: those with one dense in-edge and
            one dense out-edge).
        loss_fn: the loss of the gradients (cross-entropy by default).

    Attributes:
        history: one record per growth or pruning: epoch, phase, connections and units.
    """

    def __init__(self, grow_at: int | Iterable[int], prune_at: int | Iterable[int] = (),
                 prune_to: int | None = None, connections: float = 0.2, neurons: int = 4,
                 grow_to: int | None = None, scale: float = 1.0,
                 nodes: Sequence[str] | None = None, loss_fn: Callable | None = None):
        self.grow_at, self.prune_at = _epochs(grow_at), _epochs(prune_at)
        if not self.grow_at:
            raise ConfigError("NeST: give grow_at= (the epochs at whose end to grow)")
        if self.prune_at and min(self.prune_at) <= max(self.grow_at):
            raise ConfigError(f"NeST: prune_at={sorted(self.prune_at)} must come after the "
                              f"growth phase, grow_at={sorted(self.grow_at)}: give pruning "
                              f"epochs > {max(self.grow_at)}")
        if self.prune_at and (prune_to is None or isinstance(prune_to, bool)
                              or not isinstance(prune_to, int) or prune_to < 1):
            raise ConfigError(f"NeST: prune_to must be a positive int (the final connection "
                              f"count) when prune_at is given, got {prune_to!r}")
        if isinstance(connections, bool) or not isinstance(connections, (int, float)) \
                or connections < 0:
            raise ConfigError(f"NeST: connections must be a fraction >= 0, got {connections!r}")
        if isinstance(neurons, bool) or not isinstance(neurons, int) or neurons < 0:
            raise ConfigError(f"NeST: neurons must be an int >= 0, got {neurons!r}")
        if grow_to is not None and (isinstance(grow_to, bool) or not isinstance(grow_to, int)):
            raise ConfigError(f"NeST: grow_to must be an int (a connection count), got "
                              f"{grow_to!r}")
        self.prune_to, self.connections, self.neurons = prune_to, float(connections), neurons
        self.grow_to, self.scale = grow_to, float(scale)
        self.nodes = None if nodes is None else [str(n) for n in nodes]
        self.loss_fn = loss_fn
        self.history: list[dict] = []

    # ---------------------------------------------------------------- schedule
    def prune_target(self, count: int, step: int) -> int:
        """Connections left after pruning step ``step`` (0-based) from ``count``: an equal
        share of what is above ``prune_to`` goes at each remaining step."""
        left = len(self.prune_at) - step
        return int(count - math.ceil((count - self.prune_to) / max(left, 1)))

    def targets(self, graph) -> list[tuple[str, str, str]]:
        """``(p, h, q)`` of the groups that grow neurons."""
        out = []
        for h in hidden_groups(graph):
            ins, outs = list(graph.nx.predecessors(h)), list(graph.nx.successors(h))
            if len(ins) == 1 and len(outs) == 1:
                out.append((ins[0], h, outs[0]))
        if self.nodes is None:
            return out
        known = {h: t for t in out for h in [t[1]]}
        for n in self.nodes:
            if n not in known:
                raise ConfigError(f"{graph.name}: NeST: nodes entry {n!r} is not a hidden group "
                                  f"with one dense in-edge and one out-edge; allowed: "
                                  f"{sorted(known)}")
        return [known[n] for n in self.nodes]

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, "NeST", "grow layer-level cells with GrowNode")
        if state.epochs:
            check_epochs("NeST", "grow_at", self.grow_at, state.epochs)
            check_epochs("NeST", "prune_at", self.prune_at, state.epochs, last=True)
        self.targets(state.graph)
        now = connection_count(state.graph)
        if self.grow_to is not None and self.grow_to <= now:
            raise ConfigError(f"{state.graph.name}: NeST: grow_to={self.grow_to} is not above "
                              f"the seed's {now} connections; give grow_to > {now} (or None)")
        if self.prune_to is not None and self.grow_to is not None \
                and self.prune_to >= self.grow_to:
            raise ConfigError(f"NeST: prune_to={self.prune_to} must be below grow_to="
                              f"{self.grow_to}")

    def on_epoch_end(self, state: SearchState) -> None:
        require_unit(state.graph, "NeST", "grow layer-level cells with GrowNode")
        if state.epoch in self.grow_at:
            self.grow(state)
        if state.epoch in self.prune_at:
            self.prune(state, sorted(self.prune_at).index(state.epoch))

    # ---------------------------------------------------------------- growth
    def grow(self, state: SearchState) -> dict:
        """One growth: connections by gradient, then neurons by bridging gradient."""
        g, m = state.graph, state.module
        batch = score_batch(state, len(self.history))
        with probing(m):
            grads = gradient(m, batch, self.loss_fn)
            bridges = {(p, h, q): bridging_gradient(m, batch, p, q, self.loss_fn)
                       for p, h, q in self.targets(g)} if self.neurons else {}
        before = connection_count(g)
        budget = None if self.grow_to is None else max(self.grow_to - before, 0)
        counts = {}
        for u, v, e in g.nx.edges(data=True):
            if e["kind"] == "identity":
                continue
            key = edge_key(u, v)
            missing = int(np.prod(e["mask"].shape)) - e["mask"].nnz
            counts[key] = min(math.ceil(self.connections * e["mask"].nnz), missing)
        if budget is not None and sum(counts.values()) > budget:
            total = sum(counts.values())
            counts = {k: int(c * budget // total) for k, c in counts.items()}
        grown = 0
        for edit in grow(g, {k: grads[k] for k, c in counts.items() if c > 0}, counts):
            state.editor.apply(edit)
            grown += len(edit.dst)
        added = {}
        for (p, h, q), b in bridges.items():
            room = None if self.grow_to is None else self.grow_to - connection_count(g)
            k = self.neurons if room is None else min(self.neurons, max(room // 2, 0))
            if k:
                added[h] = self.add_neurons(state, p, h, q, b, k)
        record = {"epoch": state.epoch, "phase": "grow", "connections_before": before,
                  "connections_grown": grown, "neurons": added,
                  "connections": connection_count(g)}
        self.history.append(record)
        return record

    def add_neurons(self, state: SearchState, p: str, h: str, q: str, b: np.ndarray,
                    k: int) -> list[int]:
        """``k`` neurons of ``h``, one per pair ``(q_j, p_i)`` of largest ``|B|``."""
        g, m = state.graph, state.module
        flat = np.abs(b).reshape(-1)
        k = min(k, int((flat > 0).sum()))
        if k == 0:
            return []
        best = np.argsort(-flat, kind="stable")[:k]
        rows, cols = best // b.shape[1], best % b.shape[1]
        root = np.sqrt(flat[best])
        root = root / root.mean()
        with torch.no_grad():
            w_in = float(entry_weights(m.block(p, h)).abs().mean())
            w_out = float(entry_weights(m.block(h, q)).abs().mean())
        src, dst = g.node(p)["units"][cols], g.node(q)["units"][rows]
        sign = -np.sign(b[rows, cols])
        incoming = [[p, n, int(src[n]), float(self.scale * w_in * root[n])] for n in range(k)]
        outgoing = [[q, n, int(dst[n]), float(sign[n] * self.scale * w_out * root[n])]
                    for n in range(k)]
        res = state.editor.apply(AddWiredUnits(h, k, incoming=incoming, outgoing=outgoing))
        return res.report["created"][h].tolist()

    # ---------------------------------------------------------------- pruning
    def prune(self, state: SearchState, step: int) -> dict:
        """Pruning step ``step``: magnitude pruning of connections (per block, the same
        fraction of each), then removal of the hidden neurons left without inputs or outputs,
        which takes their remaining connections too; the fraction is the one whose result lands
        nearest this step's target (found by bisection on copies of the graph)."""
        g = state.graph
        before = connection_count(g)
        target = self.prune_target(before, step)
        if step == 0 and self.prune_to >= before:
            raise SearchError(f"{g.name}: NeST: prune_to={self.prune_to} is not below the "
                              f"{before} connections the growth reached; give prune_to < "
                              f"{before}")
        mags = magnitude(state.module)

        def left(k: int) -> int:  # connections left when magnitude pruning removes k
            trial = g.copy()
            self._prune_graph(trial, mags, k / before, lambda e: e.apply_graph(trial))
            return connection_count(trial)

        lo, hi = 0, max(before - target, 0)
        while lo < hi:  # the most removed by magnitude that keeps the target
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if left(mid) >= target else (lo, mid - 1)
        if lo < before and abs(left(lo + 1) - target) < abs(left(lo) - target):
            lo += 1  # one more lands nearer (dead neurons take their weights at once)
        removed = self._prune_graph(g, mags, lo / before, state.editor.apply)
        record = {"epoch": state.epoch, "phase": "prune", "connections_before": before,
                  "target": target, "connections": connection_count(g),
                  "neurons_removed": removed}
        self.history.append(record)
        return record

    def _prune_graph(self, graph, mags, sparsity: float, apply) -> dict[str, int]:
        """Magnitude pruning at ``sparsity``, then the dead neurons, each edit through
        ``apply``; returns the neurons removed per group."""
        if sparsity:
            for edit in prune(graph, mags, sparsity, "connections", scope="layer"):
                apply(edit)
        dead = self.dead(graph)
        if dead:
            apply(RemoveUnits(dead, tied=False))
        return {n: len(v) for n, v in dead.items()}

    @staticmethod
    def dead(graph) -> dict[str, list[int]]:
        """Hidden units with no incoming or no outgoing connection (at least one unit of a
        group stays)."""
        dead = {}
        for n in hidden_groups(graph):
            units = graph.node(n)["units"]
            fan_in = sum(np.diff(e["mask"].indptr) for _, _, e in graph.nx.in_edges(n, data=True))
            fan_out = sum(np.bincount(e["mask"].indices, minlength=len(units))
                          for _, _, e in graph.nx.out_edges(n, data=True))
            gone = np.nonzero((fan_in == 0) | (fan_out == 0))[0]
            if len(gone) == len(units):
                gone = gone[1:]
            if len(gone):
                dead[n] = units[gone].tolist()
        return dead

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state.get("history", []))
