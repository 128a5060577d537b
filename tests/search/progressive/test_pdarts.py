"""P-DARTS: stages that prune 8 -> 5 -> 3 -> 1 candidates, deeper networks with the pruned
sets, skip-connect dropout on a decaying schedule, at most M skip-connects at the end."""

import math

import pytest
import torch
from progressive_helpers import OPS, MiniSearch, builder, net

import supernet as sn
from supernet.edits import EditLog, Editor
from supernet.errors import ConfigError, SearchError
from supernet.search.base import SearchState
from supernet.search.progressive import PDARTS, Stage, dropout_rate

STAGES = [Stage(1, 5, 0.0, epochs=2, warmup=1), Stage(2, 3, 0.4, epochs=2, warmup=1),
          Stage(3, 1, 0.7, epochs=2, warmup=1)]


def template_ops(graph, cell="normal"):
    t = graph.cells[cell]
    return {(u, v): list(d["ops"]) for u, v, d in t.nx.edges(data=True)
            if v.startswith("n")}


@pytest.fixture(scope="module")
def searched():
    torch.manual_seed(0)
    b = builder()
    policy = PDARTS(b, STAGES, max_skip=1)
    search = MiniSearch(b(1), policy, relaxation=policy.relaxation, epochs=policy.epochs)
    state = search.run()
    return policy, search, state


def test_stages_keep_5_then_3_then_1_candidates(searched):
    policy, search, state = searched
    first, second = search.rebuilds
    assert {len(o) for o in template_ops(first).values()} == {5}
    assert {len(o) for o in template_ops(second).values()} == {3}
    final = template_ops(state.graph)
    assert {len(o) for o in final.values()} == {1}
    # each intermediate node keeps max_inputs=2 in-edges, none of them 'none'
    cell = state.graph.cells["normal"]
    for v in ("n2", "n3", "n4"):
        assert cell.nx.in_degree(v) == 2
    assert all(o != ["none"] for o in final.values())
    assert not state.graph.gate_edges() and not cell.gate_edges()
    sn.lint(state.graph)


def test_deeper_networks_keep_the_pruned_candidate_sets(searched):
    policy, search, state = searched
    first, second = search.rebuilds
    assert [len(g.nodes_of_kind("call")) for g in search.rebuilds] == [2, 3]
    assert len(state.graph.nodes_of_kind("call")) == 3
    kept = policy.records[0]["kept"]
    assert {k: v for k, v in kept.items()} == {
        f"normal/{u}/{v}": ops for (u, v), ops in template_ops(first).items()}
    kept = policy.records[1]["kept"]
    assert {k: v for k, v in kept.items()} == {
        f"normal/{u}/{v}": ops for (u, v), ops in template_ops(second).items()}
    # the sets of the second stage are subsets of those of the first
    for edge, ops in template_ops(second).items():
        assert set(ops) <= set(template_ops(first)[edge])


def test_at_most_max_skip_skip_connects(searched):
    _, _, state = searched
    skips = sum(o == ["skip_connect"] for o in template_ops(state.graph).values())
    assert skips <= 1


def test_the_edits_replay_to_the_searched_graph(searched):
    policy, search, state = searched
    assert policy.replay().same_as(state.graph)
    # the loop's edit log too, on the deepest network
    g = builder()(3)
    EditLog(list(state.editor.log)).replay(g)
    assert g.same_as(state.graph)


def test_dropout_warmup_and_learning_rate_follow_each_stage(searched):
    policy, search, state = searched
    hist = search.state.history
    for k, stage in enumerate(STAGES):
        for e in range(stage.epochs):
            h = hist[2 * k + e]
            want = (stage.dropout * (stage.epochs - e - 1) / stage.epochs if e < stage.warmup
                    else stage.dropout * math.exp(-0.2 * (e - stage.warmup)))
            assert h["dropout"] == pytest.approx(want)
            assert h["arch_update"] is (e >= stage.warmup)
            assert h["lr"] == pytest.approx(search.w_lr * 0.5 * (1 + math.cos(math.pi * e / 2)))


def test_dropout_rate_matches_the_reference_schedule():
    assert dropout_rate(0.4, 0, 25, 10) == pytest.approx(0.4 * 24 / 25)
    assert dropout_rate(0.4, 9, 25, 10) == pytest.approx(0.4 * 15 / 25)
    assert dropout_rate(0.4, 10, 25, 10) == pytest.approx(0.4)
    assert dropout_rate(0.4, 20, 25, 10) == pytest.approx(0.4 * math.exp(-2.0))


def _state(graph):
    module = sn.compile(graph)
    state = SearchState(graph, module, Editor(graph, module), epochs=0)

    def rebuild(g):
        state.graph, state.module = g, sn.compile(g)
        state.editor = Editor(g, state.module)

    state.rebuild = rebuild
    return state


