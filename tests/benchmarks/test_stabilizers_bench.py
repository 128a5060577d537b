"""A smoke run of benchmarks/stabilizers.py (``--quick``): its job records, its tables, and
that a rerun reuses what it kept."""

import contextlib
import doctest
import io
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import stabilizers as bench

from supernet.errors import ConfigError

# two search steps of a smoke run do not learn the task, and the search says so
pytestmark = pytest.mark.filterwarnings("ignore:.*did not learn the task")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stab")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = bench.main(["--quick", "--out", str(out), "--seeds", "1",
                              "--datasets", "digits", "--methods", "darts"])
    return out, results, printed.getvalue()


def test_the_examples_run():
    result = doctest.testmod(bench)
    assert result.attempted >= 1 and result.failed == 0


def test_a_quick_run_keeps_one_record_per_job(quick_run):
    out, results, printed = quick_run
    (rec,) = results
    assert (rec["dataset"], rec["method"], rec["seed"]) == ("digits", "darts", 0)
    assert json.loads((out / "digits-darts-s0.json").read_text()) == rec
    for key in ("test_acc", "supernet_acc", "discretized_acc", "discretized_val_acc"):
        assert 0.0 <= rec[key] <= 1.0, key
    assert rec["search_wall_s"] > 0 and rec["search_cpu_s"] > 0
    # the share is that of the genotype's ops (2 steps: 4 ops per cell)
    assert len(rec["ops"]) == 8 and rec["ops"] == bench.cell_ops(rec["genotype"])
    assert rec["param_free"] == sum(op in bench.PARAM_FREE for op in rec["ops"]) / 8
    assert "load average at start" in printed
    assert "| DARTS | 1 |" in printed and "### digits" in printed


def test_a_rerun_reuses_the_kept_result_and_a_changed_one_is_not_reused(quick_run, monkeypatch):
    out, results, _ = quick_run
    path = out / "digits-darts-s0.json"
    before = os.stat(path).st_mtime_ns
    ran = []
    monkeypatch.setattr(bench, "run_job", lambda *a: ran.append(a) or dict(results[0]))
    bench.kept_or_run(str(out), "digits", "darts", 0, True)
    assert ran == [] and os.stat(path).st_mtime_ns == before
    # a full-size job is another job: the kept smoke result does not stand for it
    bench.kept_or_run(str(out), "digits", "darts", 0, False)
    assert ran == [("digits", "darts", 0, False)]


def test_unknown_names_fail_before_any_job(tmp_path):
    with pytest.raises(ConfigError, match="unknown method \\['dartz'\\]"):
        bench.main(["--quick", "--out", str(tmp_path), "--methods", "dartz"])
    with pytest.raises(ConfigError, match="unknown data set \\['cifar'\\]"):
        bench.main(["--quick", "--out", str(tmp_path), "--datasets", "cifar"])
    assert os.listdir(tmp_path) == []
