"""DARTS with and without its stabilizers, on MNIST-1D and digits, at one search budget.

First-order DARTS (Liu et al., ICLR 2019) collapses on a short search: the packaged main job
(``supernet/configs/default.yaml``) ends with max-pooling almost everywhere and its
discretized super-network near chance. This benchmark runs DARTS and six stabilized
variants with the same space, data, search budget and final training:

=============  ==========================================================================
``darts``       first-order DARTS (softmax relaxation, argmax discretization)
``beta_darts``  β-DARTS (Ye et al., CVPR 2022): the Beta-Decay regularizer of α
``drnas``       DrNAS (Chen et al., ICLR 2021): Dirichlet-distributed mixing weights
``sdarts_rs``   SDARTS-RS (Chen & Hsieh, ICML 2020): uniform noise on the weight step's mix
``sdarts_adv``  SDARTS-ADV (same paper): a PGD attack on the weight step's mix
``lambda_darts`` Λ-DARTS (Movahedi et al., ICLR 2023): the layer-alignment regularizer
``darts_minus`` DARTS- (Chu et al., ICLR 2021): an auxiliary skip on every edge, decayed
=============  ==========================================================================

Every job is the main job's pipeline (:mod:`supernet.run`: :func:`~supernet.run.prepare`,
:func:`~supernet.run.search_settings`, :class:`~supernet.search.BilevelSearch`,
:func:`~supernet.run.train_found`) on a configuration built from the packaged one with
:func:`~supernet.config.apply_overrides`, and measures, for one method, data set and seed:

* ``supernet_acc``: the super-network's test accuracy at the end of the search, before
  discretization (its relaxation's own mix, in eval mode; measured outside the search's
  time);
* ``discretized_acc``: the discretized super-network with the weights the search left (the
  argmax architecture, no training: the discretization gap), on the test split, and on the
  validation split as ``supernet search`` reports it (``discretized_val_acc``);
* ``test_acc``: the found architecture retrained from scratch (the same final training for
  every method), on the test split;
* ``param_free``: the share of parameter-free ops (pooling, skip, none) among the 16 ops
  of the found normal and reduction cells;
* ``search_wall_s`` / ``search_cpu_s``: the search's wall and CPU seconds on one thread.

Every job's result is kept as ``OUT/<data>-<method>-s<seed>.json``, so an interrupted run
continues where it stopped (a job whose settings changed is run again). A method whose
strategy is not registered in this version is left out and said so.

    PYTHONPATH=. OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/stabilizers.py --out runs/stab
    PYTHONPATH=. python benchmarks/stabilizers.py --quick --out /tmp/stab   # a smoke run

Prints markdown tables: per data set, each method's mean ± std over seeds and its
difference to DARTS paired by seed; then the ops of the found cells.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from structural_common import machine_line, markdown_table, mean_std, set_threads  # noqa: E402

#: method -> (table name, strategy options). The architecture learning rate is the
#: paper's times 10, as the main job scales DARTS' 3e-4 for its short search (DrNAS: 6e-4).
METHODS = {
    "darts": ("DARTS", {"name": "darts", "arch_lr": 3e-3}),
    "beta_darts": ("β-DARTS", {"name": "beta_darts", "arch_lr": 3e-3}),
    "drnas": ("DrNAS", {"name": "drnas", "arch_lr": 6e-3}),
    "sdarts_rs": ("SDARTS-RS", {"name": "sdarts_rs", "arch_lr": 3e-3}),
    "sdarts_adv": ("SDARTS-ADV", {"name": "sdarts_adv", "arch_lr": 3e-3}),
    "lambda_darts": ("Λ-DARTS", {"name": "lambda_darts", "arch_lr": 3e-3}),
    "darts_minus": ("DARTS-", {"name": "darts_minus", "arch_lr": 3e-3}),
}

#: data set -> overrides of the packaged configuration (the main job's MNIST-1D search and
#: final training, shortened to fit the whole table in 45 minutes of one core).
DATASETS = {
    "mnist1d": ["space.name=darts1d", "space.C=8", "space.layers=3",
                "data.name=mnist1d", "data.val_fraction=0.5",
                "search.epochs=3", "search.batch_size=128", "search.max_steps_per_epoch=6",
                "train.epochs=10", "train.batch_size=128", "train.lr=0.05", "train.split=train"],
    "digits": ["space.name=darts", "space.C=8", "space.layers=3",
               "data.name=digits", "data.val_fraction=0.5",
               "search.epochs=3", "search.batch_size=64", "search.max_steps_per_epoch=6",
               "train.epochs=10", "train.batch_size=64", "train.lr=0.05", "train.split=train"],
}

#: A smoke run: a few steps of a 2-step cell on a few hundred samples.
QUICK = ["search.epochs=1", "search.max_steps_per_epoch=2", "train.epochs=1",
         "train.options={steps_per_epoch: 2}", "space.C=4", "space.steps=2",
         "space.multiplier=2"]
QUICK_DATA = {"mnist1d": ["data.num_samples=300"], "digits": []}

#: Ops without parameters in the DARTS cell.
PARAM_FREE = frozenset({"max_pool_3x3", "avg_pool_3x3", "skip_connect", "none"})


def _silent(*args, **kwargs) -> None:
    pass


def job_overrides(dataset: str, method: str, seed: int, quick: bool = False) -> list[str]:
    """The configuration overrides of one job (its identity in ``--out``)."""
    if dataset not in DATASETS:
        from supernet.errors import ConfigError

        raise ConfigError(f"stabilizers benchmark: data set {dataset!r} is not one of "
                          f"{list(DATASETS)}")
    _, strategy = METHODS[method]
    over = list(DATASETS[dataset]) + [f"seed={seed}", "pictures=false", "progress=false",
                                      "device=cpu"]
    over.append("strategy=" + json.dumps(strategy))
    if quick:
        over += QUICK + QUICK_DATA[dataset]
    return over


def param_free_share(text: str) -> float:
    """The share of parameter-free ops among the ops of both cells of a genotype.

    Examples:
        >>> param_free_share("Genotype(normal=[('max_pool_3x3', 0), ('sep_conv_3x3', 1)], "
        ...                  "normal_concat=[2], reduce=[('skip_connect', 0), "
        ...                  "('avg_pool_3x3', 1)], reduce_concat=[2])")
        0.75
    """
    ops = cell_ops(text)
    return sum(op in PARAM_FREE for op in ops) / len(ops)


def cell_ops(text: str) -> list[str]:
    """The ops of the normal, then the reduction cell of a genotype's text."""
    from search_spaces.darts import parse_genotype

    g = parse_genotype(text)
    return [p[0] for p in g.normal] + [p[0] for p in g.reduce]


