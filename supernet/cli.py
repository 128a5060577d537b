"""The ``supernet`` command.

    supernet search [--config FILE] [--out DIR] [--set key=value ...] [--resume] [--force]
    supernet trials [--config FILE] [--space NAME] [--benchmark NAME:DATA] [--strategy NAME]
                    [--budget N] [--engine local|ray] [--workers N] [--out DIR] [--set ...]
    supernet train  --run DIR [--mode retrain|finetune] [--to NAME] [--set train.epochs=50 ...]
    supernet export --run DIR [--to DIR] [--formats LIST] [--weights trained|search|FOLDER]
    supernet show   FILE [--draw DIR]  # a graph file (.json / .graphml) or a run directory
    supernet list   spaces|strategies|datasets|ops|trials|proxies|benchmarks

With no arguments, ``supernet search`` runs the packaged default: a DARTS search of a 1-D
cell space on MNIST-1D (generated offline), then trains the architecture it found and
reports validation and test accuracy.
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import json
import os
import sys
import warnings

import yaml

from supernet import __version__
from supernet import compile as compile_graph
from supernet.config import apply_overrides, load_config
from supernet.data import DATASETS, list_datasets
from supernet.distributed import Replicas
from supernet.errors import SupernetError
from supernet.export import export
from supernet.io import (
    atomic_write,
    file_part,
    load_graph,
    load_weights,
    read_graphml,
    remove_partial_writes,
    save_weights,
)
from supernet.lint import lint
from supernet.ops import OPS, list_ops
from supernet.registry import import_modules
from supernet.run import load_data, run_search, run_trials_job, train_found, write_report
from supernet.rundir import RunFiles
from supernet.search import list_strategies
from supernet.search.loop import SearchWarning
from supernet.search.proxies import PROXIES
from supernet.search.relaxations import RELAXATIONS
from supernet.search.stabilizers import STABILIZERS
from supernet.search.strategies import STRATEGIES
from supernet.spaces import SPACES, list_spaces
from supernet.tabular import TABULAR, list_benchmarks
from supernet.trials import TRIAL_STRATEGIES

__all__ = ["main"]


def _config(args):
    cfg = load_config(args.config)
    overrides = list(args.set or [])
    if getattr(args, "out", None):
        overrides.append(f"out={args.out}")
    if getattr(args, "quiet", False):
        overrides.append("progress=false")
    return apply_overrides(cfg, overrides)


def _search(args) -> int:
    cfg = _config(args)
    epochs = "none" if args.quiet else ("verbose" if args.verbose else "lines")
    with warnings.catch_warnings():  # the run logs each warning itself, and reports it
        warnings.simplefilter("ignore", SearchWarning)
        report = run_search(cfg, resume=args.resume, force=args.force, epochs=epochs)
    if Replicas().main:
        print(open(os.path.join(cfg.out, "report.md")).read(), end="")
        print(f"results in {os.path.abspath(cfg.out)}")
    return 0 if report else 1


def _trials(args) -> int:
    overrides = []
    for flag, key in (("space", "space.name"), ("benchmark", "trials.benchmark"),
                      ("strategy", "trials.strategy"), ("budget", "trials.budget"),
                      ("engine", "trials.engine"), ("workers", "trials.workers"),
                      ("address", "trials.address"), ("metric", "trials.metric")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    args.set = overrides + list(args.set or [])
    cfg = _config(args)
    if "out" not in cfg.given:  # not the default search's folder
        cfg = apply_overrides(cfg, ["out=runs/trials"])
    run_trials_job(cfg, force=args.force, lines=not args.quiet)
    print(open(os.path.join(cfg.out, "report.md")).read(), end="")
    print(f"results in {os.path.abspath(cfg.out)}")
    return 0


def _run_config(run_dir: str, overrides: list[str]):
    if not os.path.isdir(run_dir):
        raise SupernetError(f"{run_dir}: no such run directory; pass --run DIR, a directory "
                            "written by 'supernet search --out DIR'")
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise SupernetError(f"{run_dir}: no config.yaml; is it a directory written by "
                            "'supernet search'?")
    if not os.path.exists(os.path.join(run_dir, "architecture.json")):
        if os.path.exists(os.path.join(run_dir, "checkpoints", "last.safetensors")):
            raise SupernetError(
                f"{run_dir}: the search did not finish (no architecture.json, but "
                f"checkpoints/last.safetensors); continue it with 'supernet search --config "
                f"{path} --resume', then run this command again"
            )
        raise SupernetError(f"{run_dir}: no architecture.json; the search wrote none (was it "
                            "stopped before its first epoch ended?); run 'supernet search' again")
    files = RunFiles.open(run_dir)
    files.check("config.yaml"), files.check("architecture.json")
    cfg = apply_overrides(load_config(path), overrides + [f"out={run_dir}"])
    missing = [m for m in cfg.imports if m not in _IMPORTED]
    if missing:  # a run directory names modules, but reading it imports none
        print(f"note: the run imported {missing}; a run directory's config does not import "
              f"them (importing runs their code): pass --import {' --import '.join(missing)} "
              "if its data set, space or ops come from them", file=sys.stderr)
    return cfg, files


def _train(args) -> int:
    overrides = list(args.set or [])
    if args.mode:
        overrides.append(f"train.mode={args.mode}")
    cfg, files = _run_config(args.run, overrides)
    if not files.complete:
        raise SupernetError(f"{args.run}: the search did not finish (its manifest.json is not "
                            "complete); run its 'supernet search' to the end first")
    try:  # the search's report, which the new training updates
        with open(files.check("report.json")) as f:
            report = json.load(f)
    except (OSError, ValueError) as exc:
        raise SupernetError(f"{args.run}: cannot read report.json ({exc}); the search did "
                            "not finish: run its 'supernet search' to the end first") from None
    if cfg.trials.benchmark is not None and "benchmark_best" in report:
        raise SupernetError(
            f"{args.run}: its trials were evaluated by benchmark {cfg.trials.benchmark!r}, "
            "whose data is not part of the run; load its architecture.json and train it on "
            "that data set (supernet.train.retrain)")
    graph = load_graph(os.path.join(args.run, "architecture.json"))

    module = compile_graph(graph)
    if cfg.train.mode == "finetune":
        load_weights(module, files.check("search_weights.safetensors"))
    data = load_data(cfg)
    main = Replicas.from_env().main  # the main process of a data-parallel run reports
    entries, history, trained = train_found(cfg, graph, module, data,
                                            log=print if main else (lambda *a: None))
    if not main:
        return 0
    # beside the search's results, never over them: a new folder of the run directory
    folder = _new_folder(args.run, args.to or f"trained-{cfg.train.mode}")
    where = os.path.join(args.run, folder)
    keep = []
    atomic_write(os.path.join(where, "config.yaml"),
                 yaml.safe_dump({"train": cfg.to_dict()["train"]}, sort_keys=False).encode())
    keep.append("config.yaml")
    if trained is not None:
        save_weights(trained, os.path.join(where, "weights.safetensors"))
        keep.append("weights.safetensors")
    atomic_write(os.path.join(where, "history.json"),
                 json.dumps({"train": history}, indent=1, default=float).encode())
    keep.append("history.json")
    files.add(*(f"{folder}/{name}" for name in keep))
    report.update(entries)
    write_report(where, report, files)
    print(open(os.path.join(where, "report.md")).read(), end="")
    print(f"results in {os.path.abspath(where)} (export them with 'supernet export --run "
          f"{args.run} --weights {folder}')")
    return 0


def _new_folder(run_dir: str, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``...: the first that is not in ``run_dir`` yet."""
    name = file_part(name, "--to folder")
    for i in range(1, 10_000):
        candidate = name if i == 1 else f"{name}-{i}"
        if not os.path.exists(os.path.join(run_dir, candidate)):
            return candidate
    raise SupernetError(f"{run_dir}: {name}-2 ... {name}-9999 all exist; pass another --to")


