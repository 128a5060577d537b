"""Neuron creation at the neuron level: grow a small MLP, compare with dense networks trained
at the same budget.

Run from the repository root:

    PYTHONPATH=. python benchmarks/structural_growth.py --data mnist1d --seeds 3
    PYTHONPATH=. python benchmarks/structural_growth.py --data digits --seeds 3
    PYTHONPATH=. python benchmarks/structural_growth.py --quick     # smoke run, seconds

Every method makes the same number of optimizer steps (the recipe of
``benchmarks/structural_common.py``: Adam, lr 1e-2, cosine, batch 100, 6000 steps) on the
same data. A grown network starts at ``40-10-10-10`` (hidden widths ``--start``) and grows
each hidden layer by ``--count`` units at the ends of the intervals ``--at`` (one interval
is 100 steps), up to ``--target`` units per hidden layer (``40-50-50-10`` by default: 5 000
weights). Baselines at the same budget: the dense ``40-100-100-10`` of the MNIST-1D paper
(ReLU, its 68%, and tanh), the dense network of the final grown size trained from scratch
(the honest question: is growing better than training the final size directly?), and
growth by new units of random initialization (a random structure of the same schedule).

Growth methods (``supernet.search.creation``):

* ``net2net``: Net2WiderNet (Chen et al., 2016): units to split drawn at random (the
  paper's random mapping), copies with noise (``GrowUnits(score=random, noise=...)``); a
  growth copies each unit at most once, so keep ``--count`` at most ``--start``;
* ``splitting``: splitting steepest descent (Liu et al., 2019);
* ``firefly``: Firefly (Wu et al., 2020);
* ``gradmax``: GradMax (Evci et al., 2022).

The grown networks and ``dense-final`` use ``--act`` (tanh by default): splitting needs a
non-zero second derivative and GradMax needs ``σ(0) = 0, σ'(0) ≠ 0``, which ReLU does not
give in PyTorch; with ``--act relu`` those two are reported as not run, with the reason.
Reported: test accuracy (mean ± std over seeds), final weight count (biases not counted),
wall time. The test split is never used to choose anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import structural_common as sc

from supernet import compile as compile_graph
from supernet.edits.units import AddUnits
from supernet.search.creation import (
    Firefly,
    GradMax,
    GrowUnits,
    SplittingSteepestDescent,
)
from supernet.search.creation.widening import Widening
from supernet.units import mlp

INTERVAL = 100  # steps per "epoch" of the policies


class RandomUnits(Widening):
    """Baseline: new units with the layer's default random initialization (both fan-in and
    fan-out), on the same schedule; the function changes at every growth."""

    policy = "RandomUnits"

    def grow(self, state, layer, count):
        res = state.editor.apply(AddUnits(layer.node, count=count, init="random",
                                          seed=len(self.grown)))
        return {"created": res.report["created"][layer.node].tolist()}


def random_scores(seed: int):
    """Net2WiderNet's random mapping: every unit equally likely to be split."""
    rng = np.random.default_rng(seed)

    def score(state):
        return {n: rng.random(len(state.graph.node(n)["units"]))
                for n in ("h1", "h2") if n in state.graph.nx}
    return score


def network(sizes, act, seed):
    g = mlp(list(sizes), act=act, seed=seed)
    return g, compile_graph(g, seed=seed, kernel="dense")


def growth_policy(name, args, seed):
    at = list(args.at)
    common = {"count": args.count, "at": at}
    target = {"h1": args.target, "h2": args.target}
    if name == "net2net":
        return GrowUnits(score=random_scores(seed), noise=args.noise, **common)
    if name == "random":
        return RandomUnits(max_units=target, **common)
    if name == "splitting":
        return SplittingSteepestDescent(max_units=target, epsilon=args.epsilon, **common)
    if name == "firefly":
        return Firefly(max_units=target, epsilon=args.epsilon, steps=args.firefly_steps,
                       seed=seed, **common)
    if name == "gradmax":
        return GradMax(max_units=target, **common)
    raise ValueError(name)


