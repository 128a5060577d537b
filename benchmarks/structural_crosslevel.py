"""Ops and widths searched together against searched one after the other, on MNIST-1D.

The 1-D DARTS cell space ``darts1d`` (search network C=8, 4 cells, as
``benchmarks/search_evidence.py``) is searched on the training signals of MNIST-1D
(halves for the weights and the architecture). Every search gets the same budget,
``--epochs`` epochs of ``--steps`` steps of batch 128 in all:

* ``joint``: strategy ``crosslevel`` -- op logits and per-cell width logits (fractions 0.25,
  0.5, 0.75, 1 of each cell's C) in one bilevel loop, with the cost term
  ``λ |E[MACs] / target - 1|`` (``target``: ``--ratio`` times the super-network's expected
  MACs at full width under uniform op probabilities);
* ``sequential``: DARTS on the ops for half the epochs, then the widths of the genotype
  found for the other half (the same width gates on the discretized network, weights
  inherited), with the target ``--ratio`` times that genotype's full-width MACs: the same
  fraction asked of both (``--sequential-target joint``: the MACs of the joint network of
  the same seed);
* ``full width``: the genotype of DARTS run for all the epochs, every cell at full width;
* ``uniform width``: that genotype with every cell narrowed by the one fraction whose
  network's MACs come closest to the joint network's (a dense baseline of the same size);
* ``random``: a random genotype (two distinct inputs per node, any op but ``none``) with a
  random width per cell.

Every network is then built as the DARTS evaluation network (``network1d``, C=8, 4
cells, with the cells' widths bound) and trained from scratch with the same budget
(``--train-epochs`` on all 4000 training signals), and its accuracy is measured on the
1000 test signals. MACs and parameters are counted by ``supernet.cost.cost`` on the
evaluation network. Prints markdown tables (per seed, then mean ± std over seeds).

    PYTHONPATH=. python benchmarks/structural_crosslevel.py --seeds 3
    PYTHONPATH=. python benchmarks/structural_crosslevel.py --quick
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

FRACTIONS = [0.25, 0.5, 0.75, 1.0]
OPS = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5"]
METHODS = ["joint", "sequential", "full width", "uniform width", "random"]


def _setup():
    import torch

    torch.set_num_threads(1)
    from supernet.data import load_dataset

    return load_dataset("mnist1d", val_fraction=0.5)


def _subset(pair, n):
    return pair if n is None else (pair[0][:n], pair[1][:n])


def random_genotype(seed: int, steps: int) -> str:
    """A genotype drawn uniformly under the DARTS constraints."""
    from search_spaces.darts.genotype import Genotype

    rng = random.Random(seed)

    def cell():
        return [(rng.choice(OPS), j) for i in range(2, 2 + steps)
                for j in sorted(rng.sample(range(i), 2))]

    concat = range(2, 2 + steps)
    return str(Genotype(cell(), concat, cell(), concat))


def _search(graph, data, strategy, epochs, a, seed, module=None):
    from supernet.search import BilevelSearch

    config = {"epochs": epochs, "batch_size": 128, "seed": seed, "steps_per_epoch": a.steps,
              "arch_lr": 3e-3}
    t0 = time.process_time()
    r = BilevelSearch(graph, _subset(data.train, a.n), _subset(data.val, a.n),
                      strategy=strategy, config=config, module=module).run()
    return r, time.process_time() - t0


def _cost(graph):
    from supernet.cost import cost

    return cost(graph, (1, 40)).total


def _full_expected(graph):
    import torch

    from supernet.cost.crosslevel import CrossLevelCost
    from supernet.search.crosslevel import mark_widths

    g = graph.copy()
    spec = mark_widths(g, FRACTIONS)
    model = CrossLevelCost(g, spec, input_shape=(1, 40))
    ops = {c: len(o) for c, o in model.ops.items()}
    uniform = {model.gates[c]: torch.full((k,), 1 / k, dtype=torch.float64)
               for c, k in ops.items() if model.gates[c] is not None}
    full = {k: torch.eye(len(w), dtype=torch.float64)[-1] for k, w in spec.items()}
    return float(model.expected(uniform, full, "macs"))


def searches(seed: int, a) -> dict:
    """The architectures of one seed: ``method -> (genotype, widths, search seconds)``."""
    from search_spaces import create_space, encode
    from supernet.search import create_strategy

    data = _setup()
    space = {"C": a.C, "layers": a.layers, "steps": a.cell_steps, "multiplier": a.cell_steps}
    out = {}
    # joint: ops and widths in one loop
    g = create_space("darts1d", **space)
    target = a.ratio * _full_expected(g)
    joint = create_strategy("crosslevel", fractions=FRACTIONS, cost_weight=a.cost_weight,
                            cost_target=target, input_shape=[1, 40])
    r, secs = _search(g, data, joint, a.epochs, a, seed)
    out["joint"] = (encode(r.graph), dict(g.meta["width_choice"]), secs)
    joint_macs = _cost(r.graph).macs
    # sequential: ops for half the budget, then widths of the found network
    g = create_space("darts1d", **space)
    half = max(1, a.epochs // 2)
    r, s1 = _search(g, data, create_strategy("darts"), half, a, seed)
    target = (a.ratio * _cost(r.graph).macs if a.sequential_target == "ratio"
              else float(joint_macs))
    widths = create_strategy("crosslevel", fractions=FRACTIONS, cost_weight=a.cost_weight,
                             cost_target=target, input_shape=[1, 40])
    r, s2 = _search(r.graph, data, widths, max(1, a.epochs - half), a, seed, module=r.module)
    out["sequential"] = (encode(r.graph), dict(r.graph.meta["width_choice"]), s1 + s2)
    # DARTS for the whole budget: the full-width genotype
    g = create_space("darts1d", **space)
    r, secs = _search(g, data, create_strategy("darts"), a.epochs, a, seed)
    out["full width"] = (encode(r.graph), {}, secs)
    return out


def _network(genotype, widths, a):
    from search_spaces.darts import network_graph
    from supernet.search.crosslevel import narrow

    g = network_graph(genotype, C=a.C, layers=a.layers, num_classes=10, in_channels=1,
                      dim=1, space="darts1d")
    narrow(g, widths)
    return g


def _uniform(genotype, target_macs, a):
    """The fraction whose uniformly narrowed network comes closest to ``target_macs``."""
    from supernet.search.crosslevel import width_options

    best = None
    for f in FRACTIONS:
        g = _network(genotype, {}, a)
        widths = {n: width_options(d["bind"]["C"], [f])[0]
                  for n, d in g.nx.nodes(data=True) if d.get("kind") == "call"}
        macs = _cost(_network(genotype, widths, a)).macs
        if best is None or abs(macs - target_macs) < abs(best[1] - target_macs):
            best = (widths, macs)
    return best[0]


def _random_widths(seed, a):
    from supernet.search.crosslevel import width_options

    rng = random.Random(seed)
    g = _network(random_genotype(0, a.cell_steps), {}, a)
    return {n: rng.choice(width_options(d["bind"]["C"], FRACTIONS))
            for n, d in g.nx.nodes(data=True) if d.get("kind") == "call"}


def train(genotype, widths, seed, a) -> dict:
    import torch

    import supernet
    from supernet.train.retrain import accuracy, train_module

    data = _setup()
    tr = (torch.cat([data.train[0], data.val[0]]), torch.cat([data.train[1], data.val[1]]))
    g = _network(genotype, widths, a)
    torch.manual_seed(seed)
    net = supernet.compile(g)
    t0 = time.process_time()
    train_module(net, _subset(tr, a.n and 2 * a.n), epochs=a.train_epochs, batch_size=128,
                 lr=0.05, seed=seed)
    c = _cost(g)
    return {"test_acc": accuracy(net, _subset(data.test, a.n)), "macs": c.macs,
            "params": sum(p.numel() for p in net.parameters()),
            "train_seconds": time.process_time() - t0}


def run_seed(seed: int, a) -> list[dict]:
    found = searches(seed, a)
    joint_macs = _cost(_network(*found["joint"][:2], a)).macs
    full = found["full width"][0]
    found["uniform width"] = (full, _uniform(full, joint_macs, a), found["full width"][2])
    found["random"] = (random_genotype(1000 + seed, a.cell_steps), _random_widths(seed, a), 0.0)
    rows = []
    for method in METHODS:
        genotype, widths, secs = found[method]
        row = train(genotype, widths, seed, a)
        row.update(method=method, seed=seed, search_seconds=secs,
                   widths=" ".join(str(w) for _, w in sorted(widths.items())) or "full")
        rows.append(row)
    return rows


def _ms(values, scale=1.0, digits=2):
    m = statistics.mean(values) * scale
    s = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4, help="search epochs of every method")
    p.add_argument("--steps", type=int, default=8, help="steps per search epoch")
    p.add_argument("--train-epochs", type=int, default=5)
    p.add_argument("--ratio", type=float, default=0.5,
                   help="MACs target, as a fraction of the full-width network's")
    p.add_argument("--cost-weight", type=float, default=5.0)
    p.add_argument("--sequential-target", choices=["ratio", "joint"], default="ratio",
                   help="the width stage's MACs target: --ratio times its genotype's full "
                        "width, or the MACs of the joint network of the same seed")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    a = p.parse_args(argv)
    a.C, a.layers, a.cell_steps, a.n = 8, 4, 4, None
    if a.quick:
        a.C, a.layers, a.cell_steps, a.n = 4, 3, 2, 256
        a.epochs, a.steps, a.train_epochs = 2, 1, 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.time()
    seeds = list(range(a.seeds))
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as pool:
            rows = [r for rs in pool.map(run_seed, seeds, [a] * len(seeds)) for r in rs]
    else:
        rows = [r for s in seeds for r in run_seed(s, a)]
    print(f"MNIST-1D, darts1d C={a.C}, {a.layers} cells: {a.epochs} search epochs x "
          f"{a.steps} steps (batch 128) for every method, {a.train_epochs} training epochs "
          f"from scratch; MACs target {a.ratio} x full width (sequential: "
          f"{a.sequential_target}), "
          f"cost weight {a.cost_weight}; seeds {seeds}; load average {os.getloadavg()}; "
          f"{time.time() - t0:.0f} s in all\n")
    print("| method | seed | cell widths | test acc | MACs | parameters | search CPU s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['seed']} | {r['widths']} | {100 * r['test_acc']:.2f}% "
              f"| {r['macs']:,} | {r['params']:,} | {r['search_seconds']:.0f} |")
    print("\n| method | test acc (mean ± std) | MACs | parameters | search CPU s |")
    print("|---|---|---|---|---|")
    for m in METHODS:
        rs = [r for r in rows if r["method"] == m]
        print(f"| {m} | {_ms([r['test_acc'] for r in rs], 100)}% "
              f"| {_ms([r['macs'] for r in rs], 1e-3, 0)} k "
              f"| {_ms([r['params'] for r in rs], 1e-3, 1)} k "
              f"| {_ms([r['search_seconds'] for r in rs], 1, 0)} |")


if __name__ == "__main__":
    main()