def _export(args) -> int:
    cfg, files = _run_config(args.run, [])
    graph = load_graph(os.path.join(args.run, "architecture.json"))
    module = compile_graph(graph)
    name = {"trained": "weights.safetensors", "search": "search_weights.safetensors"}.get(
        args.weights, f"{args.weights.rstrip('/')}/weights.safetensors")
    if name not in files.files and args.weights not in ("trained", "search"):
        raise SupernetError(
            f"{args.run}: --weights {args.weights!r} is neither 'trained', 'search' nor a "
            "folder of weights that 'supernet train' wrote in the run directory")
    if args.weights == "trained" and "weights.safetensors" not in files.files:
        raise SupernetError(
            f"{args.run}: no weights.safetensors (the final training did not run or did not "
            f"finish); train it with 'supernet train --run {args.run}', or export the weights "
            "the search left with --weights search")
    load_weights(module, files.check(name))
    print(f"weights: {name}")
    data = load_data(cfg)
    to = args.to or os.path.join(args.run, "export")
    remove_partial_writes(to)  # what a killed export left behind
    asked = _formats(args.formats)
    if "edge_index" in data.info:
        # a GNN reads its graph as context (edge_index), which the traced and exported
        # forms do not take: the graph, its text form and the weights are written
        if args.formats != "all" and asked:
            raise SupernetError(f"{args.run}: a graph network exports its graph and weights "
                                f"only; {sorted(asked)} take no graph as input")
        paths = export(graph, module.eval(), to, None, torchscript=False)
        skipped = {k: "a graph network reads its graph (edge_index) as input, which this "
                      "format does not take" for k in _FORMATS}
    else:
        onnx = ("onnx" in asked) if args.formats != "all" else None
        paths = export(graph, module.eval(), to, (data.test[0][:2],),
                       torchscript="torchscript" in asked, program="program" in asked,
                       onnx=onnx)
        with open(os.path.join(to, "export.json")) as f:
            skipped = json.load(f).get("skipped", {})
    for kind, path in paths.items():
        print(f"{kind:12s} {path}")
    for kind, why in skipped.items():
        print(f"{kind:12s} not written: {why}")
    return 0


