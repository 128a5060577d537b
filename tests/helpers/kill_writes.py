"""Kill a ``supernet search`` (SIGKILL) while it writes each kind of file, rerun it each
time, and compare the end with an uninterrupted run.

    python tests/helpers/kill_writes.py DIR [--kinds N]

Every run is a fork of this process (imported once, one thread), so each kill costs only
the part of the run before it. A kill happens when a file of the kind is about to replace
the old one (:func:`supernet.io.atomic_write` wrote it to a temporary file, not yet renamed):
the moment a crash leaves a temporary file and the previous version. The chain continues
from each killed run: the next run is killed at the next kind, and so on; the last one runs
to its end. Prints one JSON object: the kills, the reruns and the comparison.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import torch
from tiny_run import tiny_args

ARGS = tiny_args(epochs=2)

#: (file name, what to kill at) in the order a run writes them; a kind written more than
#: once is killed at its first write in the run that is killed.
KINDS = [
    ("manifest.json", "first"),  # the run's manifest, marked unfinished at its start
    ("config.yaml", "first"),
    ("last.safetensors", "first"),  # the checkpoint of epoch 1
    ("last.safetensors", "first"),  # of epoch 2 (the run before was killed at epoch 1's)
    ("last.safetensors", "first"),  # the finalized search
    ("architecture.json", "first"),
    ("architecture.graphml", "first"),
    ("genotype.txt", "first"),
    ("search_weights.safetensors", "first"),
    ("edits.json", "first"),
    ("graph.png", "first"),
    ("architecture_weights.png", "first"),
    ("weights.safetensors", "first"),
    ("history.json", "first"),
    ("report.json", "first"),
    ("report.md", "first"),
    ("manifest.json", "complete"),  # the last write: the run marked finished
]

SAME = ["architecture.json", "architecture.graphml", "genotype.txt", "edits.json",
        "search_weights.safetensors", "weights.safetensors"]


def _child(out: str, target) -> None:
    """Run the search in this (forked) process; SIGKILL it at ``target``."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if target is not None and os.path.basename(dst) == target[0]:
            if target[1] == "first" or b'"complete": true' in open(src, "rb").read():
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *args, **kwargs)

    os.replace = replace
    from supernet.cli import main

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1), os.dup2(devnull, 2)
    os._exit(main(["search", "--out", out, *ARGS]))


def _run(out: str, target=None) -> tuple[bool, int | None]:
    """``(killed by SIGKILL, exit code)`` of one run in a forked process."""
    pid = os.fork()
    if pid == 0:
        try:
            _child(out, target)
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) == signal.SIGKILL, None
    return False, os.WEXITSTATUS(status)


def _temporary(out: str) -> list[str]:
    return [os.path.join(r, f) for r, _, fs in os.walk(out) for f in fs if f.startswith(".tmp-")]


def main(argv=None) -> dict:
    args = list(sys.argv[1:] if argv is None else argv)
    base = args[0]
    kinds = KINDS[:int(args[args.index("--kinds") + 1])] if "--kinds" in args else KINDS
    torch.set_num_threads(1)
    reference = os.path.join(base, "reference")
    killed_dir = os.path.join(base, "killed")
    from supernet.cli import main as cli

    with open(os.devnull, "w") as quiet:  # in this process: the forks start warm
        stdout, stderr, sys.stdout, sys.stderr = sys.stdout, sys.stderr, quiet, quiet
        try:
            code = cli(["search", "--out", reference, *ARGS])
        finally:
            sys.stdout, sys.stderr = stdout, stderr
    result = {"reference_exit": code, "kills": []}
    for target in kinds:
        killed, code = _run(killed_dir, target)
        left = _temporary(killed_dir)
        result["kills"].append({"file": target[0], "at": target[1], "killed": killed,
                                "exit": code, "temporary_files_left": len(left)})
    _, code = _run(killed_dir)
    result["final_exit"] = code
    result["temporary_files_after"] = len(_temporary(killed_dir))
    from supernet.rundir import RunFiles

    files = RunFiles.open(killed_dir)
    result["complete"] = files.complete
    checked = [files.check(name) for name in files.files]
    result["listed_and_verified"] = len(checked)
    result["same_as_uninterrupted"] = {
        name: open(os.path.join(reference, name), "rb").read()
        == open(os.path.join(killed_dir, name), "rb").read() for name in SAME}
    ref, now = (json.load(open(os.path.join(d, "report.json"))) for d in (reference, killed_dir))
    timing = ("search_seconds", "train_seconds")
    result["same_report"] = ({k: v for k, v in ref.items() if k not in timing}
                             == {k: v for k, v in now.items() if k not in timing})
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
