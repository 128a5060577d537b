"""Neuron creation at the neuron level (Net2DeeperNet, NORTH*, NeST) against baselines.

Run from the repository root:

    PYTHONPATH=. python benchmarks/structural_growprune.py                 # both data sets
    PYTHONPATH=. python benchmarks/structural_growprune.py --data mnist1d --seeds 3
    PYTHONPATH=. python benchmarks/structural_growprune.py --quick         # smoke run

The reference is the MNIST-1D paper's MLP, dense 40-100-100-10 (64 inputs for digits).
Every method makes the same number of optimizer steps in all (``RECIPE.steps`` of
``benchmarks/structural_common.py``, or ``--steps``), with one cosine schedule over them;
the policies act every interval of 100 steps (``E`` intervals in all):

=========================== ===================================================================
dense reference (100-100)   40-100-100-10, trained the whole budget
dense 100 (Net2Deeper seed) 40-100-10, Net2DeeperNet's seed, trained the whole budget
Net2DeeperNet               40-100-10, at E/3 an identity-initialized ReLU layer of 100 goes
                            under the head (:class:`~supernet.search.creation.GrowDeeper`),
                            then trained on: the final structure is the reference's
NORTH*                      40-10-10-10, the trigger checked every interval up to 2E/3, at
                            most 100 per layer (:class:`~supernet.search.creation.NORTH`,
                            ``γ = 0.9``, NORTH-Select with 10 extra candidates)
dense, NORTH's final widths the network NORTH* ends with, dense, trained from scratch
NeST                        seed 40-20-20-10 at 20% density; growth at every interval up to
                            E/3 (connections +50% of each block, 6 neurons per hidden layer,
                            at most 12000 connections), pruning every interval from E/2 to
                            3E/4 to 3000 connections
                            (:class:`~supernet.search.creation.NeST`), then trained on
dense, same size as NeST    the dense MLP of the same depth nearest NeST's final weight count
random, NeST's structure    NeST's final widths and per-block connection counts, random masks,
                            trained from scratch
magnitude pruning           the dense reference pruned per layer by ``|w|`` to NeST's final
                            count on NeST's pruning schedule (E/2 to 3E/4)
=========================== ===================================================================

Every structural change is an edit through the training state's
:class:`~supernet.edits.Editor`. Networks train on the whole training part (``data.fit``);
the test split is only reported. Prints per data set a markdown table: method, final
structure (widths of the first seed), weights (connections, biases not included; mean over
seeds), test accuracy mean ± std over the seeds and the per-seed values, and whether the
growth reached the dense reference's accuracy with fewer weights.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from structural_common import (  # noqa: E402
    RECIPE,
    accuracy,
    build,
    dense_same_size,
    load_data,
    machine_line,
    markdown_table,
    mean_std,
    set_threads,
    train,
    weight_count,
)

from supernet import compile as compile_graph  # noqa: E402
from supernet.search.base import CreationPolicy  # noqa: E402
from supernet.search.creation import NORTH, GrowDeeper, NeST  # noqa: E402
from supernet.search.discretize.units import prune  # noqa: E402
from supernet.search.scores import magnitude  # noqa: E402
from supernet.units import add_group, add_input, connect  # noqa: E402
from supernet.units.masks import random_mask  # noqa: E402

INTERVAL, QUICK_INTERVAL, QUICK_STEPS = 100, 20, 200
NEST_FINAL, NEST_GROW_TO = 3000, 12000


def widths(graph) -> list[int]:
    """Input, hidden and output widths of an MLP graph, in order."""
    return [len(graph.node(n)["units"]) for n in graph.topological_order()]


def schedule(epochs: int) -> dict:
    """The growth schedules in intervals (see the module docstring)."""
    third, half, three_q = max(1, epochs // 3), max(2, epochs // 2), max(3, 3 * epochs // 4)
    return {"deeper_at": third, "north_end": max(1, 2 * epochs // 3),
            "nest_grow": list(range(1, third + 1)),
            "nest_prune": list(range(max(half, third + 1), max(three_q, third + 2) + 1))}


class MagnitudePrune(CreationPolicy):
    """Per-layer magnitude pruning to ``target`` connections on ``at`` (an equal share of
    what is above the target at each), as NeST's pruning phase without its growth."""

    def __init__(self, at, target):
        self.at, self.target = sorted(at), int(target)

    def on_epoch_end(self, state):
        if state.epoch not in self.at:
            return
        now = weight_count(state.graph)
        left = len(self.at) - self.at.index(state.epoch)
        goal = now - math.ceil((now - self.target) / left)
        if goal < now:
            for edit in prune(state.graph, magnitude(state.module), 1 - goal / now,
                              "connections", scope="layer"):
                state.editor.apply(edit)


def random_like(graph, seed: int):
    """A fresh MLP with ``graph``'s widths and per-block connection counts, random masks."""
    from supernet import Graph

    w = widths(graph)
    names = graph.topological_order()
    g = Graph("neuron", name="random")
    add_input(g, "x", w[0])
    rng = np.random.default_rng(seed)
    for i in range(1, len(w)):
        add_group(g, names[i], w[i], act="relu" if i < len(w) - 1 else "identity")
        nnz = graph.edge(names[i - 1], names[i])["mask"].nnz
        connect(g, names[i - 1], names[i], density=nnz / (w[i] * w[i - 1]),
                seed=int(rng.integers(2**31)))
    g.set_outputs([names[-1]])
    return g, compile_graph(g, seed=seed, kernel="dense")