_FORMATS = ("torchscript", "program", "onnx")


def _formats(text: str) -> set:
    """The formats ``--formats`` asks for besides the graph and weights (always written)."""
    if text == "all":
        return set(_FORMATS)
    asked = {f.strip() for f in text.split(",") if f.strip()}
    unknown = sorted(asked - set(_FORMATS) - {"none"})
    if unknown:
        raise SupernetError(f"--formats: unknown format(s) {unknown}; choose from "
                            f"{list(_FORMATS)}, 'all' or 'none' (the graph and weights are "
                            "always written)")
    return asked - {"none"}


def _show(args) -> int:
    path = args.file
    if os.path.isdir(path):  # a run directory: show the architecture it found
        path = os.path.join(path, "architecture.json")
        if not os.path.isfile(path):
            raise SupernetError(
                f"{args.file}: a directory without architecture.json; show takes a graph file "
                "(.json / .graphml) or a run directory written by 'supernet search' (a search "
                "stopped before its first epoch ended has written none)")
        RunFiles.open(args.file).check("architecture.json")  # as the run wrote it
    graph = read_graphml(path) if _is_graphml(path) else load_graph(path)
    print(repr(graph))
    print(graph.tabular())
    for name, cell in graph.cells.items():
        print(f"\ncell {name!r}:")
        print(cell.tabular())
    try:
        lint(graph)
        print("\nlint: ok")
    except SupernetError as exc:
        print(f"\nlint: {exc}")
    gates = graph.gate_edges() + [(c, e) for c, t in graph.cells.items() for e in t.gate_edges()]
    print(f"gates: {len(gates)}")
    if args.draw:
        from supernet.viz import draw_cells  # lazy: matplotlib, only when drawing

        for p in draw_cells(graph, args.draw):
            print(f"drawn: {p}")
    return 0


