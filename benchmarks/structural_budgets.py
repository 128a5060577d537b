"""Unit-level searches under a size target, beside magnitude pruning and random structures
of the same size at the same training budget.

For each level (``channel_cnn`` on 8x8 digits, ``neuron_mlp`` on MNIST-1D), each
unit-level strategy and each target (a fraction of the full super-network's parameters),
over ``--seeds`` seeds: search with ``strategy.target`` (search epochs ``--search-epochs``),
keep the discretized network, retrain it from scratch (``supernet.train.retrain``,
``--train-epochs`` on the weights' half of the training data) and measure it on the test
split. Baselines at the same size and the same retraining:

* ``magnitude``: the dense network trained for the search epochs, then its blocks pruned
  layer-wise by magnitude to the sparsity that meets the target (``gradual_magnitude``
  with one step at the end), retrained from scratch;
* ``random``: the super-network's gated units and connections ranked at random, and the
  best-ranked kept to the target (the same decision as the searches', on random scores).

Columns: the search's train accuracy at its last epoch (``-`` for ``random``, which does
not train before retraining), the target and the final parameter count, their relative
error, and the test accuracy after retraining; mean ± std over the seeds.

    PYTHONPATH=. python benchmarks/structural_budgets.py            # the full run
    PYTHONPATH=. python benchmarks/structural_budgets.py --quick    # a smoke run

``--learning`` measures instead, without a target, the train accuracy per search epoch of
each strategy with the keep/drop gates started at keep = drop (``keep_init: null``, the
compiled start) and at the default keep probability 0.9.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch

STRATEGIES = {
    "darts": {},
    "fairdarts": {},
    "snas": {},
    "gdas": {},
    "spos": {"population": 8, "iterations": 2, "topk": 3, "bn_batches": 2, "val_batches": 2},
    "progressive_gates": {"warmup": 1, "decisions": 2},
    "magnitude": {},  # gradual_magnitude, one step at the end: the baseline
    "random": {},
}

LEVELS = {
    "channel_cnn": ("digits", {"widths": (16, 32), "depths": (1, 1)}),
    "neuron_mlp": ("mnist1d", {"hidden": (64, 64)}),
}


def _space_on_data(level: str):
    """``(data, graph)``: the data set of ``level`` (half of its training part held out)
    and the space built for it (its input and class counts taken from the data)."""
    from search_spaces import create_space
    from supernet.data import flatten_features, load_dataset

    data_name, options = LEVELS[level]
    data = load_dataset(data_name, val_fraction=0.5, seed=0)
    if level == "neuron_mlp":
        data = flatten_features(data)
        options = {**options, "in_features": data.shape[0]}
    else:
        options = {**options, "in_channels": data.in_channels, "input_size": list(data.shape[1:])}
    return data, create_space(level, num_classes=data.num_classes, **options)


def _search_config(args, seed):
    return {"epochs": args.search_epochs, "batch_size": 64, "arch_lr": 3e-3, "seed": seed,
            "steps_per_epoch": args.steps}


def run_one(level: str, strategy: str, fraction: float, seed: int, args) -> dict:
    from supernet import compile
    from supernet.cost.units import unit_cost
    from supernet.edits import Editor
    from supernet.search import BilevelSearch, create_strategy
    from supernet.search.budget import Budget
    from supernet.search.choices.units import UnitChoiceSpace
    from supernet.search.discretize.layer import discretize
    from supernet.train.retrain import accuracy, retrain

    data, graph = _space_on_data(level)
    full = unit_cost(graph).total.params
    target = {"metric": "params", "fraction": fraction}
    torch.manual_seed(seed)
    search_acc = None
    if strategy == "random":
        net = compile(graph, seed=seed)
        model = Budget(**target).resolve(graph, net)
        net.budget = model
        space = UnitChoiceSpace(graph, net)
        scores = np.random.default_rng(seed).random(space.size)
        discretize(graph, net, Editor(graph, net), choice=model.decide(space, scores))
    else:
        name, opts = strategy, dict(STRATEGIES[strategy])
        if strategy == "magnitude":
            name = "gradual_magnitude"
            opts = {"start": args.search_epochs, "steps": 1}
        s = create_strategy(name, target=target, **opts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = BilevelSearch(graph, data.train, data.val, strategy=s,
                                   config=_search_config(args, seed)).run()
        graph = result.graph
        search_acc = result.history[-1]["train_acc"]
    params = unit_cost(graph).total.params
    trained = retrain(graph, data.train, None, epochs=args.train_epochs, batch_size=64,
                      lr=0.05, seed=seed)
    return {"search_acc": search_acc, "target": fraction * full, "params": params,
            "rel_error": params / (fraction * full) - 1,
            "test_acc": accuracy(trained.module, data.test)}


def learning_row(level: str, strategy: str, keep_init, seed: int, args) -> list:
    from supernet.search import BilevelSearch, create_strategy

    data, graph = _space_on_data(level)
    name = "gradual_magnitude" if strategy == "magnitude" else strategy
    opts = {} if strategy == "magnitude" else dict(STRATEGIES[strategy])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = BilevelSearch(graph, data.train, data.val,
                               strategy=create_strategy(name, **opts),
                               config={**_search_config(args, seed), "keep_init": keep_init}
                               ).run()
    return [h["train_acc"] for h in result.history], result.history[-1]["chance_acc"]


def learning(args) -> None:
    print("| level | strategy | keep_init | train acc per search epoch (%) | chance (%) |")
    print("|---|---|---|---|---|")
    for level in args.levels:
        for strategy in [s for s in args.strategies if s != "random"]:
            for keep_init in (None, 0.9):
                runs = [learning_row(level, strategy, keep_init, seed, args)
                        for seed in range(args.seeds)]
                curves = list(zip(*[r[0] for r in runs]))
                cells = " ".join(_ms(list(c), True).split(" ±")[0] for c in curves)
                print(f"| {level} | {strategy} | {keep_init} | {cells} | "
                      f"{100 * statistics.mean(r[1] for r in runs):.1f} |", flush=True)


def _ms(values, pct=False):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    k = 100.0 if pct else 1.0
    m = statistics.mean(values) * k
    s = statistics.stdev(values) * k if len(values) > 1 else 0.0
    return f"{m:.1f} ± {s:.1f}" if pct else f"{m:.0f} ± {s:.0f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--search-epochs", type=int, default=6)
    p.add_argument("--train-epochs", type=int, default=10)
    p.add_argument("--steps", type=int, default=None, help="cap on steps per search epoch")
    p.add_argument("--levels", nargs="*", default=list(LEVELS))
    p.add_argument("--strategies", nargs="*", default=list(STRATEGIES))
    p.add_argument("--fractions", nargs="*", type=float, default=[0.5, 0.25])
    p.add_argument("--learning", action="store_true",
                   help="train accuracy per epoch at keep_init null and 0.9, no target")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.quick:
        args.seeds, args.search_epochs, args.train_epochs, args.steps = 1, 1, 1, 2
        args.strategies = ["darts", "gdas", "magnitude", "random"]
        args.fractions = [0.5]
    t0 = time.perf_counter()
    print(f"load average at start: {os.getloadavg()}")
    print(f"search {args.search_epochs} epochs (batch 64, arch lr 3e-3), retrain "
          f"{args.train_epochs} epochs (batch 64, lr 0.05), {args.seeds} seed(s); target: "
          "parameters\n")
    if args.learning:
        learning(args)
        print(f"load average at end: {os.getloadavg()}; {time.perf_counter() - t0:.0f} s")
        return
    for level in args.levels:
        print(f"### {level} / {LEVELS[level][0]}\n")
        print("| strategy | target | search train acc (%) | target params | final params | "
              "rel. error (%) | test acc (%) |")
        print("|---|---|---|---|---|---|---|")
        for fraction in args.fractions:
            for strategy in args.strategies:
                rows = [run_one(level, strategy, fraction, seed, args)
                        for seed in range(args.seeds)]
                print(f"| {strategy} | {fraction:g} | {_ms([r['search_acc'] for r in rows], True)}"
                      f" | {statistics.mean(r['target'] for r in rows):.0f}"
                      f" | {_ms([r['params'] for r in rows])}"
                      f" | {_ms([r['rel_error'] for r in rows], True)}"
                      f" | {_ms([r['test_acc'] for r in rows], True)} |", flush=True)
        print()
    print(f"load average at end: {os.getloadavg()}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
