"""The three search families end to end at the neuron and channel levels, by strategy name
through BilevelSearch: discretized, linted, shrunk graphs whose modules run; edit logs that
replay; checkpointed searches that resume bitwise."""

import os

import pytest
import torch
from unit_search_helpers import check_final, cnn_data, mlp_data, sizes, tiny_cnn, tiny_mlp

from supernet.edits import EditLog
from supernet.io import from_node_link, to_node_link
from supernet.search import BilevelSearch, create_strategy
from supernet.search.creation.rigl import RigL
from supernet.search.creation.units import GrowUnits
from supernet.search.relaxations import TiedGates

SPACES = {"neuron_mlp": (tiny_mlp, mlp_data), "channel_cnn": (tiny_cnn, cnn_data)}

STRATEGIES = {
    "darts": {},  # continuous
    "darts2": {},
    "fairdarts": {},
    "snas": {},
    "gdas": {},  # path sampling
    "spos": {"population": 6, "iterations": 2, "topk": 3, "bn_batches": 1, "val_batches": 1},
    "progressive_gates": {"warmup": 1, "decisions": 2},  # progressive discretization
    "gradual_magnitude": {"sparsity": 0.5, "steps": 2},
}


def config(**kw):
    return {"epochs": 3, "batch_size": 8, "arch_lr": 0.05, "steps_per_epoch": 3, **kw}


@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_family_discretizes_unit_spaces(space, name, tmp_path):
    build, data = SPACES[space]
    graph, (x, y) = build(), data()
    search = BilevelSearch(graph, (x, y), strategy=create_strategy(name, **STRATEGIES[name]),
                           config=config())
    start = graph.copy()  # after the strategy's preparation: where the edit log starts
    before = sizes(start)
    if space == "channel_cnn" and name not in ("spos", "gradual_magnitude"):
        assert isinstance(search.module.relaxation, TiedGates)  # streams decide once
    result = search.run()
    check_final(graph, result.module, before, x[:4])
    assert result.log.counts()  # every structural change was an edit
    result.log.save(str(tmp_path / "edits.json"))
    assert EditLog.load(str(tmp_path / "edits.json")).replay(start).same_as(graph)
    if name == "progressive_gates":  # removals happened during the search, not only after
        assert any(r["units"] + r["connections"] for r in search.discretization.history)
    if name == "spos":
        assert result.state.extra["evolution"]["curve"]


def test_gradual_magnitude_leaves_exactly_the_expected_connections():
    graph = tiny_mlp()
    search = BilevelSearch(graph, mlp_data(), strategy="gradual_magnitude",
                           config=config(epochs=3))
    start = {f"{u}->{v}": e["mask"].nnz for u, v, e in graph.nx.edges(data=True)}
    search.run()
    for u, v, e in graph.nx.edges(data=True):
        n = start[f"{u}->{v}"]
        assert e["mask"].nnz == n - round(0.9 * n), (u, v)  # the strategy's default s = 0.9


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    return all(torch.equal(sa[k], sb[k]) for k in sa if torch.is_tensor(sa[k]))


@pytest.mark.parametrize("space,strategy,creation", [
    ("neuron_mlp", lambda: create_strategy("progressive_gates", warmup=1, decisions=2),
     lambda: [RigL(alpha=0.3, interval=1, end=3)]),
    ("channel_cnn", lambda: create_strategy("gdas"),
     lambda: [GrowUnits(count=1, at=2, score="gradient")]),
])
def test_unit_search_resumes_bitwise(tmp_path, space, strategy, creation):
    build, data = SPACES[space]
    cfg = config(epochs=4, checkpoint_dir=str(tmp_path / "a"))
    straight = BilevelSearch(build(), data(), strategy=strategy(), config=cfg,
                             creation=creation())
    straight.run()
    cfg_b = dict(cfg, checkpoint_dir=str(tmp_path / "b"))
    first = BilevelSearch(build(), data(), strategy=strategy(), config=cfg_b,
                          creation=creation())
    first.run(until=2)  # killed after epoch 2, after edits of the search
    assert len(first.editor.log) > 0
    path = str(tmp_path / "b" / "last.safetensors")
    assert os.path.exists(path)
    resumed = BilevelSearch.resume(path, data(), strategy=strategy(), creation=creation())
    assert resumed.state.epoch == 2
    resumed.run()
    assert resumed.graph.same_as(straight.graph)
    assert resumed.editor.log.to_list() == straight.editor.log.to_list()
    assert _states_equal(straight.module, resumed.module)
    assert [h["train_loss"] for h in straight.state.history] == \
        [h["train_loss"] for h in resumed.state.history]
    assert from_node_link(to_node_link(resumed.graph)).same_as(straight.graph)
