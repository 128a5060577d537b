"""Crafted files through every entry point that reads what a user may be handed: does any
of them run code from the file?

    PYTHONPATH=. python benchmarks/crafted_files.py

Each payload creates a marker file when it runs (a pickle whose ``__reduce__`` opens a file,
a YAML tag that calls a function, an XML external entity that reads a local file). A run
directory is crafted the way an attacker who controls the whole folder would: the payload
in place of a weights file or checkpoint *and* ``manifest.json`` rewritten to list its
SHA-256, so that the manifest does not stop it before the loader is reached. Prints a
markdown table: entry point, file, outcome (the error's first words), executed.
``load_export(trusted=True)`` of an archive whose checksum matches is left out: it loads the
TorchScript and ``torch.export`` archives, which run code by design (your own exports only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import shutil
import tempfile

import torch


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_file(path, marker, how="torch.save", fmt="supernet-search-checkpoint"):
    obj = {"format": fmt, "x": _Payload(marker)}
    if how == "torch.save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)


def _relist(run, name):
    """Rewrite ``run``'s manifest so that it vouches for ``name`` as it is now."""
    from supernet.rundir import RunFiles

    files = RunFiles.open(run)
    files.add(name)


def _quiet_main(argv):
    from supernet.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue().replace("supernet: error: ", "").strip()


TINY = ["--set", "search.epochs=1", "--set", "search.max_steps_per_epoch=2",
        "--set", "search.batch_size=16", "--set", "train.epochs=1",
        "--set", "space.C=4", "--set", "space.layers=3", "--set", "space.steps=2",
        "--set", "space.multiplier=2", "--set", "data.num_samples=300", "--quiet",
        "--set", "pictures=false"]