def _is_graphml(path: str) -> bool:
    """A ``.graphml`` file, or one whose text starts as XML does."""
    if path.lower().endswith(".graphml"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip().startswith(b"<")
    except OSError:
        return False  # load_graph says why it cannot be read


_LISTS = {"spaces": (list_spaces, SPACES), "strategies": (list_strategies, STRATEGIES),
          "datasets": (list_datasets, DATASETS), "ops": (list_ops, OPS),
          "relaxations": (RELAXATIONS.list, RELAXATIONS),
          "stabilizers": (STABILIZERS.list, STABILIZERS)}


def _describe(entry) -> str:
    """The first line of an entry's docstring (an op's ``doc``, a space's builder)."""
    doc = getattr(entry, "doc", None) or inspect.getdoc(getattr(entry, "build", entry)) or ""
    line = doc.strip().split("\n")[0].replace("``", "")
    if line.endswith((",", ";", ":")):  # a sentence that goes on: up to its first clause
        line = line[:-1] + " ..."
    return line if len(line) <= 100 else line[:97] + "..."


def _benchmarks(glob: str | None) -> list[str]:
    """Every ``name:dataset`` of the tabular benchmarks, filtered by a shell-style glob."""
    return [s for s in list_benchmarks() if glob is None or fnmatch.fnmatchcase(s, glob)]


#: ``(lister, resolve)`` of the lists whose entries are not registered under their names:
#: a proxy is ``(fn, what it reads)``, a benchmark is listed once per data set.
_OTHER_LISTS = {
    "trials": (TRIAL_STRATEGIES.list, TRIAL_STRATEGIES.resolve),
    "proxies": (PROXIES.list, lambda name: PROXIES.resolve(name).fn),
    "benchmarks": (_benchmarks, lambda spec: TABULAR.resolve(spec.partition(":")[0])),
}


def _list(args) -> int:
    if args.what in _LISTS:
        lister, registry = _LISTS[args.what]
        resolve = registry.resolve
    else:
        lister, resolve = _OTHER_LISTS[args.what]
    names = lister(args.filter)
    if args.names:
        print("\n".join(names))
        return 0
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:{width}}  {_describe(resolve(name))}".rstrip())
    return 0


_IMPORTED: set = set()  # the modules --import named in this process


