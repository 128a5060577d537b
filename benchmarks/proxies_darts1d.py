"""A trained population of ``darts1d`` architectures on MNIST-1D: zero-cost proxies against
trained accuracy, and the one-shot DARTS search against multi-trial search at equal CPU time.

Four parts, each measured in the run that prints it (``docs/results_proxies.md``):

1. **Population.** ``--archs`` architectures drawn uniformly, without repeats, from the
   choice space of the packaged ``supernet search`` super-network (``darts1d`` on MNIST-1D,
   ``supernet/configs/default.yaml``): ``choice_space(graph, module).sample(rng)``, made
   permanent by :func:`supernet.search.discretize.discretize`, then trained from scratch by
   the run's own final training (:func:`supernet.run.train_found`: 2000 training signals,
   validation on the other 2000, test on the held-out 1000) with one fixed budget for all
   (``--epochs``; the packaged final training's batch, learning rate and schedule) and one
   training seed. Kept in ``--population`` (default ``OUT/population.json``) as the space's
   text form (the DARTS genotype, which decodes to the same network and the same seeded
   initial weights) with validation and test accuracy, parameters and CPU seconds
   (``time.process_time`` on one thread); a rerun reads it and trains only what is missing.
2. **Proxies.** Every registered proxy (:data:`supernet.search.proxies.PROXIES`, each
   scored and timed on its own by :func:`~supernet.search.proxies.score`) on each
   architecture at initialization (the weights its training started from), on one seeded
   batch of 64 training signals; Spearman's rho with test and with validation accuracy, a
   95% percentile bootstrap interval over architectures, and the proxy's CPU seconds per
   architecture.
3. **Noise.** The first ``--reseed`` architectures trained again with training seed 1:
   the rank agreement of two trainings, which bounds what any predictor can reach.
4. **One-shot against multi-trial.** The packaged DARTS search and its final training
   (:func:`supernet.run.run_search`, final training at the population's budget so the two
   are trained alike) for ``--seeds`` seeds, its CPU seconds measured; random search at the
   same CPU seconds: the best-by-validation architecture among the first
   ``k = budget / mean training seconds`` of the population, over ``--orders`` random
   orders; regularized evolution (:mod:`supernet.trials`, Real et al. 2019) at the same
   ``k``, training what it asks for on demand (kept in the population file, apart from the
   uniform sample); both also at twice and four times the budget.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/proxies_darts1d.py --out runs/proxies
    python benchmarks/proxies_darts1d.py --quick --out /tmp/proxies   # ~10 CPU seconds

``--only population`` (or ``reseed``, ``oneshot``, ``evolution``) runs one part, for a long
job in the background; the report (``--only report``) then reads what they saved (and
trains what is missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from structural_common import markdown_table, mean_std

from supernet.config import apply_overrides, load_config
from supernet.cost import weight_count
from supernet.errors import ConfigError, SupernetError
from supernet.io import atomic_write

#: The population's training budget (the packaged final training but for its epochs).
EPOCHS = 8
ARCHS = 50
PROXY_BATCH = 64
BOOTSTRAP = 2000


def _silent(*args, **kwargs) -> None:
    pass


def run_config(epochs: int, seed: int = 0, quick: bool = False, out: str | None = None):
    """The packaged configuration with the final training at ``epochs`` epochs (``quick``:
    searches and trainings of two steps per epoch)."""
    overrides = [f"train.epochs={epochs}", f"seed={seed}", "pictures=false", "progress=false",
                 "device=cpu"]
    if quick:  # 500 signals (200 + 200 for training, 100 for test), cells of 2 steps
        overrides += ["search.epochs=1", "search.max_steps_per_epoch=2",
                      "train.options={steps_per_epoch: 2}", "data.num_samples=500",
                      "space.C=4", "space.layers=3", "space.steps=2", "space.multiplier=2"]
    if out is not None:
        overrides.append(f"out={out}")
    return apply_overrides(load_config(), overrides)


def budget_of(cfg) -> dict:
    """What every architecture of a population is trained with (a rerun must match)."""
    t = cfg.train
    return {"space": cfg.space.name, "space_options": dict(cfg.space.options),
            "data": cfg.data.name, "data_options": dict(cfg.data.options),
            "epochs": t.epochs, "batch_size": t.batch_size, "lr": t.lr,
            "momentum": t.momentum, "weight_decay": t.weight_decay, "grad_clip": t.grad_clip,
            "split": t.split, "options": dict(t.options), "seed": cfg.seed}


# ----------------------------------------------------------------------------- population
class Population:
    """The population file: ``budget``, ``archs`` (the uniform sample, in drawing order) and
    ``extra`` (architectures a multi-trial search asked for) and ``reseeded`` (the first
    architectures trained again with another training seed, ``seed``), each a record with
    ``text``, ``val_acc``, ``test_acc``, ``params``, ``train_cpu_s``, ``train_wall_s``."""

    def __init__(self, path: str, budget: dict):
        self.path, self.budget = path, budget
        self.archs: list[dict] = []
        self.extra: list[dict] = []
        self.reseeded: list[dict] = []
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            if data.get("budget") != budget:
                raise ConfigError(
                    f"{path} holds a population trained with {data.get('budget')}, not "
                    f"{budget}; pass another --population (or --out), or the same --epochs")
            self.archs, self.extra = data.get("archs", []), data.get("extra", [])
            self.reseeded = data.get("reseeded", [])

    def save(self) -> None:
        """Write the file, keeping what another part running at the same time (``--only``)
        wrote to it since it was read: records are merged by architecture (and seed)."""
        import fcntl

        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(self.path):
                with open(self.path) as f:
                    disk = json.load(f)
                # in place: lists handed out before stay the population's
                self.archs[:] = _union(disk.get("archs", []), self.archs, ("index",))
                self.extra[:] = _union(disk.get("extra", []), self.extra, ("text",))
                self.reseeded[:] = _union(disk.get("reseeded", []), self.reseeded,
                                          ("index", "seed"))
            body = {"budget": self.budget, "archs": self.archs, "extra": self.extra,
                    "reseeded": self.reseeded}
            atomic_write(self.path, json.dumps(body, indent=1).encode())

    def lookup(self, text: str) -> dict | None:
        for rec in self.archs + self.extra:
            if rec["text"] == text:
                return rec
        return None


def _union(a: list[dict], b: list[dict], keys: tuple) -> list[dict]:
    """The records of ``a`` and those of ``b`` not in it (by ``keys``), ``archs`` sorted by
    index."""
    seen = {tuple(r[k] for k in keys) for r in a}
    out = a + [r for r in b if tuple(r[k] for k in keys) not in seen]
    return sorted(out, key=lambda r: r["index"]) if keys == ("index",) else out


class Trainer:
    """Trains discretized graphs of the packaged space as the run's final training does."""

    def __init__(self, cfg):
        from supernet.run import prepare, run_splits

        self.cfg = cfg
        self.data, self.supergraph, _ = prepare(cfg)
        self.splits, self.batch_fn = run_splits(self.data)
        self._space = None

    def sample(self, n: int, seed: int) -> list[dict]:
        """``n`` distinct uniform choices of the super-network (drawing order, seeded)."""
        space = self.space
        rng, seen, out = random.Random(seed), set(), []
        for _ in range(100 * n):
            choice = space.sample(rng)
            key = space.encode(choice)
            if key not in seen:
                seen.add(key)
                out.append(choice)
            if len(out) == n:
                return out
        raise ConfigError(f"the space has fewer than {n} distinct architectures")

    @property
    def space(self):
        """The choice space of the super-network (compiled once)."""
        from supernet import compile
        from supernet.search.choices import choice_space

        if self._space is None:
            self._space = choice_space(self.supergraph, compile(self.supergraph))
        return self._space

    def discretized(self, choice: dict):
        """A copy of the super-network graph with ``choice`` made permanent: the edits of
        :func:`supernet.search.discretize.discretize`, on the graph alone (no module to
        carry weights into: the network is trained from scratch), as a multi-trial search
        hands its trials over (:func:`supernet.trials.discretized`)."""
        from supernet.search.discretize.layer import check_constraints
        from supernet.trials import discretized

        graph = discretized(self.supergraph, self.space, choice)
        check_constraints(graph, self.space)
        return graph

    def train(self, graph) -> dict:
        from supernet.run import train_found
        from supernet.spaces import encode

        t0, w0 = time.process_time(), time.perf_counter()
        report, _, module = train_found(self.cfg, graph, None, self.data, log=_silent)
        return {"text": encode(graph), "val_acc": report["val_acc"],
                "test_acc": report["test_acc"], "params": weight_count(module),
                "train_cpu_s": round(time.process_time() - t0, 3),
                "train_wall_s": round(time.perf_counter() - w0, 3)}


