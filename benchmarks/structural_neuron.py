"""Synaptic pruning and dynamic sparse training of a neuron-level MLP, against baselines.

Run from the repository root:

    PYTHONPATH=. python benchmarks/structural_neuron.py                 # both data sets
    PYTHONPATH=. python benchmarks/structural_neuron.py --data mnist1d --seeds 3
    PYTHONPATH=. python benchmarks/structural_neuron.py --quick         # smoke run

The network is the MNIST-1D paper's MLP (40-100-100-10, ReLU; 64 inputs for digits), its
15000 weights (17400 for digits) kept at 20%, 10% and 5% (80, 90 and 95% sparsity). Every
method makes the same number of optimizer steps in all (the *budget*: ``STEPS`` of
``benchmarks/structural_common.py``, 6000 on MNIST-1D and 2000 on digits), with the one
recipe ``RECIPE`` (AdamW, lr 1e-2, weight decay 0.1, batch 100) and one cosine schedule
over the budget; a method that prunes a trained network spends part of the budget training it
dense. Per method (``E = steps / 100`` intervals of 100 steps):

==================== ========================================================================
dense                the full MLP (reference)
dense, same size     a narrower dense MLP with about as many weights (baseline)
random (uniform/ERK) a random sparse structure, fixed, trained from scratch (baseline)
one-shot magnitude   dense for half the budget, each layer pruned to the sparsity by ``|w|``,
                     fine-tuned for the other half (baseline; Han et al. 2015 with one round)
IMP                  Han et al. 2015, :class:`~supernet.search.progressive.IterativeMagnitude`:
                     dense E/4 intervals, 5 rounds every E/10, each to
                     ``1 - (1 - s)^(k/5)`` per layer, retraining in between and after
gradual magnitude    Zhu & Gupta 2017, :class:`~supernet.search.progressive.GradualMagnitude`:
                     from E/8 every interval to 3E/4, cubic schedule, per layer
SNIP                 Lee et al. 2019: connection sensitivity on one batch at initialization,
                     pruned globally, then trained the whole budget
OBD                  LeCun et al. 1990: dense half the budget, saliency ``h_kk w^2 / 2``
                     (Hutchinson estimate, 64 probes, 1000 samples), pruned globally,
                     fine-tuned the other half
SET (uniform/ERK)    Mocanu et al. 2018, :class:`~supernet.search.creation.SET`, sparse from
                     the start, evolved every interval until 3E/4 with the RigL paper's
                     protocol for SET (drop fraction 0.3, cosine decay, regrown at zero)
RigL (uniform/ERK)   Evci et al. 2020, :class:`~supernet.search.creation.EpochRigL` with one
                     "epoch" of 100 steps (the paper's ΔT): the same schedule, regrowth by
                     gradient magnitude
==================== ========================================================================

Every structural change is an edit through the training state's
:class:`~supernet.edits.Editor`. Networks train on all the training part (``data.fit``); the
test split is only reported. Prints, per data set, a markdown table: method, level,
sparsity, weights of the final network (connections, biases not included; ``params``: with
the biases, :func:`supernet.cost.weight_count`), test accuracy
mean ± std over the seeds and the per-seed values, and which baselines (dense of the same
size, random structure of the same distribution, one-shot magnitude) a method loses to.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from structural_common import (  # noqa: I001
    RECIPE,
    accuracy,
    build,
    dense_same_size,
    load_data,
    machine_line,
    markdown_table,
    mean_std,
    recipe_for,
    set_threads,
    train,
    weight_count,
)

from supernet.cost import weight_count as param_count
from supernet.search import scores  
from supernet.search.creation import SET, EpochRigL  
from supernet.search.discretize.units import prune  
from supernet.search.progressive import GradualMagnitude, IterativeMagnitude  

SPARSITIES = (0.8, 0.9, 0.95)
INTERVAL = 100  # steps per "epoch" of the policies: RigL's ΔT
QUICK_STEPS, QUICK_INTERVAL = 100, 10  # --quick: one seed, 90% only


def _batch(x, y, n, seed):
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


class Run:
    """One method's settings for one data set, sparsity and seed."""

    def __init__(self, data, sparsity, seed, recipe, interval):
        self.data, self.s, self.seed, self.recipe, self.interval = (data, sparsity, seed,
                                                                    recipe, interval)
        self.steps = recipe.steps
        self.epochs = self.steps // interval

    def fit(self, g, net, **kw):
        return train(g, net, self.data.fit, recipe=self.recipe, seed=self.seed,
                     interval=self.interval, **kw)

    def sparse(self, dist):
        return build(self.data.sizes(), 1.0 - self.s, dist, seed=self.seed)

    def dense(self):
        return build(self.data.sizes(), seed=self.seed)


def _prune_after_half(run: Run, score, scope):
    """Dense for half the budget, prune to the sparsity, fine-tune the rest, one schedule."""
    g, net = run.dense()
    half = run.steps // 2
    r = run.fit(g, net, steps=half, lr_steps=(0, run.steps))
    for edit in prune(g, score(net), run.s, scope=scope):
        r.state.editor.apply(edit)
    train(g, net, run.data.fit, steps=run.steps - half, recipe=run.recipe,
          seed=run.seed + 1000, interval=run.interval, lr_steps=(half, run.steps),
          state=r.state)
    return g, net