def main(argv: list[str] | None = None) -> int:
    plugin = argparse.ArgumentParser(add_help=False)
    plugin.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                        help="import a module (a dotted name, or a .py file) that registers "
                             "data sets, spaces, ops, relaxations or strategies; repeatable. "
                             "Installed packages register theirs through the entry-point "
                             "group 'supernet.plugins'")
    parser = argparse.ArgumentParser(prog="supernet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("search", help="search, train what was found, report", parents=[plugin])
    s.add_argument("--config", help="YAML or JSON run config (default: the packaged one)")
    s.add_argument("--out", help="run directory (default: the config's 'out')")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set search.epochs=3")
    s.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoints/last.safetensors if it exists")
    s.add_argument("--force", action="store_true",
                   help="start over in an OUT that holds a finished run (its results are "
                        "replaced) or other files")
    s.add_argument("--quiet", action="store_true",
                   help="no progress bars and no line per epoch: the report alone")
    s.add_argument("--verbose", action="store_true",
                   help="also every gate's candidate weights after each epoch")
    tr = sub.add_parser("trials", help="multi-trial search: ask, evaluate, tell; report the best",
                        parents=[plugin])
    tr.add_argument("--config", help="YAML or JSON run config (default: the packaged one)")
    tr.add_argument("--space", help="the space (default: the config's; with --benchmark, "
                                    "the benchmark's)")
    tr.add_argument("--benchmark", metavar="NAME:DATA",
                    help="evaluate by a tabular benchmark's look-up, e.g. "
                         "nas-bench-graph:cora (default: train each architecture "
                         "trials.epochs epochs on the config's data)")
    tr.add_argument("--strategy", help="random, evolution, local, predictor, optuna")
    tr.add_argument("--budget", type=int, help="the number of architectures evaluated")
    tr.add_argument("--engine", choices=["local", "ray"],
                    help="in this process (default) or on Ray (pip install supernet[ray])")
    tr.add_argument("--workers", type=int, help="trials at a time on Ray")
    tr.add_argument("--address", help="a Ray cluster's address (default: a local one)")
    tr.add_argument("--metric", help="the metric maximized (default: val_accuracy)")
    tr.add_argument("--out", help="run directory (default: runs/trials)")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config key, e.g. --set trials.options.population=20")
    tr.add_argument("--force", action="store_true",
                    help="start over in an OUT that holds a finished run or other files")
    tr.add_argument("--quiet", action="store_true", help="no line per trial: the report alone")
    t = sub.add_parser("train", help="train the architecture of a run again", parents=[plugin])
    t.add_argument("--run", required=True, help="a directory written by 'supernet search'")
    t.add_argument("--mode", choices=["retrain", "finetune"])
    t.add_argument("--to", metavar="NAME",
                   help="the folder of the run directory for the results (default: "
                        "trained-MODE, then trained-MODE-2, ...; never the search's own)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE")
    e = sub.add_parser("export", help="standalone network, TorchScript, torch.export, ONNX",
                       parents=[plugin])
    e.add_argument("--run", required=True)
    e.add_argument("--to", help="output directory (default: RUN/export)")
    e.add_argument("--formats", default="all", metavar="LIST",
                   help="comma-separated: torchscript, program (torch.export), onnx; 'all' "
                        "(the default: ONNX when its packages are installed) or 'none'; the "
                        "graph and the weights are always written. A format asked for by "
                        "name is written or the command fails saying why")
    e.add_argument("--weights", default="trained", metavar="trained|search|FOLDER",
                   help="the weights after the run's final training (weights.safetensors, "
                        "the default), as the search left them (search_weights.safetensors), "
                        "or of a folder that 'supernet train' wrote (e.g. trained-finetune)")
    sh = sub.add_parser("show", help="print a graph file, lint it", parents=[plugin])
    sh.add_argument("file", help="a graph file (.json / .graphml) or a run directory")
    sh.add_argument("--draw", metavar="DIR",
                    help="draw the graph and each of its cells as pictures into DIR")
    ls = sub.add_parser("list", help="list registered names", parents=[plugin])
    ls.add_argument("what", choices=["spaces", "strategies", "relaxations", "stabilizers",
                                     "datasets", "ops", "trials", "proxies", "benchmarks"])
    ls.add_argument("--filter", metavar="GLOB",
                    help="only names matching this shell-style glob, e.g. 'darts*'")
    ls.add_argument("--names", action="store_true",
                    help="the names alone, one per line (without their descriptions)")
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    command = args.command or "search"
    if args.command is None:
        args = parser.parse_args(["search", *(argv or [])])
    try:
        if command == "version":
            print(__version__)
            return 0
        names = getattr(args, "imports", None) or []
        import_modules(names, "--import")
        _IMPORTED.update(names)
        return {"search": _search, "trials": _trials, "train": _train, "export": _export, "show": _show,
                "list": _list}[command](args)
    except SupernetError as exc:
        print(f"supernet: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `supernet list ops | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # Ctrl-C: a short note, not a traceback from inside torch
        hint = (" (the search saved its last finished epoch; run the same command again to "
                "continue it)" if command == "search" else "")
        print(f"supernet: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
