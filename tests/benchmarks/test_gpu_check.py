"""The Python part of benchmarks/gpu_check.sh, on the CPU: the lean mode's equality check
and the table of the DARTS step in both modes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import gpu_check  # noqa: E402


def test_the_device_check_runs_on_the_cpu(capsys):
    assert gpu_check.main(["--device", "cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "lean = normal after one DARTS step on cpu: yes" in out
    rows = [line for line in out.splitlines() if line.startswith(("| normal", "| lean"))]
    assert len(rows) == 2 and rows[0].split("|")[3].strip() == "1.000"
