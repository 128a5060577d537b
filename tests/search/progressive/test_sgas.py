"""SGAS: one edge per cell decided every interval after the warm-up, the edge of highest
Criterion 1 / Criterion 2 score (checked against scores computed here by hand), decided
edges keep their best non-zero op, full nodes lose their other inputs."""

import math

import pytest
import torch
from progressive_helpers import OPS, MiniSearch, net

import supernet as sn
from supernet.edits import EditLog, Editor
from supernet.errors import ConfigError
from supernet.search.base import CreationPolicy, SearchState
from supernet.search.progressive import SGAS, sgas_epochs


class Probe(CreationPolicy):
    """Runs before the discretization at each epoch end: what the graph looks like then."""

    def __init__(self):
        self.gates = []

    def on_epoch_end(self, state):
        self.gates.append(len(state.graph.cells["normal"].gate_edges()))


def in_degrees(graph, cell="normal"):
    t = graph.cells[cell]
    return {v: t.nx.in_degree(v) for v in ("n2", "n3", "n4")}


@pytest.fixture(scope="module")
def run():
    g = net(("normal",))
    policy = SGAS(criterion=2, warmup=1, interval=2, history=2)
    probe = Probe()
    epochs = sgas_epochs(g, warmup=1, interval=2, post=0)
    search = MiniSearch(g, policy, [probe], epochs=epochs)
    state = search.run()
    return policy, probe, search, state, epochs


def test_one_edge_per_interval_after_warmup(run):
    policy, probe, search, state, epochs = run
    # 3 nodes x max_inputs 2 = 6 decisions: 0-based epochs 1, 3, 5, 7, 9, 11
    assert epochs == 12
    assert [d["epoch"] for d in policy.decisions] == [1, 3, 5, 7, 9, 11]
    assert len({d["edge"] for d in policy.decisions}) == 6
    # no decision before the warm-up ends, none between two decision epochs
    assert probe.gates[0] == probe.gates[1] == 9
    assert probe.gates[2] < probe.gates[1]
    assert all(probe.gates[e] == probe.gates[e - 1] for e in (3, 5, 7, 9, 11))


def test_decided_edges_keep_their_op_and_nodes_their_inputs(run):
    policy, _, _, state, _ = run
    t = state.graph.cells["normal"]
    for d in policy.decisions:
        _, u, v = d["edge"].split("/")
        assert t.edge(u, v)["ops"] == [d["op"]] and d["op"] != "none"
    assert in_degrees(state.graph) == {"n2": 2, "n3": 2, "n4": 2}
    assert not t.gate_edges()
    sn.lint(state.graph)


def test_full_nodes_lose_their_other_inputs_at_once(run):
    policy, _, _, state, _ = run
    removed = [e for e in state.editor.log if e.kind == "remove_edge"]
    assert len(removed) == 3  # n3 keeps 2 of 3, n4 2 of 4
    log = list(state.editor.log)
    for e in removed:  # right after the decision that filled the node
        i = log.index(e)
        before = [x for x in log[:i] if x.kind == "remove_op" and x.v == e.v]
        decided_at_v = {(x.u, x.v) for x in before}
        assert len(decided_at_v) == 2


def test_the_edit_log_replays_to_the_searched_graph(run):
    _, _, _, state, _ = run
    g = net(("normal",))
    EditLog(list(state.editor.log)).replay(g)
    assert g.same_as(state.graph)


# ---------------------------------------------------------------- scores by hand
def hand_scores(rows, past, criterion):
    """rows: edge -> 8 probabilities (index 0 is 'none'); past: list of edge -> q."""
    ei = {e: sum(p[1:]) for e, p in rows.items()}
    q = {e: [x / ei[e] for x in p[1:]] for e, p in rows.items()}
    sc = {e: 1 + sum(x * math.log(x) for x in q[e] if x > 0) / math.log(7) for e in rows}
    ss = {e: (sum(sum(min(a, b) for a, b in zip(h[e], q[e])) for h in past) / len(past)
              if past else 0.0) for e in rows}

    def norm(d):
        lo, hi = min(d.values()), max(d.values())
        return {e: (v - lo) / (hi - lo) if hi > lo else 0.0 for e, v in d.items()}

    nei, nsc, nss = norm(ei), norm(sc), norm(ss)
    score = {e: nei[e] * nsc[e] * (nss[e] if criterion == 2 else 1.0) for e in rows}
    return score, q


