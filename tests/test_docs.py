"""The documentation's code blocks run: each page's ```python blocks, in order, in one
namespace, as a reader would paste them."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ["tutorial_custom_space.md", "spaces.md", "../README.md", "cli.md", "search.md",
         "creation.md", "levels.md", "lowering.md", "crosslevel.md", "data.md", "trials.md"]


def blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_run(page, capsys):
    code = blocks(page)
    assert code, f"{page} has no python block"
    namespace = {"__name__": f"docs_{page}"}
    for k, block in enumerate(code):
        try:
            exec(compile(block, f"{page}[block {k}]", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"{page}, python block {k} failed: {exc!r}\n{block}") from exc


def test_the_command_line_tutorial_runs_as_written(tmp_path):
    """docs/tutorial_cli.md: its files saved, its commands run in order in a fresh folder;
    an output line under a command is looked for in what it prints (``...`` matches
    anything), and a ``supernet: error:`` line means the command must fail with it."""
    import os
    import shlex
    import subprocess
    import sys

    text = (DOCS / "tutorial_cli.md").read_text()
    steps = re.findall(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```", text, flags=re.S | re.M)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    files = commands = 0
    for lang, name, body in steps:
        if name:
            (tmp_path / name).write_text(body)
            files += 1
        if lang != "console":
            continue
        runs, expected = [], {}
        for line in body.splitlines():
            if line.startswith("$ "):
                runs.append(line[2:])
            elif line.strip():
                expected.setdefault(len(runs) - 1, []).append(line)
        for i, command in enumerate(runs):
            argv = shlex.split(command)
            assert argv[0] in ("supernet", "python"), command
            run = [sys.executable, *(["-m", "supernet"] if argv[0] == "supernet" else [])]
            proc = subprocess.run([*run, *argv[1:]], cwd=tmp_path,
                                  env=env, capture_output=True, text=True, timeout=300)
            commands += 1
            want = expected.get(i, [])
            fails = any(w.startswith("supernet: error:") for w in want)
            assert (proc.returncode == 2) if fails else (proc.returncode == 0), \
                f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
            for w in want:
                pattern = ".*".join(re.escape(part) for part in w.split("..."))
                assert re.search(pattern, proc.stdout + proc.stderr), (command, w, proc.stderr)
    assert files >= 2 and commands >= 6