def run_seed(data, seed: int, recipe, interval: int) -> dict:
    """Every method on one seed: ``{method: (accuracy, weights, widths)}``."""
    steps = recipe.steps
    epochs = steps // interval
    sch = schedule(epochs)
    n_in, n_out = data.n_in, data.n_classes
    out = {}

    def fit(g, net, policies=()):
        train(g, net, data.fit, steps=steps, recipe=recipe, seed=seed, policies=policies,
              interval=interval)
        return accuracy(net, data.test), weight_count(g), widths(g)

    out["dense reference (100-100)"] = fit(*build([n_in, 100, 100, n_out], seed=seed))
    out["dense 100 (Net2Deeper seed)"] = fit(*build([n_in, 100, n_out], seed=seed))
    out["Net2DeeperNet"] = fit(*build([n_in, 100, n_out], seed=seed),
                               [GrowDeeper(at=sch["deeper_at"])])
    north = NORTH(gamma=0.9, candidates=10, max_width=100, end=sch["north_end"])
    out["NORTH*"] = fit(*build([n_in, 10, 10, n_out], seed=seed), [north])
    out["dense, NORTH's final widths"] = fit(*build(out["NORTH*"][2], seed=seed))
    g, net = build([n_in, 20, 20, n_out], density=0.2, seed=seed)
    nest = NeST(grow_at=sch["nest_grow"], prune_at=sch["nest_prune"],
                prune_to=NEST_FINAL if steps > QUICK_STEPS else 500, grow_to=NEST_GROW_TO, connections=0.5, neurons=6)
    out["NeST"] = fit(g, net, [nest])
    nest_weights = out["NeST"][1]
    out["dense, same size as NeST"] = fit(*build(dense_same_size([n_in, 100, 100, n_out],
                                                                 nest_weights), seed=seed))
    out["random, NeST's structure"] = fit(*random_like(g, seed))
    out["magnitude pruning"] = fit(*build([n_in, 100, 100, n_out], seed=seed),
                                   [MagnitudePrune(sch["nest_prune"], nest_weights)])
    return out


def table(results: list[dict]) -> tuple[str, list[str]]:
    """The markdown table over seeds, and the verdict lines."""
    methods = list(results[0])
    rows, ref = [], results[0]["dense reference (100-100)"]
    accs = {m: [r[m][0] for r in results] for m in methods}
    weights = {m: statistics.fmean(r[m][1] for r in results) for m in methods}
    ref_acc, ref_w = statistics.fmean(accs["dense reference (100-100)"]), ref[1]
    for m in methods:
        rows.append([m, "-".join(map(str, results[0][m][2])), f"{weights[m]:.0f}",
                     f"{weights[m] / ref_w:.0%}", mean_std(accs[m]),
                     " ".join(f"{100 * a:.1f}" for a in accs[m])])
    verdicts = []
    for m, base in (("Net2DeeperNet", "dense reference (100-100)"),
                    ("NORTH*", "dense, NORTH's final widths"),
                    ("NeST", "dense, same size as NeST")):
        a, b = statistics.fmean(accs[m]), statistics.fmean(accs[base])
        reached = a >= ref_acc and weights[m] < ref_w
        verdicts.append(
            f"- {m}: {100 * a:.1f}% with {weights[m]:.0f} weights; the dense reference "
            f"{100 * ref_acc:.1f}% with {ref_w}: goal (reference accuracy with fewer weights) "
            f"{'reached' if reached else 'not reached'}; against {base} trained from scratch "
            f"({100 * b:.1f}%) growth {'wins' if a > b else 'loses'} by {100 * abs(a - b):.1f} "
            "points")
    header = ["method", "final structure (seed 0)", "weights", "of reference",
              "test acc % (mean ± std)", "per seed"]
    return markdown_table(header, rows), verdicts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", choices=["mnist1d", "digits", "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="override the budget")
    args = parser.parse_args(argv)
    set_threads(1)
    recipe, interval = RECIPE, INTERVAL
    if args.quick:
        recipe, interval = replace(RECIPE, steps=QUICK_STEPS), QUICK_INTERVAL
        args.seeds = min(args.seeds, 1)
    if args.steps:
        recipe = replace(recipe, steps=args.steps)
    names = ["mnist1d", "digits"] if args.data == "both" else [args.data]
    print(machine_line())
    print(f"recipe: {recipe.describe()}; policies every {interval} steps")
    t0 = time.perf_counter()
    for name in names:
        data = load_data(name)
        results = []
        for seed in range(args.seeds):
            t = time.perf_counter()
            results.append(run_seed(data, seed, recipe, interval))
            print(f"{name} seed {seed}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
        text, verdicts = table(results)
        print(f"\n### {name} ({args.seeds} seeds, {recipe.steps} steps each)\n")
        print(text)
        print()
        print("\n".join(verdicts))
    print(f"\n{time.perf_counter() - t0:.0f} s in all; {machine_line()}")


if __name__ == "__main__":
    main()