class _SuperNetProbe:
    """A search callback: the super-network's test accuracy after the last epoch, before
    the discretization, and the seconds it took (not counted as search time)."""

    def __init__(self, epochs: int, test, batch_fn):
        self.epochs, self.test, self.batch_fn = epochs, test, batch_fn
        self.acc, self.seconds = None, 0.0

    def __call__(self, state, record) -> None:
        if record["epoch"] != self.epochs:
            return
        from supernet.train.retrain import accuracy

        t0 = time.perf_counter()
        self.acc = accuracy(state.module, self.test, batch_size=512, batch_fn=self.batch_fn)
        self.seconds = time.perf_counter() - t0


def run_job(dataset: str, method: str, seed: int, quick: bool = False) -> dict:
    """One search and final training; the figures of the module docstring."""
    set_threads(1)
    import warnings

    from supernet.config import apply_overrides, load_config
    from supernet.run import prepare, run_splits, search_settings, train_found
    from supernet.search import BilevelSearch
    from supernet.search.base import SearchWarning
    from supernet.spaces import encode
    from supernet.train.retrain import accuracy

    cfg = apply_overrides(load_config(), job_overrides(dataset, method, seed, quick))
    load0 = os.getloadavg()[0]
    data, graph, strategy = prepare(cfg)
    settings = search_settings(cfg, strategy)
    settings["checkpoint_dir"] = None  # nothing to resume: a job is rerun whole
    splits, batch_fn = run_splits(data)
    probe = _SuperNetProbe(settings["epochs"], splits["test"], batch_fn)
    w0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SearchWarning)
        search = BilevelSearch(graph, splits["train"], splits["val"], strategy=strategy,
                               config=settings, batch_fn=batch_fn, callbacks=[probe])
        result = search.run()
    wall = time.perf_counter() - w0 - probe.seconds
    cpu = time.process_time() - c0 - probe.seconds  # the probe ran on this thread alone
    text = encode(result.graph)
    disc_test = accuracy(result.module, splits["test"], batch_size=512, batch_fn=batch_fn)
    disc_val = accuracy(result.module, splits["val"], batch_size=512, batch_fn=batch_fn)
    t0 = time.process_time()
    trained, _, _ = train_found(cfg, result.graph, result.module, data, log=_silent)
    ops = cell_ops(text)
    return {
        "dataset": dataset, "method": method, "seed": seed, "quick": quick,
        "overrides": job_overrides(dataset, method, seed, quick),
        "strategy": strategy.name, "search_epochs": len(result.history),
        "genotype": text, "ops": ops, "param_free": param_free_share(text),
        "supernet_acc": probe.acc, "discretized_acc": disc_test,
        "discretized_val_acc": disc_val, "test_acc": trained["test_acc"],
        "search_wall_s": round(wall, 2), "search_cpu_s": round(cpu, 2),
        "train_wall_s": trained["train_seconds"],
        "train_cpu_s": round(time.process_time() - t0, 2),
        "final_train_acc": result.history[-1].get("train_acc"),
        "warnings": [str(w.message) for w in caught] + list(result.warnings),
        "loadavg": [load0, os.getloadavg()[0]],
    }


def _path(out: str, dataset: str, method: str, seed: int) -> str:
    return os.path.join(out, f"{dataset}-{method}-s{seed}.json")