def test_each_edge_keeps_its_most_likely_candidates():
    b = builder()
    policy = PDARTS(b, STAGES, reset_arch=True)
    state = _state(b(1))
    gen = torch.Generator().manual_seed(3)
    ranks = {}
    with torch.no_grad():
        for key, p in state.module.arch.items():
            p.copy_(torch.randn(p.shape, generator=gen))
            ranks[key] = [OPS[i] for i in p[0].argsort(descending=True)[:5].tolist()]
    state.epoch = STAGES[0].epochs
    policy.on_epoch_end(state)
    assert len(state.graph.nodes_of_kind("call")) == 2
    for (u, v), ops in template_ops(state.graph).items():
        want = ranks[f"normal:{u}->{v}"]
        assert ops == [o for o in OPS if o in want]  # the five most likely, in their order
    # the new stage starts from fresh architecture logits, as the reference
    assert all(p.abs().max() < 0.01 for p in state.module.arch_parameters())


def _final_graph(probs):
    """A 2-step cell whose edges carry [skip_connect, sep_conv_3x3, none]."""
    g = net(("normal",), steps=2, ops=["skip_connect", "sep_conv_3x3", "none"])
    module = sn.compile(g)
    with torch.no_grad():
        for (u, v), p in probs.items():
            module.arch[f"normal:{u}->{v}"].copy_(torch.tensor([p]).log())
    return g, module


PROBS = {("p0", "n2"): [0.6, 0.3, 0.1], ("p1", "n2"): [0.5, 0.4, 0.1],
         ("p0", "n3"): [0.7, 0.2, 0.1], ("p1", "n3"): [0.3, 0.2, 0.5],
         ("n2", "n3"): [0.4, 0.5, 0.1]}


@pytest.mark.parametrize("max_skip,want", [
    # no limit: the best allowed op per edge, the two strongest edges per node
    (None, {("p0", "n2"): "skip_connect", ("p1", "n2"): "skip_connect",
            ("p0", "n3"): "skip_connect", ("n2", "n3"): "sep_conv_3x3"}),
    # M=2: the weakest kept skip (p1->n2, 0.5) is zeroed and the cell derived again
    (2, {("p0", "n2"): "skip_connect", ("p1", "n2"): "sep_conv_3x3",
         ("p0", "n3"): "skip_connect", ("n2", "n3"): "sep_conv_3x3"}),
    # M=1: then p0->n2 (0.6) too
    (1, {("p0", "n2"): "sep_conv_3x3", ("p1", "n2"): "sep_conv_3x3",
         ("p0", "n3"): "skip_connect", ("n2", "n3"): "sep_conv_3x3"}),
    (0, {("p0", "n2"): "sep_conv_3x3", ("p1", "n2"): "sep_conv_3x3",
         ("p0", "n3"): "sep_conv_3x3", ("n2", "n3"): "sep_conv_3x3"}),
])
def test_skip_connect_limit_by_hand(max_skip, want):
    g, module = _final_graph(PROBS)
    policy = PDARTS(builder(steps=2), [Stage(1, 1, epochs=1, warmup=0)], max_skip=max_skip)
    policy.finalize(SearchState(g, module, Editor(g, module)))
    got = {(u, v): d["ops"][0] for u, v, d in g.cells["normal"].nx.edges(data=True)
           if v in ("n2", "n3")}
    assert got == want
    sn.lint(g)


def test_skip_limit_applies_to_the_named_cells_only():
    g, module = _final_graph(PROBS)
    policy = PDARTS(builder(steps=2), [Stage(1, 1, epochs=1, warmup=0)], max_skip=0,
                    skip_cells=("reduce",))
    policy.finalize(SearchState(g, module, Editor(g, module)))
    ops = [d["ops"][0] for _, v, d in g.cells["normal"].nx.edges(data=True) if v == "n3"]
    assert "skip_connect" in ops


def test_skip_limit_that_cannot_be_met_says_so():
    g2 = net(("normal",), steps=2, ops=["skip_connect", "none"])
    m2 = sn.compile(g2)
    policy = PDARTS(builder(steps=2), [Stage(1, 1, epochs=1, warmup=0)], max_skip=1)
    with pytest.raises(SearchError, match="cannot limit skip_connect to 1 in normal"):
        policy.finalize(SearchState(g2, m2, Editor(g2, m2)))


def test_bad_schedules_are_refused():
    with pytest.raises(ConfigError, match="its keep must be 1"):
        PDARTS(builder(), [Stage(1, 5), Stage(2, 3)])
    with pytest.raises(ConfigError, match="fewer candidates each time"):
        PDARTS(builder(), [Stage(1, 3, warmup=0), Stage(2, 5, warmup=0), Stage(3, 1, warmup=0)])
    with pytest.raises(ConfigError, match="warmup must be an int in"):
        PDARTS(builder(), [Stage(1, 1, epochs=2, warmup=3)])
    policy = PDARTS(builder(), STAGES)
    state = _state(builder()(1))
    state.epochs = 5
    with pytest.raises(SearchError, match="set epochs=6"):
        policy.on_search_start(state)


def test_rebuild_is_required():
    b = builder()
    policy = PDARTS(b, STAGES)
    g = b(1)
    m = sn.compile(g)
    state = SearchState(g, m, Editor(g, m), epoch=2, epochs=6)
    with pytest.raises(SearchError, match="no state.rebuild"):
        policy.on_epoch_end(state)


def test_state_dict_round_trip(searched):
    policy, _, _ = searched
    other = PDARTS(builder(), STAGES, max_skip=1)
    other.load_state_dict(policy.state_dict())
    assert other.stage == policy.stage
    assert other.replay().same_as(policy.replay())
