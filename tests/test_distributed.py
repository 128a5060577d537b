"""Data-parallel searches under torchrun (Gloo on the loopback interface).

The property only a correct data-parallel step has: two processes, each holding half of
every batch, end the search with the weights, architecture parameters, history and edits
of one process holding the whole batches; with batch norm, too, which normalizes with the
whole batch's statistics (the arithmetic is checked on parts run by threads in one
process).
"""

import contextlib
import copy
import os
import subprocess
import sys
import threading

import ddp_search
import numpy as np
import pytest
import torch
import yaml

import supernet
from supernet import Graph
from supernet.distributed import Replicas, ShardedBatches, SyncedNorms
from supernet.units import add_group, add_input, connect

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(supernet.__file__)))


def torchrun(*args, nproc: int = 2, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_sharded_batches_are_the_single_process_batches_split():
    size, batch = 23, 6
    one = list(torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(size), generator=torch.Generator().manual_seed(4)),
        batch, drop_last=False))
    parts = [list(ShardedBatches(size, batch, r, 3, torch.Generator().manual_seed(4)))
             for r in range(3)]
    # the last batch (5 samples) cannot give 3 processes 2 samples each: dropped
    assert [len(p) for p in parts] == [3, 3, 3] == [len(ShardedBatches(
        size, batch, 0, 3, torch.Generator().manual_seed(4)))] * 3
    for i in range(3):
        joined = parts[0][i] + parts[1][i] + parts[2][i]
        assert joined == one[i] and all(len(p[i]) == 2 for p in parts)
    ordered = ShardedBatches(8, 4, 1, 2)  # no generator: in order, as evaluation reads
    assert list(ordered) == [[2, 3], [6, 7]]
    # evaluation measures every sample: the last batch of 5 is split 2, 2, 1
    parts = [list(ShardedBatches(23, 6, r, 3)) for r in range(3)]
    assert sorted(i for p in parts for b in p for i in b) == list(range(23))
    assert [len(ShardedBatches(23, 6, r, 3)) for r in range(3)] == [len(p) for p in parts]
    assert [len(ShardedBatches(13, 6, r, 3)) for r in range(3)] == [3, 2, 2]


def test_a_single_process_is_no_replica_set():
    r = Replicas()
    assert (r.rank, r.world, r.active, r.main) == (0, 1, False, True)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 3.0)
    loss, n = r.average_grads([p], torch.tensor(0.5), 7)
    assert torch.equal(p.grad, torch.full((2,), 3.0)) and float(loss) == 0.5 and n == 7
    # batch norm is torch's own, untouched: no function mode is entered
    assert isinstance(r.synced_norms(), contextlib.nullcontext)


class _Threads:
    """Processes played by threads: ``reduce(rank)`` sums a tensor over them in place, as
    :meth:`Replicas.all_reduce` does over processes."""

    def __init__(self, world: int):
        self.barrier, self.parts = threading.Barrier(world), [None] * world

    def reduce(self, rank: int):
        def reduce(t):
            self.parts[rank] = t.clone()
            self.barrier.wait()
            total = sum(self.parts[1:], self.parts[0].clone())
            self.barrier.wait()
            t.copy_(total)
        return reduce


def _parts_step(module, x, target, sizes, synced=True):
    """Each part of ``x`` (``sizes``) stepped by its own replica of ``module`` in a thread
    (the mean over its samples of ``(out * target).sum()``, backward): ``(outputs, input
    gradient, parameter gradients, buffers)`` as a data-parallel step combines them (the
    gradients weighted by each part's share of the batch, :meth:`Replicas.average`)."""
    group, n = _Threads(len(sizes)), x.shape[0]
    bounds = np.cumsum([0, *sizes])
    reps = [copy.deepcopy(module) for _ in sizes]
    found, errors = [None] * len(sizes), []

    def run(r):
        try:
            xs = x[bounds[r]:bounds[r + 1]].clone().requires_grad_()
            with SyncedNorms(group.reduce(r)) if synced else contextlib.nullcontext():
                out = reps[r](xs)
                (out * target[bounds[r]:bounds[r + 1]]).sum().div(sizes[r]).backward()
            found[r] = (out.detach(), xs.grad * sizes[r] / n)
        except Exception as exc:  # noqa: BLE001 - raised in the test's thread below
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    grads = {k: sum(dict(m.named_parameters())[k].grad * s / n for m, s in zip(reps, sizes))
             for k, _ in module.named_parameters()}
    return (torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found]), grads,
            [dict(m.named_buffers()) for m in reps])


