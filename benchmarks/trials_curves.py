"""Search curves of the multi-trial strategies on NAS-Bench-Graph.

Run from the repository root:

    PYTHONPATH=. python benchmarks/trials_curves.py               # full run (10 seeds)
    PYTHONPATH=. python benchmarks/trials_curves.py --quick       # smoke run (seconds)
    PYTHONPATH=. python benchmarks/trials_curves.py --seeds 20 --datasets cora,pubmed

For each data set (``--datasets``, default cora and citeseer) the ``gnn`` super-network of
the benchmark (``create_space(bench.space, **bench.space_options)``) is searched by every
strategy of ``supernet.trials`` (random, evolution, local, predictor, and optuna's TPE when
Optuna is installed), one run per seed, each architecture evaluated by a look-up
(``supernet.trials.tabular(bench)``). A query is one distinct architecture of the table:
strategies are built with ``identity=bench.key``, so isomorphic DAGs (one table entry)
are never queried twice, and ``accept=bench.__contains__``, so the choices the table does
not hold (the all-``skip`` DAGs) are never proposed as queries.

Two tables per data set. First, the search objective: the **best validation accuracy**
among the first ``n`` queries. Second, the convention of the NAS benchmarks: the **test
accuracy of the architecture of best validation accuracy among the first n queries** (what
a user who selects on the validation split would keep), not the best test accuracy seen.
Each cell is mean ± std over the seeds, in %. The ceiling row is the same quantity for the
whole table (the benchmark's best-validation architecture), and the best test accuracy of
any architecture is printed under the second table. The last column is the median wall time of one run at the largest budget.
Everything is measured in this run; ``os.getloadavg()`` is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from supernet.spaces import create_space
from supernet.tabular import load_benchmark
from supernet.trials import run_trials, tabular, trial_strategy

STRATEGIES = ("random", "evolution", "local", "predictor", "optuna")


def _optuna_available() -> bool:
    try:
        import optuna
    except ImportError:
        return False
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return True


def _cell(values) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def run_dataset(dataset: str, strategies, budgets, seeds: int, options: dict) -> dict:
    """``{strategy: {"curves": [[test acc at each budget] per seed], "seconds": [...]}}``
    and the ceilings of the table."""
    bench = load_benchmark(f"nas-bench-graph:{dataset}")
    graph = create_space(bench.space, **bench.space_options)
    evaluate = tabular(bench)
    top = max(budgets)
    out = {"ceiling": bench.best()[1]["test_accuracy"],
           "val_ceiling": bench.best()[1]["val_accuracy"],
           "best_test": bench.best("test_accuracy")[1]["test_accuracy"], "size": len(bench)}
    for name in strategies:
        curves, vals, seconds = [], [], []
        for seed in range(seeds):
            start = time.perf_counter()
            strategy = trial_strategy(name, graph, seed=seed, identity=bench.key,
                                      accept=bench.__contains__, **options.get(name, {}))
            history = run_trials(strategy, evaluate, top, seed=seed)
            seconds.append(time.perf_counter() - start)
            test, val = history.curve("test_accuracy"), history.curve()
            curves.append([test[b - 1] for b in budgets])
            vals.append([val[b - 1] for b in budgets])
        out[name] = {"curves": curves, "val": vals, "seconds": seconds}
    return out


def table(dataset: str, result: dict, strategies, budgets, which: str = "curves") -> str:
    """One markdown table: ``which`` is ``"curves"`` (test accuracy of the best-validation
    architecture found) or ``"val"`` (the best validation accuracy found)."""
    what = ("test accuracy % of the best-validation architecture found" if which == "curves"
            else "best validation accuracy % found (the search objective)")
    head = ["strategy", *[f"{b} queries" for b in budgets], "s / run"]
    title = (f"**{dataset}** ({result['size']} architectures; {what}, mean ± std over "
             "seeds)")
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in strategies:
        curves = result[name][which]
        cells = [_cell([c[i] for c in curves]) for i in range(len(budgets))]
        secs = statistics.median(result[name]["seconds"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {secs:.1f} |")
    top = result["ceiling" if which == "curves" else "val_ceiling"]
    lines.append("| ceiling (table's best-validation architecture) | "
                 + " | ".join([f"{100 * top:.2f}"] * len(budgets)) + " | |")
    if which == "curves":
        lines.append("")
        lines.append(f"Best test accuracy of any architecture in the table: "
                     f"{100 * result['best_test']:.2f}.")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: cora, 2 seeds, 20 queries")
    p.add_argument("--seeds", type=int, default=None, help="runs per strategy (default 10)")
    p.add_argument("--datasets", default="cora,citeseer")
    p.add_argument("--budgets", default="10,20,50,100,200")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    datasets = args.datasets.split(",")
    budgets = sorted(int(b) for b in args.budgets.split(","))
    seeds = args.seeds or 10
    strategies = [s for s in args.strategies.split(",") if s]
    options = {}
    if args.quick:
        datasets, budgets, seeds = datasets[:1], [10, 20], args.seeds or 2
        options = {"predictor": {"initial": 10, "epochs": 20, "ensemble": 1}}
    if "optuna" in strategies and not _optuna_available():
        strategies.remove("optuna")
        print("optuna is not installed: its column is left out (pip install supernet[optuna])")
    print(f"command: {' '.join(['python', 'benchmarks/trials_curves.py', *(argv or sys.argv[1:])])}")
    print(f"load average before: {os.getloadavg()}")
    results = {}
    for dataset in datasets:
        results[dataset] = run_dataset(dataset, strategies, budgets, seeds, options)
        for which in ("val", "curves"):
            print()
            print(table(dataset, results[dataset], strategies, budgets, which))
    print()
    print(f"seeds: {seeds}; load average after: {os.getloadavg()}")
    return results


if __name__ == "__main__":
    main()