def cases(base):
    """``(entry point, file, callable(marker) -> outcome text)``."""
    from supernet import compile
    from supernet.config import load_config
    from supernet.edits import EditLog
    from supernet.export import export, load_export
    from supernet.io import convert_pickle, load_graph, load_tensors, load_weights, read_graphml
    from supernet.search import BilevelSearch
    from supernet.search.checkpoint import load_checkpoint
    from supernet.units import mlp

    run = os.path.join(base, "run")
    code, err = _quiet_main(["search", "--out", run, *TINY])
    assert code == 0, err

    def fresh_run(name):
        d = os.path.join(base, name)
        shutil.copytree(run, d)
        return d

    def crafted(name, how="torch.save", fmt="supernet-search-checkpoint"):
        def make(marker):
            path = os.path.join(base, name)
            _pickle_file(path, marker, how, fmt)
            return path
        return make

    def api(fn, make):
        def go(marker):
            fn(make(marker))
        return go

    tiny_net = compile(mlp([3, 2], seed=0))
    data = (torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    out = []
    for how in ("torch.save", "pickle"):
        out += [
            (f"load_checkpoint ({how})", "checkpoint",
             api(load_checkpoint, crafted("a.safetensors", how))),
            (f"load_weights ({how})", "weights",
             api(lambda p: load_weights(tiny_net, p), crafted("b.safetensors", how, "weights"))),
            (f"load_tensors ({how})", "tensor file",
             api(lambda p: load_tensors(p, "weights"), crafted("c.safetensors", how))),
            (f"BilevelSearch.resume ({how})", "checkpoint",
             api(lambda p: BilevelSearch.resume(p, data), crafted("d.safetensors", how))),
        ]
    out.append(("convert_pickle (trust not given)", "pickle",
                api(lambda p: convert_pickle(p, "weights"), crafted("e.pt"))))

    def cli_case(argv_of, name, relist):
        def go(marker):
            d = fresh_run(f"r{len(os.listdir(base))}")
            _pickle_file(os.path.join(d, name), marker)
            if relist:
                _relist(d, name)
            if name.startswith("checkpoints") and "--resume" not in argv_of(d):
                # a search killed before its report: the plain rerun continues it
                os.unlink(os.path.join(d, "report.json"))
                from supernet.rundir import RunFiles
                RunFiles.open(d).drop("report.json")
            code, err = _quiet_main(argv_of(d))
            if code == 0:
                raise AssertionError("accepted")
            raise RuntimeError(err.splitlines()[-1] if err else f"exit {code}")
        return go

    ckpt = os.path.join("checkpoints", "last.safetensors")
    out += [
        ("supernet search --resume", "checkpoints/last.safetensors",
         cli_case(lambda d: ["search", "--out", d, *TINY, "--resume"], ckpt, True)),
        ("supernet search (rerun of an unfinished run)", "checkpoints/last.safetensors",
         cli_case(lambda d: ["search", "--out", d, *TINY], ckpt, True)),
        ("supernet train --mode finetune", "search_weights.safetensors",
         cli_case(lambda d: ["train", "--run", d, "--mode", "finetune"],
                  "search_weights.safetensors", True)),
        ("supernet export", "weights.safetensors",
         cli_case(lambda d: ["export", "--run", d, "--to", os.path.join(d, "x")],
                  "weights.safetensors", True)),
        ("supernet export (manifest not rewritten)", "weights.safetensors",
         cli_case(lambda d: ["export", "--run", d, "--to", os.path.join(d, "x")],
                  "weights.safetensors", False)),
    ]

    def export_case(trusted, relist):
        def go(marker):
            from supernet.io import file_sha256

            d = os.path.join(base, f"export{len(os.listdir(base))}")
            g = load_graph(os.path.join(run, "architecture.json"))
            m = compile(g)
            export(g, m, d, (torch.randn(2, 1, 40),), onnx=False)
            _pickle_file(os.path.join(d, "model.pt2"), marker)
            if relist:
                manifest = json.load(open(os.path.join(d, "export.json")))
                manifest["sha256"]["program"] = file_sha256(os.path.join(d, "model.pt2"))[0]
                json.dump(manifest, open(os.path.join(d, "export.json"), "w"))
            back = load_export(d, trusted=trusted)
            if back.program is None:
                raise RuntimeError("the torch.export archive was not loaded (untrusted)")
        return go

    out += [
        ("load_export (default, untrusted)", "model.pt2", export_case(False, True)),
        ("load_export(trusted=True), archive changed", "model.pt2", export_case(True, False)),
    ]

    def yaml_case(marker):
        path = os.path.join(base, "evil.yaml")
        with open(path, "w") as f:
            f.write(f"seed: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
        load_config(path)

    def xml_case(marker):
        secret = os.path.join(base, "secret.txt")
        with open(secret, "w") as f:
            f.write("SECRET")
        path = os.path.join(base, "evil.graphml")
        with open(path, "w") as f:
            f.write(f'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "file://{secret}">]>'
                    '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><key id="level" '
                    'for="graph" attr.name="level" attr.type="string"/><graph edgedefault='
                    '"directed"><data key="level">&x;</data></graph></graphml>')
        g = read_graphml(path)
        if "SECRET" in str(g.nx.graph):
            open(marker, "w").close()

    def json_case(marker):
        path = os.path.join(base, "evil.json")
        with open(path, "w") as f:
            json.dump({"format": "supernet-node-link", "graph": {"level": "layer",
                       "__class__": "os.system", "meta": {"py/object": "builtins.open"}},
                       "nodes": [], "edges": []}, f)
        load_graph(path)

    def log_case(marker):
        path = os.path.join(base, "evil_edits.json")
        with open(path, "w") as f:
            json.dump({"edits": [{"kind": "__import__", "args": ["os"]}]}, f)
        EditLog.load(path)

    out += [
        ("load_config (YAML python tag)", "config.yaml", yaml_case),
        ("read_graphml (external entity)", "GraphML", xml_case),
        ("load_graph (node-link JSON)", "graph JSON", json_case),
        ("EditLog.load", "edit log", log_case),
    ]
    return out


def main(argv=None) -> list[dict]:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    torch.set_num_threads(1)
    import logging

    logging.getLogger("torch").setLevel(logging.ERROR)  # torch.export's own report of a bad file
    rows = []
    with tempfile.TemporaryDirectory() as base:
        for entry, kind, fn in cases(base):
            marker = os.path.join(base, f"EXECUTED-{len(rows)}")
            try:
                fn(marker)
                outcome = "loaded"
            except Exception as exc:  # the outcome is the error, whatever it is
                outcome = f"{type(exc).__name__}: {exc}"
            rows.append({"entry": entry, "file": kind, "outcome": outcome.replace(base, "D"),
                         "executed": os.path.exists(marker)})
    print(f"load average: {os.getloadavg()}\n")
    print("| entry point | file | outcome | executed |\n|---|---|---|---|")
    for r in rows:
        text = r["outcome"].replace("|", "/")
        short = text if len(text) <= 110 else text[:107] + "..."
        print(f"| {r['entry']} | {r['file']} | {short} | {'**yes**' if r['executed'] else 'no'} |")
    return rows


if __name__ == "__main__":
    main()