def _unit_module():
    g = Graph("channel")
    add_input(g, "x", 3)
    add_group(g, "h", 4, act="relu", norm="batchnorm")
    connect(g, "x", "h")
    add_group(g, "y", 2)
    connect(g, "h", "y")
    g.set_outputs(["y"])
    return supernet.compile(g)


@pytest.mark.parametrize("make,shape", [
    (lambda: torch.nn.BatchNorm1d(3), (7, 3)),
    (lambda: torch.nn.BatchNorm1d(3, affine=False), (7, 3, 5)),
    (lambda: torch.nn.BatchNorm2d(3, momentum=None), (7, 3, 4, 2)),
    (lambda: torch.nn.BatchNorm2d(3, track_running_stats=False), (7, 3, 4, 2)),
    (lambda: torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.BatchNorm1d(3, affine=False),
                                 torch.nn.ReLU(), torch.nn.BatchNorm1d(3)), (7, 2, 6)),
    (_unit_module, (7, 3)),
], ids=["bn1d", "bn1d-non-affine", "bn2d-cumulative", "bn2d-no-running", "conv-bn-bn", "units"])
def test_batch_norm_over_uneven_parts_is_the_whole_batch_s(make, shape):
    torch.manual_seed(0)
    module = make().double().train()
    for m in module.modules():  # non-trivial affine entries and running statistics
        for name in ("weight", "norm_weight"):
            if getattr(m, name, None) is not None and getattr(m, name).dim() == 1:
                torch.nn.init.uniform_(getattr(m, name), 0.5, 1.5)
        for name in ("bias", "norm_bias", "running_mean"):
            if getattr(m, name, None) is not None:
                torch.nn.init.uniform_(getattr(m, name), -1.0, 1.0)
    x = torch.randn(shape, dtype=torch.float64) * 2 + 1
    whole = copy.deepcopy(module)
    xw = x.clone().requires_grad_()
    out = whole(xw)
    target = torch.randn_like(out)
    (out * target).sum().div(x.shape[0]).backward()
    ref = (out.detach(), xw.grad, {k: p.grad for k, p in whole.named_parameters()},
           dict(whole.named_buffers()))

    def gap(found):
        diffs = [(found[0] - ref[0]).abs().max(), (found[1] - ref[1]).abs().max()]
        diffs += [(found[2][k] - ref[2][k]).abs().max() for k in ref[2]]
        diffs += [(b[k].double() - ref[3][k].double()).abs().max()
                  for b in found[3] for k in ref[3]]
        return float(max(diffs))

    for sizes in ((4, 3), (2, 2, 3)):
        assert gap(_parts_step(module, x, target, sizes)) < 1e-12, sizes
    assert gap(_parts_step(module, x, target, (4, 3), synced=False)) > 1e-2  # parts' own


@pytest.mark.parametrize("strategy", [("darts", "second_order"), ("gdas",)],
                         ids=["darts-second-order", "gdas"])
def test_two_processes_search_as_one_process_on_whole_batches(tmp_path, strategy):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    ddp_search.main(str(one), strategy[0], "second_order" in strategy)
    done = torchrun(os.path.join(HERE, "ddp_search.py"), str(two), *strategy)
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(one, weights_only=False)
    b = torch.load(two, weights_only=False)
    assert (a["world"], b["world"]) == (1, 2)
    assert a["edits"] == b["edits"]  # the same architecture was kept
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.allclose(a["state"][k], b["state"][k], atol=1e-6), k
    for ra, rb in zip(a["history"], b["history"]):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            if ra[key] is None:  # second order measures no validation accuracy
                assert rb[key] is None, key
            else:
                assert np.isclose(ra[key], rb[key], atol=1e-6), key


