"""P-DARTS, SGAS, DARTS-PT, PC-DARTS and ProxylessNAS at the channel and neuron levels: each
search trains its weights, ends at the size target, and decides what its method defines."""

import copy
import math

import numpy as np
import pytest
import torch
from search_graphs import darts_like
from unit_search_helpers import (
    check_final,
    mini_state,
    mlp_data,
    sizes,
    tiny_cnn,
    tiny_mlp,
    train_step,
)

from supernet.edits import Editor, RemoveUnits
from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision
from supernet.search import BilevelSearch, create_strategy
from supernet.search.discretize.units import set_gated
from supernet.cost.units import unit_cost
from supernet.search.progressive import (
    UnitDartsPT,
    UnitPDARTS,
    UnitSGAS,
    unit_criteria,
)
from supernet.search.progressive.sgas import normalize
from supernet.search.relaxations import BinaryUnitGates, PartialUnits, use_relaxation
from supernet.search.relaxations.partial import BETA_PREFIX


def _cnn():
    """``tiny_cnn`` with its kernels gated too: connections fine enough to land at 2%."""
    g = tiny_cnn()
    set_gated(g, connections=[(u, v) for u, v, e in g.nx.edges(data=True) if e["kind"] == "conv"])
    return g


def _mlp():
    return tiny_mlp(hidden=(12, 10))


