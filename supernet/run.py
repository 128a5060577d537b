"""A whole run, as the ``supernet`` command does it: load the data, build the space, search
with a strategy, keep the discretized architecture, train it, report.

Files written to the run directory:

==================== ==============================================================
``config.yaml``      every value the run used: the config after overrides, with the
                     search epochs and batch size in force and the strategy's loop
                     settings (``strategy.config``) as merged with the strategy's own
``architecture.json`` the discretized graph (node-link JSON); ``.graphml`` beside it
``genotype.txt``     the space's text form (DARTS genotype, NAS-Bench-201 string), if any
``search_weights.safetensors`` state_dict of the discretized network, as the search left it
``weights.safetensors``       state_dict after final training
``edits.json``       every structural edit of the search (replayable)
``history.json``     per-epoch records of the search and of the final training
``report.json``      accuracies and sizes; ``report.md`` the same for people
``checkpoints/``     ``last.safetensors`` after every search epoch (resume with ``--resume``)
``pictures/``        the found graph and cells, the architecture weights over the epochs
``manifest.json``    every file above (but ``tensorboard/``) with its SHA-256, the run's
                     identity, and whether it finished (:mod:`supernet.rundir`)
``tensorboard/``     TensorBoard scalars (with ``tensorboard: true``)
==================== ==============================================================
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time

import torch
import yaml

from supernet.config import RunConfig, SearchBudget
from supernet.cost import weight_count
from supernet.data import flatten_features, load_dataset
from supernet.data.graphs import whole_graph_batch, whole_graph_splits
from supernet.distributed import Replicas
from supernet.errors import ConfigError, GraphError, SerializationError
from supernet.io import atomic_write, remove_partial_writes, save_graph, save_weights, write_graphml
from supernet.registry import import_modules
from supernet.rundir import MANIFEST, RunFiles, check_identity, run_identity
from supernet.search import BilevelSearch, SearchConfig, create_strategy
from supernet.search.checkpoint import load_checkpoint
from supernet.search.loop import merge_config
from supernet.search.watch import EpochLog, train_line
from supernet.spaces import create_space, encode, space_entry
from supernet.tabular import load_benchmark
from supernet.train.retrain import accuracy, fine_tune, retrain
from supernet.trials import run_trials, tabular, trained, trial_strategy
from supernet.trials.optuna_search import import_optuna

__all__ = ["load_data", "prepare", "space_options", "make_strategy", "search_settings",
           "effective_config", "trials_space", "run_trials_job",
           "run_search", "run_splits", "train_found", "write_report"]

#: Loop settings that come from the run's own keys (not from the strategy).
RUN_SETTINGS = ("epochs", "batch_size", "steps_per_epoch", "seed", "progress",
                "checkpoint_dir", "device", "memory")


def load_data(cfg: RunConfig):
    """The data set of ``cfg`` in the form its space reads: flattened samples for a space
    of flat features (one with ``in_features``, e.g. ``neuron_mlp``)."""

    data = load_dataset(cfg.data.name, **cfg.data.options)
    if "in_features" in inspect.signature(space_entry(cfg.space.name)).parameters:
        data = flatten_features(data)
    return data


def prepare(cfg: RunConfig):
    """Data, space graph and strategy of ``cfg``, checked against each other before any
    training: wrong channel or class counts fail here, naming the config key.

    The space's arguments that describe the data are taken from it when the space has them:
    ``in_channels``, ``num_classes``, ``input_size`` (the image size, for spaces of 2-D
    images), ``dim`` (1 for sequences, 2 for images, for spaces of either, as ``darts``) and
    ``in_features``. A space with ``in_features`` (``neuron_mlp``) reads flat
    feature vectors, so the samples are flattened (MNIST-1D's ``(1, 40)`` signals become 40
    features, an 8x8 digit 64).

    A strategy that builds its own networks (``strategy.build_space``, P-DARTS) is given
    the space name and these options and returns the graph to search."""

    import_modules(cfg.imports, "config key 'imports'")  # what registers the names below
    data = load_data(cfg)
    options = space_options(cfg, data)
    strategy = make_strategy(cfg)
    if strategy.build_space is not None:  # e.g. a deeper network at each stage
        graph = strategy.build_space(cfg.space.name, options)
    else:
        graph = create_space(cfg.space.name, **options)
    return data, graph, strategy


def space_options(cfg: RunConfig, data) -> dict:
    """The options of ``cfg``'s space with what describes ``data`` filled in (as
    :func:`prepare` says); a config key that contradicts the data fails, naming it."""
    options = dict(cfg.space.options)
    params = inspect.signature(space_entry(cfg.space.name)).parameters
    given = [("num_classes", data.num_classes)]
    if "in_features" in params:
        given.append(("in_features", data.shape[0]))
    else:
        given.append(("in_channels", data.in_channels))
    if "input_size" in params and len(data.shape) == 3:
        given.append(("input_size", list(data.shape[1:])))
    if "dim" in params and len(data.shape) >= 2:  # 1: sequences (C, L), 2: images (C, H, W)
        given.append(("dim", len(data.shape) - 1))
    for key, value in given:
        if key == "input_size" and isinstance(options.get(key), int):
            options[key] = [options[key]] * 2
        if key in options and options[key] != value:
            raise ConfigError(
                f"config key 'space.{key}' is {options[key]}, but data set {data.name!r} has "
                f"{value}; remove the key or set it to {value}"
            )
        if key in params:
            options[key] = value
    return options


def make_strategy(cfg: RunConfig):
    """The strategy of ``cfg`` (named, or composed from its parts). Loop settings among
    its options that the user did not set (the packaged ``arch_lr``) are the library's
    defaults: they go under the strategy's own (:func:`search_settings`), not to it."""

    keys = SearchConfig.keys()
    options = {k: v for k, v in cfg.strategy.options.items()
               if k not in keys or f"strategy.{k}" in cfg.given}
    return create_strategy(cfg.strategy.name or None, **options)


