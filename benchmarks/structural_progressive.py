"""The progressive family at the channel and neuron levels against pruning baselines, at
half the parameters and the same training budget.

For each level (``channel_cnn`` on digits, ``neuron_mlp`` on MNIST-1D, units and connections
gated) and seed, every method ends at 50% of the starting network's parameters:

* ``unit_pdarts``, ``unit_sgas``, ``unit_darts_pt``, ``unit_pcdarts``, ``unit_proxyless``:
  a search of ``E`` epochs (weights on the training split, gates on the validation split),
  then ``F`` epochs of fine-tuning of the searched network with the weights it inherits;
* ``magnitude``: the same network without gates trained ``E`` epochs, pruned once to the
  same size by the global magnitude of its connections, fine-tuned ``F`` epochs;
* ``random``: the same network with connections removed at random to the same size before
  training, trained ``E + F`` epochs.

Every network trains its weights for ``E + F`` epochs on the same training split with the
same optimizer settings. The table gives, mean ± std over the seeds: the search's training
accuracy in its last epoch (the dense training accuracy for ``magnitude``), the final size
as a fraction of the starting parameters, and the test accuracy.

    PYTHONPATH=. python benchmarks/structural_progressive.py --seeds 3
    PYTHONPATH=. python benchmarks/structural_progressive.py --quick
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numpy as np
import torch

from search_spaces import create_space
from supernet import compile
from supernet.cost.units import unit_cost
from supernet.data import flatten_features, load_dataset
from supernet.edits import Editor
from supernet.search import BilevelSearch, create_strategy
from supernet.search import scores as score_fns
from supernet.search.discretize.units import prune, set_gated
from supernet.search.progressive.registry import ungate_all
from supernet.train.retrain import accuracy, train_module

METHODS = {  # strategy options (the target is added)
    "unit_pdarts": {"stages": 3},
    "unit_sgas": {"interval": 1},
    "unit_darts_pt": {"tune": 1, "order": "random", "max_batches": 1},
    "unit_pcdarts": {"k": 4},
    "unit_proxyless": {"cost_weight": 0.1},
}
BASELINES = ("magnitude", "random")


def level_setup(level: str):
    """``(graph builder, data splits)`` of a level."""

    if level == "channel":
        data = load_dataset("digits")

        def build():
            g = create_space("channel_cnn", widths=(8, 16), depths=(1, 1), in_channels=1,
                             num_classes=10, input_size=8)
            set_gated(g, connections=[(u, v) for u, v, e in g.nx.edges(data=True)
                                      if e["kind"] == "conv"])
            return g
    else:
        data = flatten_features(load_dataset("mnist1d"))

        def build():
            return create_space("neuron_mlp", in_features=40, hidden=(32, 32), num_classes=10,
                                skip_density=0.1, seed=0)
    return build, data


def params(graph) -> float:

    return float(unit_cost(graph).total.params)


def train(module, data, epochs, args, seed):

    return train_module(module, data.train, epochs=epochs, batch_size=args.batch_size,
                        lr=args.lr, seed=seed, device="cpu")


def run_method(name, build, data, args, seed) -> dict:

    graph = build()
    start = params(graph)
    # weight 0: the papers' searches, without the budget's resource term in the loss
    strategy = create_strategy(name, target={"metric": "params", "fraction": 0.5,
                                             "weight": 0.0}, **METHODS[name])
    result = BilevelSearch(graph, data.train, data.val, strategy=strategy, config={
        "epochs": args.epochs, "batch_size": args.batch_size, "w_lr": args.lr,
        "arch_lr": args.arch_lr, "seed": seed, "device": "cpu"}).run()
    search_acc = result.history[-1]["train_acc"]
    train(result.module, data, args.finetune, args, seed)
    return {"train": search_acc, "size": params(graph) / start,
            "test": accuracy(result.module, data.test)}


def _pruned_to(graph, module, scores, goal):
    """Edits removing the lowest-scored connections down to ``goal`` parameters (global,
    by bisection on the sparsity)."""

    def size_after(s):
        g = copy.deepcopy(graph)
        ed = Editor(g)
        for edit in prune(g, scores, s):
            ed.apply(edit)
        return params(g)

    lo, hi = 0.0, 1.0
    for _ in range(20):
        mid = (lo + hi) / 2
        if size_after(mid) > goal:
            lo = mid
        else:
            hi = mid
    ed = Editor(graph, module)
    for edit in prune(graph, scores, hi):
        ed.apply(edit)


def run_baseline(name, build, data, args, seed) -> dict:

    torch.manual_seed(seed)
    graph = build()
    ungate_all(graph)
    start = params(graph)
    module = compile(graph, seed=seed)
    if name == "magnitude":
        hist = train(module, data, args.epochs, args, seed).history
        dense_acc = hist[-1]["acc"]
        _pruned_to(graph, module, score_fns.magnitude(module), 0.5 * start)
        train(module, data, args.finetune, args, seed)
    else:
        rng = np.random.default_rng(seed)
        scores = {k: rng.random(len(v)) for k, v in score_fns.magnitude(module).items()}
        _pruned_to(graph, module, scores, 0.5 * start)
        hist = train(module, data, args.epochs + args.finetune, args, seed).history
        dense_acc = float("nan")
    return {"train": dense_acc, "size": params(graph) / start,
            "test": accuracy(module, data.test)}


def _fmt(values, pct=True):
    values = [v for v in values if v == v]
    if not values:
        return "–"
    scale = 100 if pct else 1
    m = statistics.mean(values) * scale
    s = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:.1f} ± {s:.1f}" if pct else f"{m:.3f} ± {s:.3f}"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8, help="search (or dense) epochs E")
    p.add_argument("--finetune", type=int, default=4, help="fine-tuning epochs F")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--arch-lr", type=float, default=0.01)
    p.add_argument("--levels", nargs="+", default=["channel", "neuron"])
    p.add_argument("--methods", nargs="+", default=[*METHODS, *BASELINES])
    p.add_argument("--train-size", type=int, default=512,
                   help="training samples used (0: all)")
    p.add_argument("--quick", action="store_true", help="a smoke run (about half a minute of one core)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.finetune, args.train_size = 1, 3, 1, 256
    torch.set_num_threads(1)
    t0 = time.time()
    results = {}
    for level in args.levels:
        build, data = level_setup(level)
        if args.train_size:
            n = args.train_size
            data.train = (data.train[0][:n], data.train[1][:n])
            data.val = (data.val[0][:n // 2], data.val[1][:n // 2])
        for name in args.methods:
            rows = []
            for seed in range(args.seeds):
                run = run_baseline if name in BASELINES else run_method
                rows.append(run(name, build, data, args, seed))
            results[(level, name)] = rows
    print(f"\n{args.seeds} seed(s); E={args.epochs} search/dense epochs + F={args.finetune} "
          f"fine-tuning epochs; {args.train_size or 'all'} training samples; target 50% of "
          f"the parameters; "
          f"{time.time() - t0:.0f} s; load average {os.getloadavg()}\n")
    print("| level | method | search train acc (%) | final size (of start) | test acc (%) |")
    print("|---|---|---|---|---|")
    for (level, name), rows in results.items():
        print(f"| {level} | {name} | {_fmt([r['train'] for r in rows])} | "
              f"{_fmt([r['size'] for r in rows], pct=False)} | "
              f"{_fmt([r['test'] for r in rows])} |")
    return results


if __name__ == "__main__":
    main()