def train_population(pop: Population, trainer: Trainer, n: int, sample_seed: int,
                     log=print) -> None:
    """Train the first ``n`` architectures of the seeded uniform sample not yet in ``pop``
    (saved after each)."""
    choices = trainer.sample(n, sample_seed)
    for i, choice in enumerate(choices):
        if i < len(pop.archs):
            continue
        rec = {"index": i, "sample_seed": sample_seed, **trainer.train(trainer.discretized(choice))}
        pop.archs.append(rec)
        pop.save()
        log(f"arch {i + 1}/{n}: test {100 * rec['test_acc']:.1f}% val "
            f"{100 * rec['val_acc']:.1f}% params {rec['params']} "
            f"{rec['train_cpu_s']:.1f} cpu-s (load {os.getloadavg()[0]:.2f})", flush=True)


def reseed_population(pop: Population, cfg, n: int, log=print) -> list[dict]:
    """The first ``n`` architectures of ``pop`` trained again with ``cfg``'s training seed
    (new initial weights and data order, all else alike; saved after each): how much of
    the population's spread one training seed decides."""
    from supernet.spaces import decode

    trainer = None
    for rec in pop.archs[:n]:
        if any(r["index"] == rec["index"] and r["seed"] == cfg.seed for r in pop.reseeded):
            continue
        trainer = trainer or Trainer(cfg)
        graph = decode(cfg.space.name, rec["text"], **cfg.space.options)
        again = {"index": rec["index"], "seed": cfg.seed, **trainer.train(graph)}
        pop.reseeded.append(again)
        pop.save()
        log(f"arch {rec['index'] + 1} with training seed {cfg.seed}: test "
            f"{100 * again['test_acc']:.1f}% (seed {pop.budget['seed']}: "
            f"{100 * rec['test_acc']:.1f}%)", flush=True)
    return [r for r in pop.reseeded if r["seed"] == cfg.seed and r["index"] < n]


