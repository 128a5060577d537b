"""Exact SNAS and GDAS against their simplified variants and random architectures, on
MNIST-1D at equal training budget.

Searches of the 1-D DARTS cell space (``darts1d``) on MNIST-1D's training signals, per
search seed:

* ``snas``: SNAS as its paper and code (single level, the authors' temperature schedule);
* ``gumbel_softmax_bilevel``: the simplified variant (α on the validation half, τ 1 -> 0.33);
* ``gdas``: GDAS with every gate's straight-through scalar (the authors' final code);
* ``gdas_v1``: GDAS without the unsampled scalars (the authors' v1);

then every genotype, searched or ``--random`` (drawn uniformly under the same constraints,
:func:`search_evidence.random_genotype`), is trained from scratch as the same evaluation
network with the same budget (:func:`search_evidence.train_job`: all 4000 training signals,
``--epochs``, SGD) and measured on the 1000 test signals. The tables give the mean ± std over
the search seeds (random: over the draws) and the load average of the machine.

    PYTHONPATH=. python benchmarks/snas_gdas.py --seeds 3 --search-epochs 10 --epochs 10
    PYTHONPATH=. python benchmarks/snas_gdas.py --quick   # a smoke run (about a minute)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from search_evidence import _data, random_genotype, train_job

#: name -> (strategy spec, search config) of each searched group.
GROUPS = {
    "snas": ("snas", {}),
    "gumbel_softmax_bilevel": ("gumbel_softmax_bilevel", {}),
    "gdas": ("gdas", {}),
    "gdas_v1": ({"relaxation": "gumbel_max_v1", "discretization": "argmax"}, {}),
}


def search(group: str, seed: int, epochs: int, steps: int | None) -> tuple[str, float]:
    import torch

    torch.set_num_threads(1)
    from search_spaces import create_space, encode
    from supernet.search import BilevelSearch

    strategy, config = GROUPS[group]
    data = _data()
    config = {"batch_size": 128, "seed": seed, "epochs": epochs, "steps_per_epoch": steps,
              **config}
    t0 = time.perf_counter()
    result = BilevelSearch(create_space("darts1d"), data.train, data.val, strategy=strategy,
                           config=config).run()
    return encode(result.graph), time.perf_counter() - t0


def _stats(values: list[float]) -> str:
    if len(values) < 2:
        return f"{100 * values[0]:.2f}%"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}%"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="search seeds 0 .. N-1")
    p.add_argument("--random", type=int, default=5, help="random genotypes")
    p.add_argument("--groups", nargs="+", default=list(GROUPS))
    p.add_argument("--search-epochs", type=int, default=10)
    p.add_argument("--epochs", type=int, default=10, help="training epochs of every genotype")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, a few steps")
    a = p.parse_args(argv)
    steps = None
    if a.quick:
        a.seeds, a.random, a.search_epochs, a.epochs, steps = 1, 1, 1, 1, 2
        a.groups = ["snas", "gdas"]
    print(f"load average at the start: {os.getloadavg()}\n")
    rows = {}
    for group in a.groups:
        for seed in range(a.seeds):
            genotype, seconds = search(group, seed, a.search_epochs, steps)
            r = train_job(genotype, seed, a.epochs, a.C, a.layers)
            rows.setdefault(group, []).append({**r, "search_seconds": seconds})
    for i in range(a.random):
        r = train_job(random_genotype(1000 + i), 0, a.epochs, a.C, a.layers)
        rows.setdefault("random", []).append({**r, "search_seconds": 0.0})
    print(f"MNIST-1D test accuracy of network1d(C={a.C}, {a.layers} cells) trained from "
          f"scratch {a.epochs} epochs on the 4000 training signals; searches of "
          f"{a.search_epochs} epochs on darts1d (batch 128){' (quick)' if a.quick else ''}\n")
    print("| group | architectures | test acc (mean ± std) | parameters (mean) | "
          "search time (mean) |")
    print("|---|---|---|---|---|")
    for group, rs in rows.items():
        accs = [r["test_acc"] for r in rs]
        params = statistics.mean(r["parameters"] for r in rs)
        secs = statistics.mean(r["search_seconds"] for r in rs)
        print(f"| {group} | {len(rs)} | {_stats(accs)} | {params:,.0f} | {secs:.0f} s |")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