def m_dense(run):
    g, net = run.dense()
    run.fit(g, net)
    return g, net


def m_dense_same_size(run):
    full = weight_count(run.dense()[0])
    sizes = dense_same_size(run.data.sizes(), full - round(run.s * full))
    g, net = build(sizes, seed=run.seed)
    run.fit(g, net)
    return g, net


def _static(dist):
    def method(run):
        g, net = run.sparse(dist)
        run.fit(g, net)
        return g, net
    return method


def m_one_shot(run):
    return _prune_after_half(run, scores.magnitude, "layer")


def m_obd(run):
    batch = _batch(*run.data.fit, 1000, run.seed)
    return _prune_after_half(run, lambda net: scores.obd(net, batch, samples=64,
                                                         seed=run.seed), "global")


def m_snip(run):
    g, net = run.dense()
    batch = _batch(*run.data.fit, run.recipe.batch_size, run.seed)
    editor_run = run.fit(g, net, steps=0)
    for edit in prune(g, scores.snip(net, batch), run.s, scope="global"):
        editor_run.state.editor.apply(edit)
    run.fit(g, net, state=editor_run.state)
    return g, net


def m_imp(run):
    g, net = run.dense()
    e = run.epochs
    run.fit(g, net, policies=[IterativeMagnitude(run.s, rounds=5, start=max(1, e // 4),
                                                 interval=max(1, e // 10))])
    return g, net


def m_gradual(run):
    g, net = run.dense()
    e = run.epochs
    start = max(1, e // 8)
    run.fit(g, net, policies=[GradualMagnitude(run.s, start=start, interval=1,
                                               steps=max(1, 3 * e // 4 - start))])
    return g, net


def _dst(policy_cls, dist):
    def method(run):
        g, net = run.sparse(dist)
        end = max(1, 3 * run.epochs // 4)
        if policy_cls is SET:
            policy = SET(zeta=0.3, interval=1, end=end, decay="cosine", init="zero",
                         seed=run.seed)
        else:
            # one "epoch" of train() is 100 steps: every epoch is the paper's ΔT = 100
            policy = EpochRigL(alpha=0.3, interval=1, end=end)
        run.fit(g, net, policies=[policy])
        return g, net
    return method


#: name -> method(run) -> (graph, trained module)
METHODS = {
    "dense, same size": m_dense_same_size,
    "random (uniform)": _static("uniform"),
    "random (ERK)": _static("erk"),
    "one-shot magnitude": m_one_shot,
    "IMP": m_imp,
    "gradual magnitude": m_gradual,
    "SNIP": m_snip,
    "OBD": m_obd,
    "SET (uniform)": _dst(SET, "uniform"),
    "SET (ERK)": _dst(SET, "erk"),
    "RigL (uniform)": _dst(EpochRigL, "uniform"),
    "RigL (ERK)": _dst(EpochRigL, "erk"),
}
BASELINES = ("dense, same size", "random (uniform)", "random (ERK)", "one-shot magnitude")


_DATA: dict = {}


def run_task(task) -> dict:
    """One network: ``(data name, method, sparsity, seed, recipe or None, interval)`` ->
    its test accuracy and weight count (a process-pool worker: one thread)."""
    name, method, sparsity, seed, recipe, interval = task
    set_threads(1)
    if name not in _DATA:
        _DATA[name] = load_data(name)
    data, recipe = _DATA[name], recipe or recipe_for(name)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    fn = m_dense if method == "dense" else METHODS[method]
    g, net = fn(Run(data, sparsity, seed, recipe, interval))
    return {"data": name, "method": method, "sparsity": sparsity, "seed": seed,
            "acc": accuracy(net, data.test), "weights": weight_count(g),
            "params": param_count(net),
            "steps": recipe.steps, "seconds": time.perf_counter() - t0}


def collect(results, name) -> list[dict]:
    """Per (method, sparsity) of data set ``name``: accuracies by seed and weight counts, in
    the table's order."""
    rows: dict = {}
    for r in sorted((r for r in results if r["data"] == name), key=lambda r: r["seed"]):
        row = rows.setdefault((r["method"], r["sparsity"]),
                              {"method": r["method"], "sparsity": r["sparsity"], "accs": [],
                               "weights": set(), "params": set(), "seconds": 0.0})
        row["accs"].append(r["acc"])
        row["weights"].add(r["weights"])
        row["params"].add(r.get("params", -1))
        row["seconds"] += r["seconds"]
    order = ["dense", *METHODS]
    out = sorted(rows.values(), key=lambda r: (r["method"] != "dense", r["sparsity"],
                                               order.index(r["method"])))
    for r in out:
        r["weights"], r["params"] = sorted(r["weights"]), sorted(r["params"])
    return out


def _losses_to(row, rows):
    """The baselines at the same sparsity whose mean beats ``row``'s."""
    if row["method"] in ("dense",):
        return []
    mine = statistics.fmean(row["accs"])
    out = []
    for other in rows:
        if (other["sparsity"] == row["sparsity"] and other["method"] in BASELINES
                and other["method"] != row["method"]
                and statistics.fmean(other["accs"]) > mine):
            out.append(other["method"])
    return out


def table(rows) -> str:
    body = []
    for r in rows:
        lost = _losses_to(r, rows)
        body.append([r["method"], "neuron", f"{r['sparsity']:.0%}",
                     "/".join(str(w) for w in r["weights"]),
                     "/".join(str(w) for w in r["params"]), mean_std(r["accs"]),
                     ", ".join(f"{100 * a:.1f}" for a in r["accs"]),
                     "loses to " + ", ".join(lost) if lost else "-"])
    return markdown_table(["method", "level", "sparsity", "weights", "params", "test acc. (%)",
                           "per seed", "vs. baselines"], body)


def rigl_claim(rows) -> list[str]:
    """The RigL paper's claim: at 90% sparsity within 1 point of the dense network."""
    dense = statistics.fmean(next(r for r in rows if r["method"] == "dense")["accs"])
    out = []
    for r in rows:
        if r["method"].startswith("RigL") and r["sparsity"] == 0.9:
            gap = 100 * (dense - statistics.fmean(r["accs"]))
            out.append(f"{r['method']} at 90%: {gap:+.1f} points below dense -> claim (within "
                       f"1 point) {'holds' if gap <= 1.0 else 'does not hold'}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", choices=["mnist1d", "digits", "both"], default="both")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated subset of {list(METHODS)}")
    parser.add_argument("--steps", type=int, default=None, help="override the budget")
    parser.add_argument("--sparsities", default=None,
                        help="comma-separated subset of 0.8,0.9,0.95")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes, one thread each (accuracies do not depend on it)")
    parser.add_argument("--out", default=None, help="append every result to this JSONL file")
    parser.add_argument("--table-from", default=None,
                        help="print the tables of a JSONL file of results, train nothing")
    args = parser.parse_args(argv)
    set_threads(1)
    recipe, interval = None, INTERVAL  # None: each data set's budget (STEPS)
    methods, sparsities = list(METHODS), SPARSITIES
    if args.quick:
        recipe, interval = replace(RECIPE, steps=QUICK_STEPS), QUICK_INTERVAL
        args.seeds, sparsities = 1, (0.9,)
    if args.steps:
        recipe = replace(recipe or RECIPE, steps=args.steps)
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",")]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            parser.error(f"unknown methods {unknown}; choose among {list(METHODS)}")
    if args.sparsities:
        sparsities = tuple(float(x) for x in args.sparsities.split(","))
    names = ["mnist1d", "digits"] if args.data == "both" else [args.data]
    print(machine_line())
    t0 = time.perf_counter()
    if args.table_from:
        with open(args.table_from) as f:
            results = [json.loads(line) for line in f if line.strip()]
    else:
        tasks = [(name, m, s, seed, recipe, interval) for name in names for seed in
                 range(args.seeds) for s, ms in [(0.0, ["dense"])] +
                 [(s, methods) for s in sparsities] for m in ms]
        results = []
        if args.out and Path(args.out).exists():  # resume: what the file holds is done
            with open(args.out) as f:
                results = [json.loads(line) for line in f if line.strip()]
            done_keys = {(r["data"], r["method"], r["sparsity"], r["seed"], r["steps"])
                         for r in results}
            tasks = [t for t in tasks if (t[0], t[1], t[2], t[3], (t[4] or recipe_for(
                t[0])).steps) not in done_keys]
        out = open(args.out, "a") if args.out else None  # noqa: SIM115 (closed below)
        pool = multiprocessing.get_context("fork").Pool(args.jobs) if args.jobs > 1 else None
        done = pool.imap_unordered(run_task, tasks) if pool else map(run_task, tasks)
        for r in done:
            results.append(r)
            print(f"{r['data']} {r['method']} @ {r['sparsity']:.0%} seed {r['seed']}: "
                  f"{100 * r['acc']:.1f}% ({r['weights']} weights, {r['seconds']:.0f} s)",
                  flush=True)
            if out:
                out.write(json.dumps(r) + "\n")
                out.flush()
        if pool:
            pool.close()
        if out:
            out.close()
    shown = [r for r in results if r["sparsity"] == 0.0 or r["sparsity"] in sparsities]
    for name in names:
        rows = collect(shown, name)
        if not rows:
            continue
        steps = sorted({r["steps"] for r in results if r["data"] == name})
        print(f"\n## {name}: {(recipe or recipe_for(name)).describe()} (budget {steps} "
              f"steps), policy interval {interval} steps, seeds "
              f"{sorted({r['seed'] for r in results if r['data'] == name})}\n")
        print(table(rows))
        print()
        for line in rigl_claim(rows):
            print(line)
    print(f"\n{time.perf_counter() - t0:.0f} s in all; {machine_line()}")


if __name__ == "__main__":
    main()