def kept_or_run(out: str, dataset: str, method: str, seed: int, quick: bool) -> dict:
    """The job's kept result when it was run with the same settings, else a new run."""
    path = _path(out, dataset, method, seed)
    if os.path.exists(path):
        with open(path) as f:
            kept = json.load(f)
        if kept.get("overrides") == job_overrides(dataset, method, seed, quick):
            return kept
    rec = run_job(dataset, method, seed, quick)
    with open(path + ".tmp", "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"{dataset} {method} seed {seed}: retrained {100 * rec['test_acc']:.1f}%, "
          f"discretized {100 * rec['discretized_acc']:.1f}%, super-net "
          f"{100 * rec['supernet_acc']:.1f}%, param-free {100 * rec['param_free']:.0f}%, "
          f"search {rec['search_wall_s']:.0f} s wall / {rec['search_cpu_s']:.0f} s cpu "
          f"(load {rec['loadavg'][1]:.2f})", flush=True)
    return rec


def available(methods) -> tuple[list[str], list[str]]:
    """``(methods whose strategy is registered, those left out)``."""
    from supernet.search.strategies import STRATEGIES

    have = [m for m in methods if METHODS[m][1]["name"] in STRATEGIES]
    return have, [m for m in methods if m not in have]


def _paired(recs: dict, base: dict, key: str) -> str:
    """Mean ± std over the seeds both ran of ``recs[seed][key] - base[seed][key]``."""
    seeds = sorted(set(recs) & set(base))
    if not seeds:
        return "-"
    d = [recs[s][key] - base[s][key] for s in seeds]
    sign = "+" if statistics.fmean(d) >= 0 else ""
    return sign + mean_std(d)


def tables(results: list[dict], methods: list[str], datasets: list[str]) -> str:
    """The markdown tables of ``results`` (job records)."""
    out = []
    for ds in datasets:
        by = {m: {r["seed"]: r for r in results if r["dataset"] == ds and r["method"] == m}
              for m in methods}
        rows = []
        for m in methods:
            recs = by[m]
            if not recs:
                continue
            v = lambda k: [r[k] for r in recs.values()]  # noqa: E731
            rows.append([
                METHODS[m][0], len(recs), mean_std(v("test_acc")),
                _paired(recs, by.get("darts", {}), "test_acc") if m != "darts" else "-",
                mean_std(v("supernet_acc")), mean_std(v("discretized_acc")),
                mean_std(v("param_free"), digits=0),
                mean_std(v("search_wall_s"), scale=1, digits=0),
                mean_std(v("search_cpu_s"), scale=1, digits=0)])
        out += [f"\n### {ds}\n", markdown_table(
            ["method", "seeds", "retrained test acc. %", "Δ vs DARTS (paired) pp",
             "super-net test acc. %", "discretized super-net test acc. %",
             "param-free ops %", "search wall s", "search CPU s"], rows)]
    out.append("\n### Ops of the found cells (normal + reduction, summed over seeds)\n")
    names = sorted({op for r in results for op in r["ops"]})
    rows = []
    for ds in datasets:
        for m in methods:
            recs = [r for r in results if r["dataset"] == ds and r["method"] == m]
            if recs:
                rows.append([ds, METHODS[m][0],
                             *(sum(r["ops"].count(n) for r in recs) for n in names)])
    out.append(markdown_table(["data", "method", *names], rows))
    return "\n".join(out)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/stabilizers")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated, of {','.join(METHODS)}")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated, of {','.join(DATASETS)}")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 of every job")
    p.add_argument("--jobs", type=int, default=1, help="processes at once (one thread each)")
    p.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    a = p.parse_args(argv)
    from supernet.errors import ConfigError

    methods = [m for m in a.methods.split(",") if m]
    datasets = [d for d in a.datasets.split(",") if d]
    for kind, names, known in (("method", methods, METHODS), ("data set", datasets, DATASETS)):
        bad = [n for n in names if n not in known]
        if bad:
            raise ConfigError(f"stabilizers benchmark: unknown {kind} {bad}; choose from "
                              f"{list(known)}")
    if a.seeds < 1 or a.jobs < 1:
        raise ConfigError(f"stabilizers benchmark: --seeds and --jobs must be >= 1, got "
                          f"{a.seeds} and {a.jobs}")
    set_threads(1)
    methods, missing = available(methods)
    os.makedirs(a.out, exist_ok=True)
    print(machine_line(), flush=True)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for m in missing:
        print(f"left out: {METHODS[m][0]} (strategy {METHODS[m][1]['name']!r} is not "
              "registered in this version)", flush=True)
    jobs = [(ds, m, s) for s in range(a.seeds) for ds in datasets for m in methods]
    t0 = time.perf_counter()
    if a.jobs == 1:
        results = [kept_or_run(a.out, *j, a.quick) for j in jobs]
    else:
        with ProcessPoolExecutor(a.jobs) as pool:
            futures = [pool.submit(kept_or_run, a.out, *j, a.quick) for j in jobs]
            results = [f.result() for f in futures]
    print(f"\n{len(jobs)} jobs ({a.seeds} seeds) in {time.perf_counter() - t0:.0f} s "
          f"(kept results reused); load average at end: {os.getloadavg()}")
    print(tables(results, methods, datasets))
    return results


if __name__ == "__main__":
    main()