def run_one(method, data, args, recipe, seed):
    """Train one network of ``method``; returns (test accuracy, weights, seconds, widths)."""
    torch.manual_seed(seed)
    start, hidden = time.perf_counter(), None
    policies = []
    if method == "dense-100 relu":
        hidden, act = (100, 100), "relu"
    elif method == "dense-100 tanh":
        hidden, act = (100, 100), "tanh"
    elif method == "dense-final":
        hidden, act = (args.target, args.target), args.act
    else:
        hidden, act = (args.start, args.start), args.act
        policies = [growth_policy(method, args, seed)]
    g, net = network(data.sizes(hidden), act, seed)
    sc.train(g, net, data.fit, recipe=recipe, seed=seed, policies=policies,
             interval=INTERVAL)
    acc = sc.accuracy(net, data.test)
    widths = tuple(len(g.node(n)["units"]) for n in ("h1", "h2"))
    return acc, sc.weight_count(g), time.perf_counter() - start, widths


GROWN = ["net2net", "splitting", "firefly", "gradmax", "random"]
BASELINES = ["dense-100 relu", "dense-100 tanh", "dense-final"]
#: What each method needs of the activation (``None``: any).
NEEDS = {"splitting": ("relu", "ReLU has a zero second derivative: every splitting matrix is 0"),
         "gradmax": ("relu", "ReLU has act'(0) = 0 in PyTorch: zero fan-in never moves")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["mnist1d", "digits"], default="mnist1d")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 steps, 1 seed")
    parser.add_argument("--start", type=int, default=10, help="starting hidden width")
    parser.add_argument("--target", type=int, default=50, help="final hidden width (at most)")
    parser.add_argument("--count", type=int, default=10, help="units per layer per growth")
    parser.add_argument("--at", type=int, nargs="+", default=[5, 10, 15, 20],
                        help="intervals (of 100 steps) at whose end to grow")
    parser.add_argument("--epsilon", type=float, default=0.1, help="split / Firefly step")
    parser.add_argument("--noise", type=float, default=0.01, help="Net2Net noise std")
    parser.add_argument("--firefly-steps", type=int, default=10)
    parser.add_argument("--act", default="tanh",
                        help="activation of the grown networks and of dense-final")
    parser.add_argument("--methods", nargs="+", default=BASELINES + GROWN)
    args = parser.parse_args(argv)
    if "net2net" in args.methods and args.count > args.start:
        parser.error(f"--count {args.count} > --start {args.start}: a Net2Net growth copies "
                     "each unit at most once, so the first growth would add fewer units")
    skipped = {m: why for m, (act, why) in NEEDS.items() if args.act == act}
    args.methods = [m for m in args.methods if m not in skipped]
    sc.set_threads()
    recipe = sc.RECIPE
    if args.quick:
        recipe, args.seeds, args.at = sc.quick(recipe, 400), 1, [1, 2]
    data = sc.load_data(args.data)
    print(f"# Neuron growth on {args.data}\n")
    print(sc.machine_line())
    print(f"\nrecipe: {recipe.describe()}; growth: {args.start} -> at most {args.target} "
          f"units per hidden layer, {args.count} per layer at the ends of steps "
          f"{[a * INTERVAL for a in args.at]}; activation of the grown networks and of "
          f"dense-final: {args.act}; {args.seeds} seed(s)\n")
    results = {m: [] for m in args.methods}
    for seed in range(args.seeds):  # methods alternate within each seed
        for m in args.methods:
            results[m].append(run_one(m, data, args, recipe, seed))
            acc, w, t, widths = results[m][-1]
            print(f"  seed {seed} {m}: {100 * acc:.1f}% {w} weights {widths} {t:.1f}s",
                  file=sys.stderr)
    rows = []
    for m in args.methods:
        accs = [r[0] for r in results[m]]
        weights = [r[1] for r in results[m]]
        widths = sorted({r[3] for r in results[m]})
        rows.append([m, sc.mean_std(accs), f"{np.mean(weights):.0f}",
                     " / ".join(f"{a}-{b}" for a, b in widths),
                     f"{np.median([r[2] for r in results[m]]):.1f}"])
    rows += [[m, f"not run: {why}", "", "", ""] for m, why in skipped.items()]
    print(sc.markdown_table(["method", "test accuracy (%)", "weights", "final hidden widths",
                             "median s / run"], rows))
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return results


if __name__ == "__main__":
    main()
