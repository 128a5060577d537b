"""A run directory's files: a manifest with every file's SHA-256, checked on every read; a
checkpoint of another run refused; file names made safe and kept inside their folder; file
modes that follow the umask; a search killed while writing any of its files resumes."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from tiny_run import tiny_args

from supernet import Graph
from supernet.cli import main
from supernet.errors import SerializationError
from supernet.io import atomic_write, file_part, file_sha256, path_inside, remove_partial_writes
from supernet.rundir import RunFiles

TINY = tiny_args()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    assert main(["search", "--out", out, *TINY]) == 0
    return out


def _written(directory):
    return sorted(os.path.relpath(os.path.join(r, f), directory).replace(os.sep, "/")
                  for r, _, fs in os.walk(directory) for f in fs if f != "manifest.json")


def test_the_manifest_lists_every_file_the_run_wrote_with_its_sha256(run_dir):
    files = RunFiles.open(run_dir)
    assert files.complete
    assert sorted(files.files) == _written(run_dir)  # pictures and the checkpoint too
    assert "pictures/graph.png" in files.files and "checkpoints/last.safetensors" in files.files
    for name, entry in files.files.items():
        sha, size = file_sha256(os.path.join(run_dir, name))
        assert (sha, size) == (entry["sha256"], entry["bytes"])
    assert files.identity["space"]["C"] == 4 and "search" not in files.identity


@pytest.mark.parametrize("name, command", [
    ("architecture.json", ["export"]), ("architecture.json", ["show"]), ("weights.safetensors", ["export"]),
    ("config.yaml", ["train"]), ("report.json", ["train"]),
    ("search_weights.safetensors", ["train", "--mode", "finetune"])])
def test_a_file_changed_after_the_run_is_refused_naming_it(run_dir, tmp_path, capsys, name,
                                                         command):
    out = tmp_path / "r"
    shutil.copytree(run_dir, out)
    path = out / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one flipped bit
    path.write_bytes(bytes(data))
    argv = ([command[0], str(out)] if command[0] == "show" else
            [command[0], "--run", str(out), *command[1:]])
    assert main(argv) == 2
    assert f"{path}: changed since the run wrote it" in capsys.readouterr().err


def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(run_dir, tmp_path, capsys):
    other = str(tmp_path / "other")
    assert main(["search", "--out", other, *TINY, "--set", "space.C=6",
                 "--set", "train.mode=none", "--set", "pictures=false"]) == 0
    out = tmp_path / "mine"
    shutil.copytree(run_dir, out)
    shutil.copy(os.path.join(other, "checkpoints", "last.safetensors"), out / "checkpoints")
    assert main(["search", "--out", str(out), *TINY, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "last.safetensors: written by another run" in err and "space.C: 6 there, 4 now" in err
    # a search killed before its report, with another run's checkpoint copied in: the rerun
    # that would continue it refuses too
    (out / "report.json").unlink()
    files = RunFiles.open(str(out))
    files.drop("report.json")
    assert main(["search", "--out", str(out), *TINY]) == 2
    assert "space.C: 6 there, 4 now" in capsys.readouterr().err


def test_resume_may_extend_the_budget_of_the_same_search(run_dir, tmp_path, capsys):
    out = tmp_path / "more"
    shutil.copytree(run_dir, out)
    assert main(["search", "--out", str(out), *TINY, "--set", "search.epochs=2",
                 "--set", "train.mode=none", "--set", "pictures=false", "--resume"]) == 0
    assert json.load(open(out / "report.json"))["search_epochs"] == 2
    assert RunFiles.open(str(out)).complete


def test_export_without_trained_weights_says_so(tmp_path, capsys):
    out = str(tmp_path / "untrained")
    assert main(["search", "--out", out, *TINY, "--set", "train.mode=none",
                 "--set", "pictures=false"]) == 0
    capsys.readouterr()
    assert main(["export", "--run", out]) == 2
    assert "no weights.safetensors" in capsys.readouterr().err
    assert main(["export", "--run", out, "--weights", "search", "--to", str(tmp_path / "e")]) == 0
    assert "weights: search_weights.safetensors" in capsys.readouterr().out


def test_leftover_temporary_files_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    for p in (out / ".tmp-abc", out / "checkpoints" / ".tmp-def"):
        p.write_bytes(b"half a file")
    (out / "notes.txt").write_text("mine")  # not the run's: --force lets the run in, and keeps it
    assert main(["search", "--out", str(out), *TINY, "--set", "train.mode=none",
                 "--set", "pictures=false", "--force"]) == 0
    left = [f for _, _, fs in os.walk(out) for f in fs if f.startswith(".tmp-")]
    assert left == [] and (out / "notes.txt").read_text() == "mine"
    assert remove_partial_writes(str(tmp_path / "absent")) == []


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic_write(str(tmp_path / "f"), b"x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o666 & ~mask


def test_file_names_from_graph_names_stay_inside_their_folder(tmp_path):
    pytest.importorskip("matplotlib")
    from supernet.viz import draw_cells

    def tiny(name):
        g = Graph("layer", name=name)
        g.add_input("x", channels=3)
        g.add_node("h", channels=3)
        g.add_edge("x", "h", ["identity"])
        g.set_outputs(["h"])
        return g

    g = tiny("net")
    names = ["a/b", "a_b", "a/../../../escaped", "/abs/olute", "..", "CON", "nul.txt",
             "back\\slash", "new\nline", "ü"]
    for name in names:
        g.add_cell(name, tiny("cell"))
    inside = tmp_path / "deep" / "pics"
    paths = draw_cells(g, str(inside))
    assert len(set(paths)) == len(names) + 1  # distinct files: no two names collide
    for p in paths:
        assert os.path.dirname(os.path.realpath(p)) == os.path.realpath(inside)
        assert os.path.exists(p)
    assert sorted(os.listdir(tmp_path)) == ["deep"]  # nothing above the folder
    assert file_part("CON").upper() != "CON"
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(SerializationError, match="leaves the folder"):
            path_inside(str(inside), bad)
    with pytest.raises(SerializationError, match="empty cell name"):
        file_part("", "cell name")


def test_a_search_killed_while_writing_each_kind_of_file_resumes_to_the_same_end(tmp_path):
    helper = os.path.join(os.path.dirname(__file__), "helpers", "kill_writes.py")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root)
    proc = subprocess.run([sys.executable, helper, str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["reference_exit"] == 0
    kills = result["kills"]
    assert len(kills) == 17
    for kill in kills:  # each run died by SIGKILL at its file, leaving only its own temporary
        assert kill["killed"] and kill["temporary_files_left"] == 1, kill
    assert result["final_exit"] == 0 and result["temporary_files_after"] == 0
    assert result["complete"] and result["listed_and_verified"] >= 14
    assert all(result["same_as_uninterrupted"].values()), result["same_as_uninterrupted"]
    assert result["same_report"]


def test_export_writes_what_is_asked_or_says_why_not(run_dir, tmp_path, capsys, monkeypatch):
    import sys

    to = tmp_path / "e"
    assert main(["export", "--run", run_dir, "--to", str(to), "--formats", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "torchscript" in out and "program" not in out and (to / "model.ts").exists()
    assert not (to / "model.pt2").exists()
    assert main(["export", "--run", run_dir, "--formats", "torchscript,pickle"]) == 2
    assert "--formats: unknown format(s) ['pickle']" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as after the base install
    assert main(["export", "--run", run_dir, "--to", str(tmp_path / "f"),
                 "--formats", "onnx"]) == 2
    assert 'pip install "supernet[export]"' in capsys.readouterr().err
    assert main(["export", "--run", run_dir, "--to", str(tmp_path / "g"),
                 "--formats", "none"]) == 0
    out = capsys.readouterr().out
    assert "weights" in out and "graph" in out and "torchscript" not in out