def _run_by_hand(criterion, seed):
    g = net(("normal",))
    module = sn.compile(g)
    state = SearchState(g, module, Editor(g, module))
    policy = SGAS(criterion=criterion, warmup=2, interval=2, history=2)
    gen = torch.Generator().manual_seed(seed)
    base = {k: 2 * torch.randn(1, 8, generator=gen) for k in module.arch.keys()}
    frozen, past, picks = {}, [], []
    for epoch in range(5):  # decisions after 0-based epochs 2 and 4
        rows = dict(frozen)
        with torch.no_grad():
            for k, p in module.arch.items():
                p.copy_(base[k] + torch.randn(1, 8, generator=gen))
                rows[k] = torch.softmax(p[0], -1).tolist()
        score, q = hand_scores(rows, past, criterion)
        past = (past + [q])[-2:]
        state.epoch = epoch + 1
        n = len(policy.decisions)
        policy.on_epoch_end(state)
        if epoch in (2, 4):
            undecided = [e for e in rows if e not in frozen]
            want = max(undecided, key=lambda e: score[e])
            op = OPS[1 + max(range(7), key=lambda i: q[want][i])]
            d = policy.decisions[-1]
            assert d["epoch"] == epoch
            assert d["edge"] == "normal/" + want.split(":")[1].replace("->", "/")
            assert d["op"] == op
            for e in undecided:
                assert d["scores"]["normal/" + e.split(":")[1].replace("->", "/")] == \
                    pytest.approx(score[e], abs=1e-5)
            frozen[want] = rows[want]
            picks.append(want)
        else:
            assert len(policy.decisions) == n
    return picks


@pytest.mark.parametrize("criterion", [1, 2])
@pytest.mark.parametrize("seed", [1, 4])
def test_decides_the_edge_of_highest_score_computed_by_hand(criterion, seed):
    _run_by_hand(criterion, seed)


def test_criterion_2_weighs_stability():
    # the same weights, two criteria: stability changes the first decision (so it is used)
    one, two = _run_by_hand(1, seed=4), _run_by_hand(2, seed=4)
    assert one[0] != two[0]


def test_epochs_of_the_darts_cell():
    g = net(("normal", "reduce"), steps=4)
    assert sgas_epochs(g) == 50  # 9 + 5 * (8 - 1) + 1 + 5, as the reference


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="criterion must be 1 or 2"):
        SGAS(criterion=3)
    with pytest.raises(ConfigError, match="interval must be an int >= 1"):
        SGAS(interval=0)


def test_each_cell_decides_on_its_own_and_finalize_completes():
    g = net(("normal", "reduce"), steps=2)
    policy = SGAS(criterion=1, warmup=0, interval=1)
    search = MiniSearch(g, policy, epochs=2)
    state = search.run()
    cells = [d["edge"].split("/")[0] for d in policy.decisions]
    assert cells == ["normal", "reduce", "normal", "reduce"]
    for cell in ("normal", "reduce"):
        t = state.graph.cells[cell]
        assert not t.gate_edges()
        assert {v: t.nx.in_degree(v) for v in ("n2", "n3")} == {"n2": 2, "n3": 2}
    sn.lint(state.graph)


def test_state_dict_round_trip(run):
    policy, _, _, _, _ = run
    other = SGAS(criterion=2)
    other.load_state_dict(policy.state_dict())
    assert other.decided == policy.decided
    assert other.decisions == policy.decisions
    assert [{k: (o, q.tolist()) for k, (o, q) in h.items()} for h in other.past] == \
        [{k: (o, q.tolist()) for k, (o, q) in h.items()} for h in policy.past]


def test_batch_size_grows_by_batch_increase_after_each_decision_epoch(run):
    policy, *_ = run
    # decisions at 0-based epochs 1, 3, ..., 11: k decision epochs give 64 + 8 k
    assert policy.batch_increase == 8
    assert policy.batch_size_after(64) == 64 + 8 * 6
    two_cells = SGAS(criterion=1, warmup=0, interval=1)
    two_cells.decisions = [{"epoch": 0}, {"epoch": 0}, {"epoch": 1}]  # two cells, one epoch
    assert two_cells.batch_size_after(64) == 64 + 8 * 2
    with pytest.raises(ConfigError, match="batch_increase must be an int >= 0"):
        SGAS(batch_increase=-4)


class LoaderBatch(CreationPolicy):
    """Records the batch size of the loop's train and validation loaders at each epoch end
    (before the discretization's own hook)."""

    def __init__(self, search):
        self.search, self.sizes = search, []

    def on_epoch_end(self, state):
        self.sizes.append((self.search.train_loader.batch_size,
                           self.search.val_loader.batch_size,
                           len({d["epoch"] for d in self.search.discretization.decisions})))


def test_the_search_loader_batch_size_after_k_decisions():
    from search_graphs import data

    g = net(("normal",), steps=2)
    strategy = sn.search.create_strategy("sgas", warmup=1, interval=1, batch_increase=4)
    search = sn.search.BilevelSearch(g, data(n=64), strategy=strategy,
                                     config={"epochs": 5, "batch_size": 8, "steps_per_epoch": 1})
    probe = LoaderBatch(search)
    search.creation.append(probe)
    search.run()
    # epoch e (0-based) runs after k decision epochs (1, 2, ... from epoch 1 on): 8 + 4 k
    k = [entry[2] for entry in probe.sizes]
    assert k == [0, 0, 1, 2, 3]
    assert [entry[:2] for entry in probe.sizes] == [(8 + 4 * j, 8 + 4 * j) for j in k]
    assert search.state.batch_size == 8 + 4 * 4  # for the epochs to come