def search_settings(cfg: RunConfig, strategy) -> dict:
    """The loop settings of the run, by the one rule: the keys the user set (``search.*``,
    loop keys among the strategy options) over the strategy's own over the library's
    defaults (``search.*`` left unset, the default strategy options)."""

    library, user = {}, {}
    for key in ("epochs", "batch_size"):
        value = getattr(cfg.search, key)
        if f"search.{key}" in cfg.given and value is not None:
            user[key] = value
        else:  # unset, or null: the strategy's own, else the default
            library[key] = value if value is not None else getattr(SearchBudget(), key)
    keys = SearchConfig.keys()
    library.update({k: v for k, v in cfg.strategy.options.items()
                    if k in keys and f"strategy.{k}" not in cfg.given})
    strategy.check_config(user, "search.")
    # bars only on a terminal: in a log file they are carriage-return noise
    run = {"seed": cfg.seed, "progress": cfg.progress and sys.stderr.isatty(),
           "steps_per_epoch": cfg.search.max_steps_per_epoch,
           "checkpoint_dir": os.path.join(cfg.out, "checkpoints"), "device": cfg.device,
           "memory": cfg.search.memory}
    return {**library, **strategy.config, **user, **run}


def effective_config(cfg: RunConfig, settings) -> dict:
    """``cfg`` as a mapping with every value in force: ``search.epochs`` and
    ``search.batch_size`` as the search runs them, and in ``strategy.config`` the loop
    settings (``settings``, a :class:`~supernet.search.SearchConfig`) other than the run's
    own. Read back as a config, it runs the same search."""
    out = cfg.to_dict()
    out["search"]["epochs"] = settings.epochs
    out["search"]["batch_size"] = settings.batch_size
    loop = settings.to_dict()
    strategy = {k: v for k, v in out["strategy"].items() if k not in loop}
    strategy["config"] = {k: v for k, v in loop.items() if k not in RUN_SETTINGS}
    out["strategy"] = strategy
    return out


