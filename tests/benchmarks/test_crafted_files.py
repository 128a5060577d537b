"""benchmarks/crafted_files.py: no crafted file runs code through any entry point."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import crafted_files


def test_no_crafted_file_runs_code_through_any_entry_point(capsys):
    rows = crafted_files.main([])
    assert len(rows) >= 20
    assert not [r["entry"] for r in rows if r["executed"]]
    # every payload is refused with a supernet error naming the file (the node-link JSON
    # with python-looking keys is plain data: loaded, and nothing runs)
    loaded = [r["entry"] for r in rows if r["outcome"] == "loaded"]
    assert loaded == ["load_graph (node-link JSON)"]
    assert all("D/" in r["outcome"] or "untrusted" in r["outcome"]
               or "could not resolve" in r["outcome"] for r in rows if r["entry"] not in loaded)
    assert "| supernet search --resume |" in capsys.readouterr().out