def noise_table(archs: list[dict], again: list[dict]) -> str:
    """How well one training's accuracy ranks architectures: seed against seed, and
    validation against test within one seed (what a search that selects by validation
    relies on)."""
    first = {r["index"]: r for r in archs}
    pairs = [(first[r["index"]], r) for r in again if r["index"] in first]
    rows = []
    for key in ("test_acc", "val_acc"):
        rho, lo, hi = spearman_ci([a[key] for a, _ in pairs], [b[key] for _, b in pairs])
        diff = statistics.fmean(abs(a[key] - b[key]) for a, b in pairs)
        name = f"{key}: one training seed against another ({len(pairs)} archs)"
        rows.append([name, f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]", f"{100 * diff:.2f}"])
    rho, lo, hi = spearman_ci([r["val_acc"] for r in archs], [r["test_acc"] for r in archs])
    rows.append([f"val_acc vs test_acc, one seed ({len(archs)} archs)",
                 f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]",
                 f"{100 * statistics.fmean(abs(r['val_acc'] - r['test_acc']) for r in archs):.2f}"])
    return markdown_table(["pair", "Spearman ρ [95% CI]", "mean abs. difference (points)"], rows)


# ----------------------------------------------------------------------------- proxies
def proxy_batch(trainer: Trainer, seed: int, size: int = PROXY_BATCH):
    """One seeded batch of ``size`` training signals, in the search's batch layout."""
    from supernet.train.data import default_batch_fn

    x, y = trainer.splits["train"]
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:size]
    return default_batch_fn((x[idx], y[idx]))


