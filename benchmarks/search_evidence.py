"""Searched architectures against random ones on MNIST-1D, at equal training budget.

For each strategy and search seed: search the 1-D DARTS cell space (``darts1d``) on the
training signals of MNIST-1D (halves for the weights and the architecture), keep the
genotype. For ``--random`` architectures: a genotype drawn uniformly from the same space
under the same constraints (two distinct inputs per node, any op but ``none``). Every
genotype is then trained from scratch with the same budget as an evaluation network
(``network1d``, by default the width and depth of the search network) on all
4000 training signals, and its accuracy measured on the 1000 test signals.

    PYTHONPATH=. python benchmarks/search_evidence.py --out runs/evidence --jobs 2

Prints a markdown table (per architecture, then mean/best per group); every job's result is
kept in ``--out`` as JSON, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

STRATEGIES = {
    # name: (strategy options, search epochs)
    "darts": ({"arch_lr": 3e-3}, 10),
    "gdas": ({}, 20),
    "sgas": ({"warmup": 4, "interval": 2, "arch_lr": 3e-3}, None),
}
OPS = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5"]


def random_genotype(seed: int, steps: int = 4) -> str:
    """A genotype drawn uniformly under the DARTS constraints."""
    rng = random.Random(seed)

    def cell():
        pairs = []
        for i in range(2, 2 + steps):
            for j in sorted(rng.sample(range(i), 2)):
                pairs.append((rng.choice(OPS), j))
        return pairs

    from search_spaces.darts.genotype import Genotype

    concat = range(2, 2 + steps)
    return str(Genotype(cell(), concat, cell(), concat))


def _data():
    from supernet.data import load_dataset

    return load_dataset("mnist1d", val_fraction=0.5)


def search_job(strategy: str, seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from search_spaces import create_space, encode
    from supernet.search import BilevelSearch, create_strategy

    options, epochs = STRATEGIES[strategy]
    data = _data()
    graph = create_space("darts1d")
    config = {"batch_size": 128, "seed": seed}
    if epochs is not None:
        config["epochs"] = epochs
    t0 = time.perf_counter()
    result = BilevelSearch(graph, data.train, data.val, strategy=create_strategy(strategy, **options),
                           config=config).run()
    return {"genotype": encode(result.graph), "search_seconds": time.perf_counter() - t0,
            "search_epochs": len(result.history)}


def train_job(genotype: str, seed: int, epochs: int, C: int, layers: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from search_spaces.darts import network1d
    from supernet.train.retrain import accuracy, train_module

    data = _data()
    train = (torch.cat([data.train[0], data.val[0]]), torch.cat([data.train[1], data.val[1]]))
    torch.manual_seed(seed)
    net = network1d(genotype, C=C, layers=layers, num_classes=10)
    t0 = time.perf_counter()
    train_module(net, train, epochs=epochs, batch_size=128, lr=0.05, seed=seed)
    return {"test_acc": accuracy(net, data.test), "train_seconds": time.perf_counter() - t0,
            "parameters": sum(p.numel() for p in net.parameters())}


def _job(kind: str, key: str, args: tuple, out: str) -> dict:
    path = os.path.join(out, f"{key}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    result = {"search": search_job, "train": train_job}[kind](*args)
    result["key"] = key
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(path + ".tmp", path)
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/evidence")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--random", type=int, default=10)
    p.add_argument("--train-seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="every genotype is trained once per seed; the table gives the mean")
    p.add_argument("--epochs", type=int, default=30, help="training epochs of every genotype")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    with ProcessPoolExecutor(a.jobs) as pool:
        searches = {(s, seed): pool.submit(_job, "search", f"search-{s}-{seed}", (s, seed), a.out)
                    for s in a.strategies for seed in a.seeds}
        genotypes = {("random", i): random_genotype(1000 + i) for i in range(a.random)}
        trains = {}

        def train(key, g):
            for t in a.train_seeds:
                name = f"train-{key[0]}-{key[1]}" + (f"-t{t}" if t else "")
                trains[key + (t,)] = pool.submit(_job, "train", name,
                                                 (g, t, a.epochs, a.C, a.layers), a.out)

        for key, g in genotypes.items():
            train(key, g)
        for (s, seed), fut in searches.items():
            g = fut.result()["genotype"]
            genotypes[(s, seed)] = g
            train((s, seed), g)
        runs = {k: f.result() for k, f in trains.items()}
    results = {}
    for (group, seed, _), r in runs.items():
        entry = results.setdefault((group, seed), {"accs": [], "parameters": r["parameters"]})
        entry["accs"].append(r["test_acc"])
    for entry in results.values():
        entry["test_acc"] = statistics.mean(entry["accs"])
    print(f"MNIST-1D test accuracy after {a.epochs} epochs from scratch "
          f"(network1d C={a.C}, {a.layers} cells, 4000 training signals, 1000 test); "
          f"mean over training seeds {a.train_seeds}\n")
    print("| architecture | search seed | search epochs | search time | parameters "
          "| test acc (mean) | per training seed |")
    print("|---|---|---|---|---|---|---|")
    for (group, seed), r in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if group == "random":
            cells = f"| random #{seed} | - | - | - |"
        else:
            s = _job("search", f"search-{group}-{seed}", (), a.out)
            cells = f"| {group} | {seed} | {s['search_epochs']} | {s['search_seconds']:.0f} s |"
        per = " / ".join(f"{100 * v:.1f}" for v in r["accs"])
        print(f"{cells} {r['parameters']} | {100 * r['test_acc']:.2f}% | {per} |")
    print("\n| group | architectures | mean test acc | best | worst | mean parameters |")
    print("|---|---|---|---|---|---|")
    for group in ["random", *a.strategies]:
        rows = [r for (g, _), r in results.items() if g == group]
        if rows:
            accs = [r["test_acc"] for r in rows]
            params = statistics.mean(r["parameters"] for r in rows)
            print(f"| {group} | {len(rows)} | {100 * statistics.mean(accs):.2f}% | "
                  f"{100 * max(accs):.2f}% | {100 * min(accs):.2f}% | {params:,.0f} |")


if __name__ == "__main__":
    main()