def run_search(cfg: RunConfig, resume: bool = False, log=print, force: bool = False,
               epochs: str = "lines") -> dict:
    """Search, keep the result, train it as ``cfg.train`` says; returns the report.

    Every epoch of the search and of the final training is logged as one line
    (:class:`~supernet.search.watch.EpochLog`; ``epochs``: ``"lines"``, ``"verbose"`` (with
    every gate's candidate weights) or ``"none"``); the same figures go to the history.

    ``cfg.out`` must be new, empty, or a run directory: an unfinished run there continues
    (same config) and a finished one is kept unless ``force`` (start over, replacing its
    results) or ``resume`` (continue its search, e.g. with more epochs).

    Under ``torchrun`` every process searches and trains its part of each batch
    (:mod:`supernet.distributed`); the main process alone logs and writes.
    """
    main = Replicas.from_env().main
    if not main:
        log = _silent

    def write(fn, *args):
        if main:
            fn(*args)

    ckpt = os.path.join(cfg.out, "checkpoints", "last.safetensors")
    # everything is checked (data, space, strategy, search settings) before the run
    # directory changes, so a bad config leaves an earlier run in it as it was
    before = _check_out(cfg.out, resume, force)
    board = _tensorboard(cfg) if main else None
    data, graph, strategy = prepare(cfg)
    settings = search_settings(cfg, strategy)
    effective = effective_config(cfg, merge_config(strategy, settings))
    identity = run_identity(effective)
    if not resume and os.path.exists(ckpt) and not (before is not None and before.complete):
        resume = _continue_unfinished(cfg, effective, before, log)
    log(f"data: {data}")
    log(f"space: {cfg.space.name} ({len(graph.nx)} nodes, strategy {strategy.name})")
    t0 = time.perf_counter()
    splits, batch_fn = run_splits(data)
    resuming = resume and os.path.exists(ckpt)
    watch = EpochLog(log if epochs != "none" else None, verbose=epochs == "verbose")
    callbacks = [watch] + (board.search_callbacks() if board else [])
    if resuming:
        # a checkpoint copied in from another run would continue under this run's config
        check_identity(load_checkpoint(ckpt).get("run"), identity, ckpt)
        log(f"resuming from {ckpt}")
        search = BilevelSearch.resume(ckpt, splits["train"], splits["val"], strategy=strategy,
                                      config=settings, batch_fn=batch_fn, callbacks=callbacks)
    else:
        search = BilevelSearch(graph, splits["train"], splits["val"], strategy=strategy,
                               config=settings, batch_fn=batch_fn, callbacks=callbacks)
    search.run_identity = identity  # the checkpoints say which run wrote them
    files = RunFiles(cfg.out, identity)

    def keep(name, fn):  # fn(path) writes the file; the manifest records it
        if main:
            fn(os.path.join(cfg.out, name))
            files.add(name)

    if main:
        os.makedirs(cfg.out, exist_ok=True)
        remove_partial_writes(cfg.out)  # what a killed write left behind
        if resuming and before is not None:  # the files of the search so far stay listed
            files.files = dict(before.files)
        else:  # an earlier run's results must not pass for this run's, nor resume
            _remove(cfg.out, RESULTS + (MANIFEST,))
        files.drop(*RESULTS)
    keep("config.yaml", lambda p: atomic_write(
        p, yaml.safe_dump(effective, sort_keys=False).encode()))
    result = search.run()
    search_seconds = time.perf_counter() - t0
    found = result.graph
    keep("architecture.json", lambda p: save_graph(found, p))
    keep("architecture.graphml", lambda p: write_graphml(found, p))
    text = _text_form(found)
    if text is not None:
        keep("genotype.txt", lambda p: atomic_write(p, (text + "\n").encode()))
    keep("search_weights.safetensors", lambda p: save_weights(result.module, p))
    keep("edits.json", result.log.save)

    report = {
        "space": cfg.space.name, "strategy": strategy.name, "data": data.name,
        "seed": cfg.seed, "search_epochs": len(result.history),
        "search_seconds": round(search_seconds, 1),
        "edits": result.log.counts(), "text": text,
        "search_val_acc": accuracy(result.module, splits["val"], batch_fn=batch_fn),
    }
    if result.budget is not None:
        report["budget"] = result.budget
    report["warnings"] = list(result.warnings)
    for w in result.warnings:
        log(f"warning: {w}")
    history = {"search": result.history}
    if cfg.pictures and main:
        files.add(*(os.path.relpath(p, cfg.out)
                    for p in _pictures(cfg.out, found, result.history, log)))
    def train_epoch(record):
        if epochs != "none":
            log(train_line(record, cfg.train.epochs))
        if board is not None:
            board.train_epoch(record)

    train_report, train_history, module = train_found(cfg, found, result.module, data, log,
                                                      on_epoch_end=train_epoch)
    if board is not None:
        board.close()
    report.update(train_report)
    history["train"] = train_history
    if module is not None:
        keep("weights.safetensors", lambda p: save_weights(module, p))
    report["parameters"] = weight_count(module or result.module)
    keep("history.json", lambda p: atomic_write(
        p, json.dumps(history, indent=1, default=float).encode()))
    if cfg.pictures and main:
        from supernet.viz import plot_curves  # lazy: matplotlib, only with pictures on

        curves = plot_curves(history, os.path.join(cfg.out, "pictures", "curves.png"))
        if curves is not None:
            files.add(os.path.relpath(curves, cfg.out))
    if main and os.path.exists(ckpt):
        files.add(os.path.relpath(ckpt, cfg.out))
    write(write_report, cfg.out, report, files)
    return report