def initial_module(text: str, cfg):
    """The network of genotype ``text`` with the weights its training started from."""
    from supernet import compile
    from supernet.spaces import decode

    graph = decode(cfg.space.name, text, **cfg.space.options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # as supernet.train.retrain.retrain seeds it
        return compile(graph)


def score_population(archs: list[dict], trainer: Trainer, seed: int, log=print) -> dict:
    """``{proxy: {"scores": [...], "seconds": [...]}}`` over ``archs`` at initialization."""
    from supernet.search.proxies import PROXIES, score

    batch = proxy_batch(trainer, seed)
    names = PROXIES.list()
    out = {name: {"scores": [], "seconds": []} for name in names}
    for rec in archs:
        module = initial_module(rec["text"], trainer.cfg)
        if weight_count(module) != rec["params"]:
            raise ConfigError(f"genotype {rec['text']} decodes to {weight_count(module)} "
                              f"parameters, the population file says {rec['params']}")
        for name in names:
            t0 = time.process_time()
            try:
                value = float(score(name, module, batch))
            except SupernetError as exc:  # reported in the table, not hidden
                out[name].setdefault("errors", []).append(str(exc))
                value = math.nan
            out[name]["seconds"].append(time.process_time() - t0)
            out[name]["scores"].append(value)
    log(f"proxies: {len(names)} on {len(archs)} architectures", flush=True)
    return out


def spearman_ci(x, y, reps: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho of ``x`` and ``y`` and its 95% percentile bootstrap interval
    (resampling pairs; resamples where either side is constant are left out).

    Examples:
        >>> rho, lo, hi = spearman_ci([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5], reps=200)
        >>> round(rho, 3), lo <= rho <= hi
        (0.829, True)
    """
    import numpy as np
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if not np.isfinite(x).all() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), float("nan")
    rho = float(spearmanr(x, y).statistic)
    idx = np.random.default_rng(seed).integers(0, len(x), (reps, len(x)))
    boot = resampled_spearman(x, y, idx)
    boot = boot[np.isfinite(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5]) if boot.size else (float("nan"),) * 2
    return rho, float(lo), float(hi)


def resampled_spearman(x, y, idx):
    """Spearman's rho of ``(x[i], y[i])`` for each row ``i`` of ``idx`` at once: Pearson's
    r of each resample's ranks (ties averaged), NaN where a side is constant."""
    import numpy as np
    from scipy.stats import rankdata

    rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    norm = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (rx * ry).sum(axis=1) / norm, np.nan)


def top_pick(scores, archs: list[dict], top: int = 1) -> float:
    """Mean test accuracy of the ``top`` architectures of highest score (NaN scores last).

    Examples:
        >>> top_pick([0.3, 0.9, float("nan")], [{"test_acc": a} for a in (0.5, 0.7, 0.9)])
        0.7
    """
    order = sorted(range(len(archs)), key=lambda i: (-scores[i] if scores[i] == scores[i]
                                                     else math.inf, i))
    return statistics.fmean(archs[i]["test_acc"] for i in order[:top])


def proxy_table(archs: list[dict], scores: dict) -> str:
    """Per proxy: Spearman's rho with test and validation accuracy (95% bootstrap
    interval), the test accuracy of its top architecture and of its top 5, and its CPU
    seconds per architecture; best rho with test accuracy first."""
    test = [r["test_acc"] for r in archs]
    val = [r["val_acc"] for r in archs]
    rows = []
    for name, s in scores.items():
        cells = []
        for target in (test, val):
            rho, lo, hi = spearman_ci(s["scores"], target)
            if s.get("errors"):
                cells.append(f"failed on {len(s['errors'])}: {s['errors'][0]}")
            elif math.isnan(rho):
                cells.append("constant")
            else:
                cells.append(f"{rho:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        picks = [f"{100 * top_pick(s['scores'], archs, t):.1f}" for t in (1, 5)]
        rows.append([name, *cells, *picks, f"{statistics.median(s['seconds']):.3f}"])
    rows.sort(key=lambda r: -float(r[1].split()[0]) if r[1][0] in "+-" else 9)
    return markdown_table(["proxy", "ρ with test acc. [95% CI]", "ρ with val. acc. [95% CI]",
                           "test acc. % of its top 1", "of its top 5",
                           "CPU s / arch. (median)"], rows)


# ----------------------------------------------------------------------------- one-shot
def run_oneshot(args, seed: int, log=print) -> dict:
    """The packaged DARTS search and final training for ``seed`` (CPU seconds measured)."""
    from supernet.run import run_search

    out = os.path.join(args.out, "oneshot", f"seed{seed}")
    cfg = run_config(args.epochs, seed, args.quick, out)
    t0, w0 = time.process_time(), time.perf_counter()
    report = run_search(cfg, log=_silent, force=True, epochs="none")
    rec = {"seed": seed, "cpu_s": round(time.process_time() - t0, 2),
           "wall_s": round(time.perf_counter() - w0, 2), "text": report["text"],
           "val_acc": report["val_acc"], "test_acc": report["test_acc"],
           "params": report["parameters"], "search_seconds": report["search_seconds"],
           "train_seconds": report["train_seconds"]}
    log(f"one-shot seed {seed}: test {100 * rec['test_acc']:.1f}% in {rec['cpu_s']:.0f} cpu-s",
        flush=True)
    return rec


def oneshot_runs(args, budget: dict, log=print) -> list[dict]:
    """One-shot runs of ``--seeds`` seeds, kept in ``OUT/oneshot.json`` (reused)."""
    path = os.path.join(args.out, "oneshot.json")
    runs = []
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
        if data.get("budget") == budget:
            runs = data["runs"]
    for seed in range(args.seeds):
        if not any(r["seed"] == seed for r in runs):
            runs.append(run_oneshot(args, seed, log))
            os.makedirs(args.out, exist_ok=True)
            atomic_write(path, json.dumps({"budget": budget, "runs": runs}, indent=1).encode())
    return [r for r in runs if r["seed"] < args.seeds]


def random_search(archs: list[dict], k: int, orders: int, seed: int = 0) -> list[float]:
    """Test accuracy of the best-by-validation architecture among the first ``k`` of each
    of ``orders`` seeded random orders of ``archs``.

    Examples:
        >>> pop = [{"val_acc": v, "test_acc": v / 2} for v in (0.1, 0.9, 0.5)]
        >>> random_search(pop, 3, 2)
        [0.45, 0.45]
    """
    rng, out = random.Random(seed), []
    for _ in range(orders):
        first = rng.sample(archs, min(k, len(archs)))
        out.append(max(first, key=lambda r: r["val_acc"])["test_acc"])
    return out


def budgets(archs: list[dict], oneshot: list[dict]) -> tuple[float, float, list[int]]:
    """``(one-shot CPU s, training CPU s per architecture, [k])``: the trainings that fit in
    the one-shot search's mean CPU seconds, twice and four times them."""
    cpu = statistics.fmean(r["cpu_s"] for r in oneshot)
    per_arch = statistics.fmean(r["train_cpu_s"] for r in archs)
    return cpu, per_arch, [max(1, round(m * cpu / per_arch)) for m in (1, 2, 4)]


def best_of_prefixes(trials: list[dict], sizes) -> dict[int, float]:
    """Test accuracy of the best-by-validation trial among the first ``k`` (``k`` in
    ``sizes``) of ``trials`` (ask order): what the search reports after ``k`` trials.

    Examples:
        >>> t = [{"val_acc": v, "test_acc": v / 2} for v in (0.2, 0.8, 0.4)]
        >>> best_of_prefixes(t, [1, 3])
        {1: 0.1, 3: 0.4}
    """
    return {k: max(trials[:k], key=lambda r: r["val_acc"])["test_acc"] for k in sizes}


def evolution_runs(pop: Population, trainer: Trainer, trials: int, seeds,
                   population: int, sample: int, log=print) -> list[list[dict]]:
    """Per seed of ``seeds``, the ``trials`` trials of regularized evolution (``supernet.trials``,
    population ``population``, tournament ``sample``) in ask order, training each asked
    architecture on demand as the population was trained (cached in the population file).
    The search does not know its budget, so its first ``k`` trials are its run at budget
    ``k``."""
    from supernet.spaces import encode
    from supernet.trials import TRIAL_STRATEGIES, run_trials

    def evaluate(graph):
        rec = pop.lookup(encode(graph))
        if rec is None:
            rec = trainer.train(graph)
            pop.extra.append(rec)
            pop.save()
        return {"val_accuracy": rec["val_acc"], "test_accuracy": rec["test_acc"],
                "train_cpu_s": rec["train_cpu_s"]}

    runs = []
    for seed in seeds:
        strategy = TRIAL_STRATEGIES.resolve("evolution")(
            trainer.supergraph.copy(), seed=seed, population=population, sample=sample)
        history = run_trials(strategy, evaluate, trials, metric="val_accuracy")
        runs.append([{"val_acc": t.metrics["val_accuracy"], "test_acc": t.metrics["test_accuracy"],
                      "train_cpu_s": t.metrics["train_cpu_s"]} for t in history])
        best = best_of_prefixes(runs[-1], [trials])[trials]
        log(f"evolution seed {seed}: {trials} trials, test {100 * best:.1f}%", flush=True)
    return runs


def comparison_table(archs: list[dict], oneshot: list[dict], evolution, orders: int) -> str:
    """The one-shot runs, random search and regularized evolution at 1x, 2x and 4x the
    one-shot's CPU seconds, and the population's best and median. CPU seconds: measured
    (one-shot: its mean; evolution: the mean sum of its trainings' seconds) or, for random
    search over the uniform sample, ``k`` times the mean training."""
    cpu, per_arch, sizes = budgets(archs, oneshot)
    test = sorted(r["test_acc"] for r in archs)
    best_val = max(archs, key=lambda r: r["val_acc"])
    rows = [[f"DARTS one-shot (search + final training), {len(oneshot)} seeds",
             f"{cpu:.0f}", mean_std([r["test_acc"] for r in oneshot]),
             mean_std([r["val_acc"] for r in oneshot])]]
    for mult, k in zip((1, 2, 4), sizes):
        kk = min(k, len(archs))
        picks = random_search(archs, kk, orders)
        rows.append([f"random search, {mult}x: best val. of k = {kk} trained ({orders} orders)",
                     f"{kk * per_arch:.0f}", mean_std(picks), "-"])
        k = min(k, min(map(len, evolution)))
        picks = [best_of_prefixes(run, [k])[k] for run in evolution]
        name = f"regularized evolution, {mult}x: k = {k} trials ({len(evolution)} seeds)"
        spent = statistics.fmean(sum(r["train_cpu_s"] for r in run[:k]) for run in evolution)
        rows.append([name, f"{spent:.0f}", mean_std(picks), "-"])
    rows += [[f"population ({len(archs)}): best by validation", "-",
              f"{100 * best_val['test_acc']:.1f}", f"{100 * best_val['val_acc']:.1f}"],
             [f"population ({len(archs)}): best test (oracle)", "-", f"{100 * test[-1]:.1f}", "-"],
             [f"population ({len(archs)}): median", "-",
              f"{100 * statistics.median(test):.1f}", "-"]]
    return markdown_table(["method", "CPU s", "test acc. %", "val. acc. %"], rows)


# ----------------------------------------------------------------------------- main
def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/proxies_darts1d",
                   help="folder of the population, the one-shot runs and their results")
    p.add_argument("--population", default=None,
                   help="population JSON to reuse or extend (default OUT/population.json)")
    p.add_argument("--archs", type=int, default=ARCHS)
    p.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs of every net")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the one-shot search")
    p.add_argument("--orders", type=int, default=20, help="random orders of random search")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--proxy-seed", type=int, default=0)
    p.add_argument("--evo-population", type=int, default=8,
                   help="regularized evolution's population (Real et al. 2019: 100; "
                        "supernet.trials: 20)")
    p.add_argument("--evo-sample", type=int, default=2,
                   help="regularized evolution's tournament size (Real et al. 2019: 25; "
                        "supernet.trials: 5)")
    p.add_argument("--reseed", type=int, default=20,
                   help="architectures trained again with training seed 1 (noise estimate)")
    p.add_argument("--evo-trials", type=int, default=None,
                   help="at most this many trials of evolution (default: 4x the one-shot's)")
    p.add_argument("--only", choices=["population", "reseed", "oneshot", "evolution", "report"],
                   default=None, help="one part (what the others need is read from OUT)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 architectures of a smaller space (cells of 2 steps), 1 "
                        "epoch of 2 steps, 500 signals, 1 seed, 3 trials of evolution")
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.epochs, args.seeds, args.orders, args.reseed = 3, 1, 1, 3, 3
        args.evo_population, args.evo_sample, args.evo_trials = 2, 1, 3
    args.population = args.population or os.path.join(args.out, "population.json")
    return args