def test_two_processes_normalize_batch_norm_as_one_process_on_whole_batches(tmp_path):
    # batches of 7 split 4 and 3, batch norm in the stem, the preprocessing and the ops
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    a = ddp_search.norms(str(one))
    done = torchrun(os.path.join(HERE, "ddp_search.py"), str(two), "norms")
    assert done.returncode == 0, done.stderr[-3000:]
    b = torch.load(two, weights_only=False)
    unsynced = torch.load(f"{two}.unsynced", weights_only=False)
    assert a.keys() == b.keys() == unsynced.keys()
    kinds = {"architecture": lambda k: k.startswith("arch."),
             "running statistics": lambda k: k.endswith(("running_mean", "running_var")),
             "weights": lambda k: not k.startswith("arch.") and "running" not in k}
    for kind, of in kinds.items():
        keys = [k for k in a if of(k)]
        assert keys, kind
        assert max(float((a[k] - b[k]).abs().max()) for k in keys) < 1e-5, kind
        # each process normalizing by its own part's statistics ends elsewhere
        assert max(float((a[k] - unsynced[k]).abs().max()) for k in keys) > 1e-2, kind


def test_every_process_samples_the_same_paths_when_its_part_draws_other_dropout(tmp_path):
    # batches of 7 split 4 and 3: each process's dropout draws differ in number, yet the
    # Gumbel samples of the next step must not
    done = torchrun(os.path.join(HERE, "ddp_search.py"), str(tmp_path / "paths"), "paths")
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(str(tmp_path / "paths.0"), weights_only=False)
    b = torch.load(str(tmp_path / "paths.1"), weights_only=False)
    assert len(a) == len(b) == 12 and a == b


def test_the_command_runs_data_parallel_and_the_main_process_writes(tmp_path):
    config = {"space": {"name": "darts1d", "C": 4, "layers": 3},
              "strategy": {"name": "darts"}, "data": {"name": "mnist1d", "val_fraction": 0.5},
              "search": {"epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2},
              # a few steps: every batch norm of a step is a collective of both processes
              "train": {"mode": "retrain", "epochs": 1, "batch_size": 16,
                        "options": {"steps_per_epoch": 4}},
              "progress": False}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    done = torchrun("-m", "supernet", "search", "--config", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results in") == 1  # one report, from the main process
    for name in ("architecture.json", "genotype.txt", "weights.safetensors", "report.json",
                 "checkpoints/last.safetensors"):
        assert (out / name).exists(), name
    found = supernet.load_graph(str(out / "architecture.json"))
    supernet.lint(found)
    assert not found.gate_edges()


def test_what_cannot_be_split_across_processes_is_refused(monkeypatch):
    from search_graphs import chain, data

    from search_spaces import create_space
    from supernet.data import load_dataset
    from supernet.data.graphs import whole_graph_batch, whole_graph_splits
    from supernet.errors import ConfigError
    from supernet.search import BilevelSearch

    two = Replicas()
    two.world = 2  # as under torchrun with two processes
    monkeypatch.setattr(Replicas, "from_env", classmethod(lambda cls: two))
    with pytest.raises(ConfigError, match=r"batch_size=2: a data-parallel run over 2 processes "
                                          r"splits each batch, and needs at least 4 samples"):
        BilevelSearch(chain(), data(), config={"batch_size": 2})
    splits = whole_graph_splits(load_dataset("ba_shapes", num_nodes=30, num_motifs=4))
    with pytest.raises(ConfigError, match=r"a node-classification graph\) cannot be split "
                                          r"across 2 processes"):
        BilevelSearch(create_space("gnn", in_channels=2, hidden=4, num_classes=4),
                      splits["train"], splits["val"], batch_fn=whole_graph_batch,
                      config={"batch_size": 4})