def _pictures(out: str, graph, history: list, log=print) -> list[str]:
    """``pictures/``: the found graph and its cells, the architecture weights over time;
    returns the paths written."""
    from supernet.viz import draw_cells, plot_gates  # lazy: matplotlib, only with pictures on

    directory = os.path.join(out, "pictures")
    try:
        paths = draw_cells(graph, directory)
    except GraphError as exc:  # a graph too large to draw
        log(f"pictures: {exc}")
        paths = []
    gates = plot_gates(history, os.path.join(directory, "architecture_weights.png"))
    paths += [gates] if gates is not None else []
    log(f"pictures: {len(paths)} in {directory}")
    return paths


class _TensorBoard:
    """Scalars of a run for TensorBoard: per search epoch the losses, accuracies, learning
    rate, temperature and every candidate's weight (``gates/<gate>/<candidate>``); per
    epoch of the final training its loss and accuracies."""

    def __init__(self, directory: str):
        self.directory = directory
        self._writer = None

    @property
    def writer(self):
        # made at the first scalar: a run whose checks fail leaves no folder behind
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # lazy: an optional extra

            self._writer = SummaryWriter(self.directory)
        return self._writer

    def search_callbacks(self) -> list:
        return [self.search_epoch]

    def search_epoch(self, state, record: dict) -> None:
        step = record["epoch"]
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "eval_acc", "lr", "tau"):
            if record.get(key) is not None:
                self.writer.add_scalar(f"search/{key}", record[key], step)
        names = record.get("candidates", {})
        for gate, rows in (record.get("gates") or {}).items():
            if gate in names and rows:
                for i, op in enumerate(names[gate]):
                    value = sum(r[i] for r in rows) / len(rows)
                    self.writer.add_scalar(f"gates/{gate}/{op}", value, step)
        self.writer.flush()

    def train_epoch(self, record: dict) -> None:
        for key in ("loss", "acc", "val_acc"):
            if record.get(key) is not None:
                self.writer.add_scalar(f"train/{key}", record[key], record["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _tensorboard(cfg: RunConfig):
    if not cfg.tensorboard:
        return None
    try:
        import tensorboard  # noqa: F401  (torch's SummaryWriter needs it)
    except ImportError:
        raise ConfigError("config key 'tensorboard' is true, but the tensorboard package is "
                          "not installed; pip install tensorboard (or supernet[tensorboard]), "
                          "or set tensorboard: false") from None
    return _TensorBoard(os.path.join(cfg.out, "tensorboard"))


#: What a run writes about its result (with its checkpoint), removed when a new run starts
#: in the same directory.
RESULTS = ("report.json", "report.md", "architecture.json", "architecture.graphml",
           "genotype.txt", "search_weights.safetensors", "weights.safetensors", "edits.json",
           "history.json", os.path.join("checkpoints", "last.safetensors"))


def _check_out(out: str, resume: bool, force: bool, again: str | None = None):
    """The manifest of run directory ``out`` (``None``: new or empty), after refusing what
    would lose a user's files: a file in place of the folder, a folder of other files, a
    finished run (unless ``force`` or ``resume``)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} is a file, not a folder; a run writes a folder of "
                          "results: choose another --out")
    if not os.path.isdir(out):
        return None
    files = RunFiles.open(out, missing_ok=True)
    if files is None:
        others = [os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out)
                  for f in fs if not f.startswith(".tmp-")]
        if others and not force:
            theirs = [f for f in others if not f.startswith("checkpoints")]
            if theirs:
                raise ConfigError(
                    f"--out {out!r} holds files that no run wrote ({', '.join(theirs[:3])}"
                    f"{'...' if len(theirs) > 3 else ''}; no manifest.json), which a run "
                    "would overwrite: choose another --out, or pass --force")
        return None
    if files.complete and not (force or resume):
        raise ConfigError(
            f"{out} holds a finished run (report.md); it is kept. Rerun it from scratch with "
            "--force (its results are replaced), "
            + ("continue its search with --resume (e.g. --set search.epochs=N), "
               if again is None else again)
            + "or choose another --out")
    return files


def _remove(out: str, names) -> None:
    """Remove the files ``names`` of run directory ``out`` that exist: an earlier run's
    results must not pass for this run's."""
    for name in names:
        stale = os.path.join(out, name)
        if os.path.exists(stale):
            os.remove(stale)


def _silent(*args, **kwargs) -> None:
    """The log of the processes other than the main one of a data-parallel run."""


def _continue_unfinished(cfg: RunConfig, now: dict, files, log) -> bool:
    """``cfg.out`` holds a search that stopped before its report (killed, interrupted):
    running the same configuration (``now``: every value in force, as ``config.yaml``
    holds it) again continues it rather than starting over and overwriting its
    checkpoint; another configuration fails, naming what differs. ``files``: the
    directory's manifest (``None``: it has none), which ``config.yaml`` must match."""

    path = os.path.join(cfg.out, "config.yaml")
    try:
        if files is not None:
            files.check("config.yaml")
        with open(path) as f:
            before = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, SerializationError):
        before = None
    if not isinstance(before, dict):
        before = None
    # what only shapes the output (where, how it is shown) does not change the search
    same_search = ("progress", "out", "device", "pictures", "tensorboard", "imports")
    differ = (["config.yaml unreadable"] if before is None else
              [k for k in now if k not in same_search and before.get(k) != now[k]])
    if differ:
        raise ConfigError(
            f"{cfg.out} holds a search that did not finish (checkpoints/last.safetensors, no "
            f"report), run with another configuration (differs in {differ}); pass --resume to continue "
            f"it with this one, or choose another --out (or delete {cfg.out}) to start over"
        )
    log(f"{cfg.out}: continuing the unfinished search of the same configuration")
    return True


def train_found(cfg: RunConfig, graph, searched_module, data, log=print, on_epoch_end=None):
    """Final training of the found architecture (``cfg.train``); returns
    ``(report entries, history, trained module or None)``. ``on_epoch_end(record)`` sees
    each epoch of the training."""

    t = cfg.train
    splits, batch_fn = run_splits(data)
    if t.mode == "none":
        return {"val_acc": accuracy(searched_module, splits["val"], batch_fn=batch_fn),
                "test_acc": accuracy(searched_module, splits["test"], batch_fn=batch_fn)}, [], None
    if t.split not in ("train", "train+val"):
        raise ConfigError(f"config key 'train.split' is {t.split!r}; expected 'train' or "
                          "'train+val'")
    train_set = splits[t.split]
    settings = dict(epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, momentum=t.momentum,
                    weight_decay=t.weight_decay, grad_clip=t.grad_clip, seed=cfg.seed,
                    device=cfg.device, on_epoch_end=on_epoch_end, batch_fn=batch_fn,
                    **t.options)
    held_out = splits["val"] if t.split == "train" else None
    t0 = time.perf_counter()
    log(f"final training ({t.mode}, {t.epochs} epochs on {t.split})")
    if t.mode == "retrain":
        trained = retrain(graph, train_set, held_out, **settings)
    else:
        trained = fine_tune(searched_module, train_set, held_out, **settings)
    out = {"train_mode": t.mode, "train_epochs": t.epochs, "train_split": t.split,
           "train_seconds": round(time.perf_counter() - t0, 1),
           # the validation split is no held-out measure once it was trained on
           "val_acc": (accuracy(trained.module, held_out, batch_fn=batch_fn)
                       if held_out is not None else None),
           "test_acc": accuracy(trained.module, splits["test"], batch_fn=batch_fn)}
    return out, trained.history, trained.module


def run_splits(data):
    """``({"train", "val", "test", "train+val"}: data set, batch_fn)``: what a run trains and
    measures on, and how its batches unpack (``None``: the default ``(x, y)`` layout). A
    node-classification graph trains and measures on the whole graph at every step
    (:mod:`supernet.data.graphs`)."""
    if "edge_index" in data.info:
        return whole_graph_splits(data), whole_graph_batch
    both = (torch.cat([data.train[0], data.val[0]]), torch.cat([data.train[1], data.val[1]]))
    return {"train": data.train, "val": data.val, "test": data.test, "train+val": both}, None


def _text_form(graph):
    if not graph.meta.get("space"):
        return None
    try:
        return encode(graph)
    except ConfigError:  # the space has no text form
        return None


def write_report(directory: str, report: dict, files: RunFiles | None = None) -> None:
    """``report.json`` and a short ``report.md``; with ``files`` (the directory's
    manifest) both are recorded and the run marked finished."""
    atomic_write(os.path.join(directory, "report.json"),
                 json.dumps(report, indent=1, default=float).encode())
    lines = _trials_lines(report) if "trials" in report else _search_lines(report)
    atomic_write(os.path.join(directory, "report.md"), ("\n".join(lines) + "\n").encode())
    if files is not None:
        rel = os.path.relpath(directory, files.directory).replace(os.sep, "/")
        files.add(*(n if rel == "." else f"{rel}/{n}" for n in ("report.json", "report.md")))
        files.finish()


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _result_lines(report: dict) -> list[str]:
    """The lines of a report on the kept architecture: its final training, accuracies and
    size (a search's and a multi-trial search's alike)."""
    lines = []
    if report.get("train_mode"):
        lines.append(f"- final training: {report['train_mode']}, {report['train_epochs']} "
                     f"epochs on {report['train_split']} in {report['train_seconds']} s")
    val = report.get("val_acc")
    return lines + [f"- validation accuracy: {_pct(val) if val is not None else 'not held out'}",
                    f"- test accuracy: {_pct(report.get('test_acc'))}",
                    f"- parameters: {report.get('parameters')}"]


def _search_lines(report: dict) -> list[str]:
    pct = _pct
    lines = [
        f"# {report['strategy']} on {report['space']} / {report['data']} (seed {report['seed']})",
        "",
        f"- search: {report['search_epochs']} epochs in {report['search_seconds']} s; "
        f"edits {report['edits']}",
        f"- discretized super-network with the weights the search left, before any "
        f"training (the discretization gap), validation: {pct(report.get('search_val_acc'))}",
    ]
    lines += _result_lines(report)
    b = report.get("budget")
    if b:
        lines.append(f"- budget: {b['metric']} {b['cost']:.6g} for the target {b['target']:.6g} "
                     f"({100 * b['relative_error']:+.2f}%; {100 * b['fraction']:.1f}% of the full "
                     f"{b['full']:.6g})")
    lines += [f"- **warning**: {w}" for w in report.get("warnings") or []]
    if report.get("text"):
        lines += ["", "```", report["text"], "```"]
    return lines


#: What a multi-trial run writes about its result, removed when a new run starts there.
TRIAL_RESULTS = ("report.json", "report.md", "architecture.json", "architecture.graphml",
                 "genotype.txt", "weights.safetensors", "trials.json", "history.json")


def trials_space(cfg: RunConfig):
    """``(graph, evaluate, data, source, space)`` of a multi-trial run: the super-network
    whose architectures are asked, what evaluates one (a benchmark look-up, or a short
    training on ``cfg.data``), the data (``None`` with a benchmark), what the report calls
    the data (the benchmark's spec, or the data set's name) and the space as the run's
    config records it (``{"name": ..., options}``).

    With ``trials.benchmark`` the space is the benchmark's (``space.name`` may be left out;
    one given must be it) with the benchmark's options; a ``space`` option that
    contradicts them fails, naming it."""
    t = cfg.trials
    if t.benchmark is not None:
        bench = load_benchmark(t.benchmark)
        if "space.name" in cfg.given and cfg.space.name != bench.space:
            raise ConfigError(
                f"config key 'space.name' is {cfg.space.name!r}, but benchmark {bench.spec!r} "
                f"holds architectures of space {bench.space!r}; set space.name={bench.space} "
                "or leave it out")
        options = dict(bench.space_options)
        if "space.name" in cfg.given:
            for key, value in cfg.space.options.items():
                if key in options and options[key] != value:
                    raise ConfigError(
                        f"config key 'space.{key}' is {value!r}, but benchmark {bench.spec!r} "
                        f"fixes it to {options[key]!r}; remove the key")
                options[key] = value
        return (create_space(bench.space, **options), tabular(bench), None, bench.spec,
                {"name": bench.space, **options})
    data = load_data(cfg)
    graph = create_space(cfg.space.name, **space_options(cfg, data))
    splits, batch_fn = run_splits(data)
    tb = cfg.train
    evaluate = trained(splits["train"], splits["val"], epochs=t.epochs, seed=cfg.seed,
                       batch_size=tb.batch_size, lr=tb.lr, momentum=tb.momentum,
                       weight_decay=tb.weight_decay, grad_clip=tb.grad_clip,
                       batch_fn=batch_fn, device=cfg.device, **tb.options)
    return graph, evaluate, data, data.name, cfg.space.to_value()


def run_trials_job(cfg: RunConfig, log=print, force: bool = False,
                   lines: bool = True) -> dict:
    """A multi-trial search as ``supernet trials`` runs it (:class:`~supernet.config.
    TrialsBudget`): ``trials.budget`` architectures asked by ``trials.strategy``, each
    evaluated (:func:`trials_space`) and told; the best by ``trials.metric`` is kept as
    the run's architecture and, evaluated by training, trained as ``cfg.train`` says.

    Writes ``config.yaml``, ``trials.json`` (every trial: its architecture's text form,
    metrics and seconds, and the best so far), ``architecture.json`` / ``.graphml`` /
    ``genotype.txt`` of the best, ``weights.safetensors`` after its final training,
    ``report.json`` / ``report.md`` and ``manifest.json``; ``lines``: one log line per
    trial. ``cfg.out`` is refused as :func:`run_search` refuses it, and also when it holds
    a search that did not finish (its checkpoint would be lost)."""
    t = cfg.trials
    before = _check_out(cfg.out, False, force, again="")
    if (before is not None and not before.complete and not force
            and os.path.exists(os.path.join(cfg.out, "checkpoints", "last.safetensors"))):
        raise ConfigError(f"{cfg.out} holds a search that did not finish "
                          "(checkpoints/last.safetensors); continue it with 'supernet search "
                          "--resume', or choose another --out, or pass --force")
    if cfg.train.mode == "finetune" and t.benchmark is None:
        raise ConfigError("config key 'train.mode' is 'finetune', but a multi-trial search "
                          "keeps no trained weights to fine-tune; use retrain or none")
    import_modules(cfg.imports, "config key 'imports'")
    graph, evaluate, data, source, space = trials_space(cfg)
    judge = {}
    if data is None:  # one query per table entry: isomorphic DAGs are one architecture,
        bench = evaluate.bench  # and the choices the table lacks are never asked
        judge = {"identity": bench.key, "accept": bench.__contains__}
    strategy = trial_strategy(t.strategy, graph, metric=t.metric, seed=cfg.seed,
                              **judge, **t.options)
    if t.strategy == "optuna":  # it logs each told trial at INFO level; ours is the line
        optuna = import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    effective = {**cfg.to_dict(), "space": space}
    identity = {"trials": {"strategy": t.strategy, **t.options}, "data": source,
                "space": effective["space"], "seed": cfg.seed}
    identity = json.loads(json.dumps(identity, default=str))
    files = RunFiles(cfg.out, identity)
    os.makedirs(cfg.out, exist_ok=True)
    remove_partial_writes(cfg.out)
    _remove(cfg.out, TRIAL_RESULTS + (MANIFEST,))

    def keep(name, fn):
        fn(os.path.join(cfg.out, name))
        files.add(name)

    keep("config.yaml", lambda p: atomic_write(
        p, yaml.safe_dump(effective, sort_keys=False).encode()))
    log(f"space: {graph.name} ({len(graph.nx)} nodes); {t.strategy} asks {t.budget} "
        f"architectures, each evaluated by "
        + (f"benchmark {source}" if data is None else f"{t.epochs} epochs of training on {source}")
        + (f" ({t.workers} at a time on Ray)" if t.engine == "ray" else ""))
    records, best = [], [None]

    def on_trial(trial):
        value = trial.metrics[t.metric]
        if best[0] is None or strategy.value(trial) > strategy.value(best[0]):
            best[0] = trial
        text = _text_form(trial.graph)
        records.append({"id": trial.id, "text": text, "metrics": trial.metrics,
                        "seconds": trial.seconds, "best_id": best[0].id})
        if lines:
            log(f"trial {len(records)}/{t.budget}  {t.metric} {value:.4f}  best "
                f"{best[0].metrics[t.metric]:.4f} (trial {best[0].id})  "
                f"{trial.seconds:.2f} s  {text or ''}")

    history = run_trials(strategy, evaluate, t.budget, engine=t.engine, workers=t.workers,
                         address=t.address, metric=t.metric, on_trial=on_trial, seed=cfg.seed)
    winner = history.best()
    found = winner.graph
    keep("trials.json", lambda p: atomic_write(p, json.dumps(
        {"metric": t.metric, "trials": records}, indent=1, default=float).encode()))
    keep("architecture.json", lambda p: save_graph(found, p))
    keep("architecture.graphml", lambda p: write_graphml(found, p))
    text = _text_form(found)
    if text is not None:
        keep("genotype.txt", lambda p: atomic_write(p, (text + "\n").encode()))
    report = {"space": space["name"],
              "strategy": t.strategy, "data": source, "seed": cfg.seed,
              "trials": len(history), "engine": t.engine, "workers": t.workers,
              "trials_seconds": round(history.seconds, 2), "metric": t.metric,
              "best_trial": winner.id, "best_metrics": winner.metrics, "text": text,
              "curve": history.curve()}
    if data is None:
        bench = evaluate.bench
        ceiling = bench.best(t.metric)[1]
        report["val_acc"] = winner.metrics.get("val_accuracy")
        report["test_acc"] = winner.metrics.get("test_accuracy")
        params = winner.metrics.get("params")
        report["parameters"] = int(params) if params is not None else None
        report["benchmark_best"] = ceiling
    else:
        report["val_acc"] = winner.metrics.get("val_accuracy")

        def train_epoch(record):
            if lines:
                log(train_line(record, cfg.train.epochs))

        train_report, train_history, module = train_found(cfg, found, None, data, log,
                                                          on_epoch_end=train_epoch)
        report.update(train_report)
        if module is not None:
            keep("weights.safetensors", lambda p: save_weights(module, p))
            keep("history.json", lambda p: atomic_write(
                p, json.dumps({"train": train_history}, indent=1, default=float).encode()))
            report["parameters"] = weight_count(module)
    write_report(cfg.out, report, files)
    return report


def _trials_lines(report: dict) -> list[str]:
    pct = _pct
    m = report["metric"]
    value = lambda v: pct(v) if "accuracy" in m else f"{v:.6g}"  # noqa: E731
    workers = f", {report['workers']} at a time" if report["engine"] == "ray" else ""
    lines = [
        f"# {report['strategy']} trials on {report['space']} / {report['data']} "
        f"(seed {report['seed']})", "",
        f"- {report['trials']} trials in {report['trials_seconds']} s (engine "
        f"{report['engine']}{workers}); maximized: {m}",
        f"- best: trial {report['best_trial']}, {m} {value(report['best_metrics'][m])}",
    ]
    ceiling = report.get("benchmark_best")
    if ceiling is not None:
        lines.append(f"- the benchmark's best by {m}: {m} {value(ceiling[m])}, test accuracy "
                     f"{pct(ceiling.get('test_accuracy'))}")
    lines += _result_lines(report)
    if report.get("text"):
        lines += ["", "```", report["text"], "```"]
    return lines