def main(argv=None) -> dict:
    """Run the parts ``argv`` asks for, print their tables; returns the population, the
    one-shot runs, the proxies' scores and the evolution runs."""
    torch.set_num_threads(1)
    args = parse(argv)
    cfg = run_config(args.epochs, 0, args.quick)
    budget = budget_of(cfg)
    pop = Population(args.population, budget)
    print(f"# darts1d on MNIST-1D: {args.archs} architectures, {args.epochs} epochs each; "
          f"load average {os.getloadavg()}\n", flush=True)
    trainer = Trainer(cfg)
    result = {"population": pop.archs}
    part = args.only
    if part in (None, "population"):
        train_population(pop, trainer, args.archs, args.sample_seed)
    if part in (None, "reseed"):
        reseed_population(pop, run_config(args.epochs, 1, args.quick), args.reseed)
    if part in (None, "oneshot"):
        result["oneshot"] = oneshot_runs(args, budget)
    if part in ("population", "reseed", "oneshot"):
        return result
    archs = pop.archs[:args.archs]
    if len(archs) < args.archs:
        raise ConfigError(f"{args.population} holds {len(archs)} trained architectures, "
                          f"{args.archs} asked for: run --only population first")
    result["oneshot"] = oneshot_runs(args, budget)
    cpu, per_arch, sizes = budgets(archs, result["oneshot"])
    trials = min(sizes[-1], args.evo_trials or sizes[-1])
    evolution = evolution_runs(pop, trainer, trials, range(args.seeds), args.evo_population,
                               args.evo_sample)
    result["evolution"] = evolution
    if part == "evolution":
        return result
    command = "python benchmarks/proxies_darts1d.py " + " ".join(argv or sys.argv[1:])
    test = [r["test_acc"] for r in archs]
    print(f"command: `{command}`; {len(archs)} architectures, training seed {cfg.seed}, "
          f"{args.epochs} epochs (batch {cfg.train.batch_size}, lr {cfg.train.lr}, cosine); "
          f"test accuracy {mean_std(test)} % (min {100 * min(test):.1f}, max "
          f"{100 * max(test):.1f}); {statistics.fmean(r['train_cpu_s'] for r in archs):.1f} "
          f"CPU s per architecture\n")

    scores = score_population(archs, trainer, args.proxy_seed)
    result["proxies"] = scores
    print(f"## Zero-cost proxies at initialization (batch of {PROXY_BATCH}, seed "
          f"{args.proxy_seed}; Spearman ρ, {BOOTSTRAP} bootstrap resamples)\n")
    print(proxy_table(archs, scores) + "\n")

    again = reseed_population(pop, run_config(args.epochs, 1, args.quick), args.reseed)
    if again:
        print("## How much one training decides (training seed 0 against 1)\n")
        print(noise_table(archs, again) + "\n")

    print(f"## One-shot against multi-trial at equal CPU seconds (one thread; one-shot "
          f"{cpu:.0f} CPU s = {sizes[0]} trainings of {per_arch:.1f} s)\n")
    print(f"regularized evolution: population {args.evo_population}, tournament "
          f"{args.evo_sample}, {trials} trials per seed, {len(pop.extra)} trainings "
          f"beyond the uniform sample\n")
    print(comparison_table(archs, result["oneshot"], evolution, args.orders))
    print(f"\nload average at end: {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