def _shifted(shape, n=64, seed=0):
    """Gaussian inputs whose class (of 3) raises the mean of feature or channel ``y``."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(n, *shape, generator=gen)
    x[torch.arange(n), y] += 2.0 if len(shape) == 1 else 1.0
    return x, y


LEVELS = {"neuron": (_mlp, (8,)), "channel": (_cnn, (3, 8, 8))}
METHODS = {  # (strategy options, loop settings per level)
    "unit_pdarts": ({"stages": 2}, {}),
    "unit_sgas": ({"warmup": 1, "rounds": 2}, {}),
    "unit_darts_pt": ({"tune": 1, "order": "sequential", "max_batches": 1}, {}),
    "unit_pcdarts": ({"k": 2}, {}),
    # binary gates switch off half the units and kernels of each step at first; on the
    # 4-channel layers of the channel net a faster architecture step lets them settle
    # within the four epochs of a test
    "unit_proxyless": ({"cost_weight": 0.1}, {"channel": {"arch_lr": 0.5}}),
}


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("method", list(METHODS))
def test_search_learns_and_ends_at_the_target(method, level):
    make, shape = LEVELS[level]
    graph = make()
    before = sizes(graph)
    start = _param_size(graph)
    options, loop = METHODS[method]
    # weight 0: the papers' searches, without the budget's resource term
    strategy = create_strategy(method, target={"metric": "params", "fraction": 0.5,
                                               "weight": 0.0}, **options)
    x, y = _shifted(shape)
    result = BilevelSearch(graph, (x, y), strategy=strategy,
                           config={"epochs": 4, "batch_size": 8, "w_lr": 0.2,
                                   "arch_lr": 0.1, "seed": 0, **loop.get(level, {})}).run()
    acc = max(h["train_acc"] for h in result.history[-2:])
    assert acc >= 0.6, [h["train_acc"] for h in result.history]  # chance: 1/3
    assert _param_size(graph) == pytest.approx(0.5 * start, rel=0.02)
    check_final(graph, result.module, before, x)
    kinds = {type(e).__name__ for e in result.log}
    assert kinds <= {"RemoveUnits", "RemoveConnections", "UngateUnits", "UngateConnections"}


def _set_keep(module, key, p):
    """Gate group ``key`` keeps its rows with probabilities ``p`` (softmax)."""
    p = torch.tensor(p)
    with torch.no_grad():
        a = module.arch[key]
        a.zero_()
        a[:, 0] = torch.log(p / (1 - p))


def _param_size(graph):
    return float(unit_cost(graph).total.params)


def test_pdarts_stage_end_removes_the_lowest_keep_probabilities_to_the_stage_size():
    state = mini_state(tiny_mlp(gated="units"), mlp_data(), epochs=4)
    keep1, keep2 = [0.9, 0.2, 0.6, 0.1, 0.8, 0.7], [0.3, 0.95, 0.5, 0.4, 0.85]
    _set_keep(state.module, "h1", keep1)
    _set_keep(state.module, "h2", keep2)
    policy = UnitPDARTS(target=0.5, stages=2, warmup=0.5)
    policy.on_search_start(state)
    assert (state.arch_update, state.lr_cycle) == (False, (0, 2))  # the stage's warm-up
    start = _param_size(state.graph)
    state.epoch = 2
    policy.on_epoch_end(state)
    goal = start * 0.5 ** 0.5
    size = _param_size(state.graph)
    assert size <= goal * 1.01 and policy.stage == 1
    assert (state.arch_update, state.lr_cycle) == (False, (2, 2))
    removed = [("h1", u) for u in range(6) if u not in state.graph.node("h1")["units"]]
    removed += [("h2", u) for u in range(5) if u not in state.graph.node("h2")["units"]]
    ranked = sorted([("h1", i) for i in range(6)] + [("h2", i) for i in range(5)],
                    key=lambda r: (keep1 + keep2)[r[1] + (6 if r[0] == "h2" else 0)])
    assert sorted(removed) == sorted(ranked[:len(removed)])  # the lowest, nothing else
    policy.finalize(state)
    assert _param_size(state.graph) == pytest.approx(0.5 * start, abs=0.02 * start + 8)
    assert not state.module.arch


def test_sgas_decides_the_highest_scored_variables_first_and_freezes_the_keeps():
    state = mini_state(tiny_mlp(gated="units"), mlp_data(), epochs=4)
    keep1, keep2 = [0.99, 0.55, 0.6, 0.02, 0.8, 0.7], [0.3, 0.95, 0.5, 0.45, 0.85]
    _set_keep(state.module, "h1", keep1)
    _set_keep(state.module, "h2", keep2)
    policy = UnitSGAS(target=0.6, criterion=1, warmup=0, rounds=4)
    policy.on_search_start(state)
    state.epoch = 1
    policy.on_epoch_end(state)
    record = policy.decisions[0]
    p = torch.tensor(keep1 + keep2)
    ei, sc = unit_criteria(p)
    score = normalize(ei) * normalize(sc)  # Criterion 1, by hand
    top = torch.argsort(-score, stable=True)[:math.ceil(11 / 4)].tolist()
    names = [("h1", i) for i in range(6)] + [("h2", i) for i in range(5)]
    want = [names[i] for i in top]
    got = [(k, int(u)) for k, u in record["kept"] + record["dropped"]]
    assert sorted(got) == sorted(want)
    assert min(record["scores"]) >= record["best_left"]
    for k, u in record["kept"]:  # frozen: weight one, whatever the logits now say
        _set_keep(state.module, k, [0.01] * len(state.graph.node(k)["units"]))
        row = state.graph.node(k)["units"].tolist().index(u)
        assert float(state.module.decisions()[k].weights[row, 0].detach()) == 1.0
    for k, u in record["dropped"]:
        assert u not in state.graph.node(k)["units"].tolist()


def test_sgas_criterion_2_prefers_stable_variables():
    policy = UnitSGAS(criterion=2)
    policy.past = [{"a": 0.9, "b": 0.1}, {"a": 0.9, "b": 0.9}]
    score, parts = policy.scores(np.array([0.9, 0.9, 0.5]), ["a", "b", "c"])
    assert parts[0, 2] == pytest.approx(1.0) and parts[1, 2] == pytest.approx(0.6)
    assert score[0] > score[1]  # as certain and important, but b wavered
    policy.criterion = 1
    score1, _ = policy.scores(np.array([0.9, 0.9, 0.5]), ["a", "b", "c"])
    assert score1[0] == score1[1]


def _accuracy(module, x, y):
    module.eval()
    with torch.no_grad():
        return float((module(x).argmax(-1) == y).float().mean())


def test_darts_pt_score_is_the_accuracy_lost_by_a_real_removal():
    data = mlp_data(96)
    state = mini_state(tiny_mlp(gated="units"), data, batch_size=96)
    for _ in range(30):
        train_step(state, data, arch=False)
    state.module.eval()
    reference = copy.deepcopy((state.graph, state.module))
    policy = UnitDartsPT(target=0.6, tune=0, order="sequential")
    policy.on_search_start(state)
    policy.finalize(state)
    first = policy.decisions[0]
    assert first["key"] == "h1"
    x, y = data
    acc0 = _accuracy(reference[1], x, y)
    harm = {}
    for u in range(6):  # remove unit u for real: a copy, an edit, the copy measured
        graph, module = copy.deepcopy(reference)
        Editor(graph, module).apply(RemoveUnits({"h1": [u]}))
        harm[u] = acc0 - _accuracy(module, x, y)
        assert first["accuracy_drop"][str(("h1", u))] == pytest.approx(harm[u], abs=1e-6)
    dropped = sorted(u for _, u in first["dropped"])
    kept = sorted(u for _, u in first["kept"])
    assert dropped and kept and sorted(dropped + kept) == list(range(6))
    assert max(harm[u] for u in dropped) <= min(harm[u] for u in kept)  # least harmful go


def test_partial_units_relax_a_random_fraction_and_normalize_edges():
    graph = tiny_mlp()
    state = mini_state(graph, mlp_data())
    relax = PartialUnits(k=3)
    use_relaxation(state.module, relax)
    betas = [k for k in state.module.arch.keys() if k.startswith(BETA_PREFIX)]
    assert betas  # nodes fed by several gated edges get β
    relax.set_phase("arch")
    x, y = mlp_data()
    torch.nn.functional.cross_entropy(state.module(x), y).backward()
    for key, (what, where) in state.module.gate_groups().items():
        grad = state.module.arch[key].grad
        n = grad.shape[0]
        moved = int((grad.abs().sum(-1) > 0).sum())
        assert moved <= math.ceil(n / 3), key  # only the rows drawn this step
    assert all(state.module.arch[b].grad is not None for b in betas)
    d = relax.decide("h1", state.module.arch["h1"])
    assert int((d.weights[:, 0] == 1.0).sum()) == 6 - math.ceil(6 / 3)
    relax.set_phase("eval")
    probs = relax.probabilities(state.module)
    node = betas[0][len(BETA_PREFIX):]
    keys = relax._nodes[node]
    scale = len(keys) * torch.softmax(state.module.arch[betas[0]].detach(), -1)[0]
    for j, k in enumerate(keys):
        want = torch.softmax(state.module.arch[k].detach(), -1)[:, 0] * scale[j]
        assert torch.allclose(probs[k][:, 0], want)


def test_binary_unit_gates_give_proxylessnas_gradient():
    graph = tiny_mlp(gated="units")
    state = mini_state(graph, mlp_data())
    module = state.module
    with torch.no_grad():
        for a in module.arch.values():
            a.normal_()
    relax = BinaryUnitGates()
    use_relaxation(module, relax)
    relax.set_phase("arch")
    x, y = mlp_data()
    torch.manual_seed(0)
    decisions = module.decisions()
    for d in decisions.values():
        assert set(d.weights.detach().sum(-1).tolist()) == {1.0}  # one path per row
    torch.nn.functional.cross_entropy(module(x, gates=decisions), y).backward()
    for key, d in decisions.items():
        g = d.weights.detach().clone().requires_grad_(True)
        gates = {k: (Decision(g) if k == key else Decision(v.weights.detach()))
                 for k, v in decisions.items()}
        torch.nn.functional.cross_entropy(module(x, gates=gates), y).backward()
        G = g.grad[:, 0]  # ∂L/∂g_keep; the drop path outputs zero
        p = torch.softmax(module.arch[key].detach(), -1)
        want = torch.stack([p[:, 0] * p[:, 1] * G, -p[:, 0] * p[:, 1] * G], -1)
        assert torch.allclose(module.arch[key].grad, want, atol=1e-6), key
    relax.cost_weight = 1.0
    for a in module.arch.values():
        a.grad = None
    relax.loss(module).backward()
    assert all((a.grad[:, 0] > 0).all() for a in module.arch.values())  # cost pushes keep down


def test_unit_family_refuses_bad_input_before_training():
    with pytest.raises(ConfigError, match="fraction"):
        create_strategy("unit_sgas", target={"metric": "params", "fraction": 1.5})
    with pytest.raises(ConfigError, match="metric"):
        create_strategy("unit_proxyless", metric="flops")
    with pytest.raises(ConfigError, match="order must be"):
        create_strategy("unit_darts_pt", order="shuffled")
    state = mini_state(tiny_mlp(gated="units"), mlp_data())
    with pytest.raises(ConfigError, match="below the smallest network"):
        UnitSGAS(target=0.05).on_search_start(state)
    graph = darts_like()
    with pytest.raises(SearchError, match="layer-level"):
        BilevelSearch(graph, (torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))),
                      strategy="unit_pdarts", config={"epochs": 2, "batch_size": 4}).run()
