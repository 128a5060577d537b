"""Watching a search: one line per epoch, as the DARTS reference logs it and more.

:class:`EpochLog` is a search callback (``BilevelSearch(..., callbacks=[EpochLog()])``,
what ``supernet search`` installs). After every epoch it adds to the epoch's history record
(so ``history.json`` and the checkpoint hold the same figures):

- ``entropy``: the mean entropy of the gates' candidate weights over the largest it could
  be (1: undecided, uniform; 0: one candidate holds all the weight), ``None`` without gates;
- ``current``: what the search would keep if it stopped now: the space's text form (a
  DARTS genotype, a NAS-Bench-201 arch string, channel_cnn's widths) of the graph
  discretized on a copy, or else at the channel and neuron levels the kept width of every
  node (``{"h1": [12, 32]}``: 12 of 32 units);
- ``elapsed`` and ``remaining``: seconds since the callback was made (just before the
  search, or its continuation, runs) and the estimate for the epochs left, from the mean
  epoch so far;

and hands the line to ``log`` (``print`` by default; one line, shown here on two)::

    epoch 2/3 | train loss 1.234 acc 54.7% | val loss 1.301 acc 51.2% | entropy 0.934 | 12.3 s,
    ~6.1 s left
      Genotype(normal=[('sep_conv_3x3', 0), ...], ...)

With ``verbose``, each gate's candidate weights follow (the DARTS reference prints its
``alphas`` each epoch).

Examples:
    >>> rows = {"a": [[0.5, 0.5]], "b": [[1.0, 0.0]]}
    >>> round(gate_entropy(rows), 3)
    0.5
"""

from __future__ import annotations

import math
import time

from supernet.errors import SupernetError
from supernet.search.discretize.base import derive
from supernet.spaces import encode

__all__ = ["EpochLog", "current_form", "gate_entropy", "train_line"]


def gate_entropy(gates: dict) -> float | None:
    """Mean normalized entropy of the rows of ``gates`` (gate key -> rows of candidate
    probabilities, as a history record holds them); ``None`` when there is none."""
    values = []
    for rows in (gates or {}).values():
        for row in rows:
            if len(row) < 2:
                continue
            total = sum(row)
            if total <= 0:
                continue
            h = -sum(p / total * math.log(p / total) for p in row if p > 0)
            values.append(h / math.log(len(row)))
    return sum(values) / len(values) if values else None


def current_form(graph, module):
    """What the search keeps if it stops now, without changing ``graph`` or ``module``:
    the text form of the graph's space when it has one, else the kept and total units of
    every node of a channel- or neuron-level graph; ``None`` otherwise."""
    try:
        edits = derive(graph, module)
    except SupernetError:  # nothing to decide (no gate), or a level without choices
        return None
    copy = graph.copy()
    for edit in edits:
        edit.apply_graph(copy)
    if graph.meta.get("space"):
        try:
            return encode(copy)
        except SupernetError:  # a space without a text form
            pass
    out = {}
    for n, d in graph.nx.nodes(data=True):
        if n in graph.inputs or "units" not in d:
            continue
        after = copy.nx.nodes[n]["units"] if n in copy.nx else []
        out[n] = [len(after), len(d["units"])]
    return out or None


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v):
    return "-" if v is None else f"{v:.3f}"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


class EpochLog:
    """A search callback that records and prints one line per epoch (module docstring).

    Args:
        log: where each line goes (``print``; ``None`` records without printing).
        verbose: also print every gate's candidate weights.
        current: compute ``current`` (a discretization of a copy of the graph per epoch).
    """

    def __init__(self, log=print, verbose: bool = False, current: bool = True):
        self.log = log
        self.verbose = verbose
        self.current = current
        self._start = time.perf_counter()  # made just before the search runs
        self._first_epoch = None

    def __call__(self, state, record: dict) -> None:
        now = time.perf_counter()
        if self._first_epoch is None:  # the first epoch of this run (a resumed one starts later)
            self._first_epoch = record["epoch"] - 1
        record["entropy"] = gate_entropy(record.get("gates"))
        if self.current:
            record["current"] = current_form(state.graph, state.module)
        done = record["epoch"] - self._first_epoch
        elapsed = now - self._start
        left = max(state.epochs - record["epoch"], 0)
        record["elapsed"] = round(elapsed, 2)
        record["remaining"] = round(elapsed / max(done, 1) * left, 2)
        if self.log is None:
            return
        parts = [f"epoch {record['epoch']}/{state.epochs}",
                 f"train loss {_num(record.get('train_loss'))} acc "
                 f"{_pct(record.get('train_acc'))}"]
        if record.get("val_loss") is not None:
            parts.append(f"val loss {_num(record['val_loss'])} acc {_pct(record.get('val_acc'))}")
        if record.get("eval_acc") is not None:
            parts.append(f"eval acc {_pct(record['eval_acc'])}")
        if record["entropy"] is not None:
            parts.append(f"entropy {record['entropy']:.3f}")
        if record.get("tau") is not None:
            parts.append(f"tau {record['tau']:.3f}")
        parts.append(f"{_seconds(elapsed)}, ~{_seconds(record['remaining'])} left"
                     if left else _seconds(elapsed))
        self.log(" | ".join(parts))
        form = record.get("current")
        if isinstance(form, str):
            self.log(f"  {form}")
        elif isinstance(form, dict):
            self.log("  widths " + " ".join(f"{n}:{k}/{t}" for n, (k, t) in form.items()))
        if self.verbose:
            names = record.get("candidates") or {}
            for key, rows in (record.get("gates") or {}).items():
                if not rows:
                    continue
                mean = [sum(r[i] for r in rows) / len(rows) for i in range(len(rows[0]))]
                ops = names.get(key) or [str(i) for i in range(len(mean))]
                self.log(f"    {key}: " + ", ".join(f"{o} {p:.3f}" for o, p in zip(ops, mean)))


def train_line(record: dict, epochs: int) -> str:
    """One line for an epoch of a final training (its history record)."""
    parts = [f"train epoch {record['epoch']}/{epochs}",
             f"loss {_num(record.get('loss'))} acc {_pct(record.get('acc'))}"]
    if record.get("val_acc") is not None:
        parts.append(f"val acc {_pct(record['val_acc'])}")
    return " | ".join(parts)
