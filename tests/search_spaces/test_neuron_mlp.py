"""The neuron-level MLP space: skip-layer blocks against an explicit PyTorch oracle, gated
search steps on neurons and synapses, pruning to an exact sparsity, RigL regrowth."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import supernet
from search_spaces import create_space
from supernet.compiler.blocks import SparseBlock
from supernet.edits import Editor
from supernet.errors import ConfigError
from supernet.gates import Decision
from supernet.search import scores
from supernet.search.discretize.units import decision_edits as discretize
from supernet.search.discretize.units import grow, prune

KW = dict(in_features=12, hidden=(10, 8), num_classes=4)


def nnz(g):
    return {f"{u}->{v}": g.edge(u, v)["mask"].nnz for u, v in g.nx.edges}


def batch(n=16, features=12, classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def test_layout_densities_and_gates():
    g = create_space("neuron_mlp", **KW, density=0.5, skip_density=0.25, seed=3)
    supernet.lint(g)
    assert g.meta["space"] == "neuron_mlp" and g.meta["groups"] == ["x", "h1", "h2", "y"]
    assert nnz(g) == {"x->h1": 60, "x->h2": 24, "x->y": 12, "h1->h2": 40, "h1->y": 10,
                      "h2->y": 16}
    assert [n for n in g.nx.nodes if g.node(n).get("gated")] == ["h1", "h2"]
    assert all(e["gated"] and e["kind"] == "dense" for *_, e in g.nx.edges(data=True))
    plain = create_space("neuron_mlp", **KW, skip=False, gated=())
    assert nnz(plain) == {"x->h1": 120, "h1->h2": 80, "h2->y": 32}
    empty = create_space("neuron_mlp", **KW)  # skip blocks exist, with no synapse yet
    assert nnz(empty)["x->y"] == 0 and nnz(empty)["h1->y"] == 0
    net = supernet.compile(empty)
    assert net(torch.randn(3, 12)).shape == (3, 4)


def dense_weight(net, g, u, v):
    """The block's weight as an (n_dst, n_src) matrix, from the graph's mask and the stored
    values (one per synapse, in mask order) or the masked grid."""
    block, m = net.block(u, v), g.edge(u, v)["mask"]
    if isinstance(block, SparseBlock):
        w = torch.zeros(m.shape)
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        w[torch.from_numpy(rows), torch.from_numpy(m.indices.astype(np.int64))] = block.values
        return w
    return block.weight * torch.from_numpy(m.toarray()).float()


def oracle(net, g, x, decisions):
    """h_j = act(sum_{i<j} (W_ij * keep_ij) h_i + b_j) * keep_j, written out group by group."""
    values = {"x": x}
    names = g.meta["groups"]
    for j in names[1:]:
        z = net.unit_params(j).bias.clone()
        for i in names[:names.index(j)]:
            if not g.nx.has_edge(i, j):
                continue
            w = dense_weight(net, g, i, j)
            key = f"{i}->{j}"
            if key in decisions:
                m = g.edge(i, j)["mask"]
                rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
                gate = torch.zeros(m.shape)
                gate[torch.from_numpy(rows), torch.from_numpy(m.indices.astype(np.int64))] = \
                    decisions[key].weights[:, 0]
                w = w * gate
            z = z + values[i] @ w.T
        out = torch.relu(z) if j != "y" else z
        if j in decisions:
            out = out * decisions[j].weights[:, 0]
        values[j] = out
    return values["y"]


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_skip_layer_connections_compute_what_pytorch_computes(kernel):
    g = create_space("neuron_mlp", **KW, density=0.4, skip_density=0.3, seed=1)
    net = supernet.compile(g, kernel=kernel, seed=0)
    with torch.no_grad():
        for a in net.arch.values():
            a.normal_()
    x = torch.randn(5, 12)
    decisions = net.decisions()
    with torch.no_grad():
        assert (net(x, gates=decisions) - oracle(net, g, x, decisions)).abs().max() < 1e-5
        # Each skip block really contributes: without it the output changes.
        skipless = {k: d for k, d in decisions.items()}
        skipless["x->y"] = Decision(torch.zeros_like(decisions["x->y"].weights))
        assert (net(x, gates=skipless) - net(x, gates=decisions)).abs().max() > 1e-3


@pytest.mark.parametrize("gated", ["units", "connections"])
def test_gated_search_step(gated):
    g = create_space("neuron_mlp", **KW, density=0.5, skip_density=0.5, gated=gated)
    net = supernet.compile(g, seed=0)
    keys = ["h1", "h2"] if gated == "units" else list(nnz(g))
    assert sorted(net.arch.keys()) == sorted(keys)
    w_opt = torch.optim.SGD(net.weights(), lr=0.1)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=0.05)
    before = {k: a.detach().clone() for k, a in net.arch.items()}
    x, y = batch()
    for opt in (w_opt, a_opt):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    for k in keys:
        rows = len(g.node(k)["units"]) if gated == "units" else nnz(g)[k]
        assert net.arch[k].shape == (rows, 2)
        assert not torch.equal(net.arch[k], before[k]), k


def test_discretizing_gates_removes_exactly_the_dropped_neurons_and_synapses():
    g = create_space("neuron_mlp", **KW, density=0.6, skip_density=0.3)
    net = supernet.compile(g, seed=0)
    with torch.no_grad():
        for a in net.arch.values():
            a.normal_()
            a[:, 0] += 0.5
    choice = {k: a.argmax(-1) for k, a in net.arch.items()}
    units_before = {n: len(g.node(n)["units"]) for n in ("h1", "h2")}
    dropped = {n: int(choice[n].sum()) for n in units_before}
    edits = discretize(net)
    conns = {f"{e.u}->{e.v}": len(e.dst) for e in edits if e.kind == "remove_connections"}
    assert conns == {k: int(c.sum()) for k, c in choice.items() if "->" in k and c.sum()}
    ed = Editor(g, net)
    for edit in edits:
        ed.apply(edit)
    supernet.lint(g)
    assert {n: len(g.node(n)["units"]) for n in units_before} == {
        n: units_before[n] - dropped[n] for n in units_before}
    assert net(torch.randn(2, 12)).shape == (2, 4)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruning_at_sparsity_leaves_exactly_the_expected_synapses(sparsity, scope):
    g = create_space("neuron_mlp", **KW, density=0.8, skip_density=0.5, gated=())
    net = supernet.compile(g, seed=0)
    before = nnz(g)
    s = scores.snip(net, batch()) if scope == "global" else scores.magnitude(net)
    ed = Editor(g, net)
    for edit in prune(g, s, sparsity, scope=scope):
        ed.apply(edit)
    after = nnz(g)
    total = sum(before.values())
    if scope == "global":
        assert sum(after.values()) == total - round(sparsity * total)
    else:
        assert after == {k: n - round(sparsity * n) for k, n in before.items()}
    supernet.lint(g)
    assert net(torch.randn(2, 12)).shape == (2, 4)


def test_rigl_regrowth_keeps_the_synapse_count():
    # Gated synapses and an Adam on the gates: gate logits and optimizer state follow too.
    g = create_space("neuron_mlp", **KW, density=0.3, skip_density=0.1, gated="connections")
    net = supernet.compile(g, seed=0)
    w_opt = torch.optim.SGD(net.weights(), lr=0.1, momentum=0.9)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=0.01)
    ed = Editor(g, net, [w_opt, a_opt])
    x, y = batch()
    start = nnz(g)
    for step in range(3):
        for opt in (w_opt, a_opt):
            opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        w_opt.step(), a_opt.step()
        # RigL update (Evci et al., 2020): per layer, drop the fraction f of the weakest
        # synapses, then grow as many where the dense gradient is largest, at weight zero.
        drop = [e for e in prune(g, scores.magnitude(net), 0.2, scope="layer")]
        removed = {f"{e.u}->{e.v}": len(e.dst) for e in drop}
        for edit in drop:
            ed.apply(edit)
        grad = scores.gradient(net, (x, y))
        with torch.no_grad():
            mid = net(x)
        for edit in grow(g, grad, count=removed):
            ed.apply(edit)
        assert nnz(g) == start, f"step {step}"
        with torch.no_grad():
            assert (net(x) - mid).abs().max() < 1e-6  # regrown at zero
    supernet.lint(g)


def test_growth_reaches_an_empty_skip_block():
    g = create_space("neuron_mlp", **KW, density=0.5, skip_density=0.0, gated=())
    net = supernet.compile(g, seed=0)
    x, y = batch()
    grad = scores.gradient(net, (x, y))
    assert grad["x->y"].shape == (4, 12) and grad["x->y"].max() > 0
    (edit,) = grow(g, {"x->y": grad["x->y"]}, count=5)
    Editor(g, net).apply(edit)
    assert nnz(g)["x->y"] == 5
    flat = grad["x->y"].reshape(-1)
    m = g.edge("x", "y")["mask"]
    keys = np.repeat(np.arange(4), np.diff(m.indptr)) * 12 + m.indices
    assert sorted(keys.tolist()) == sorted(np.argsort(-flat, kind="stable")[:5].tolist())


def test_builder_errors_name_the_fix():
    with pytest.raises(ConfigError, match=r"density must be a number in \[0, 1\], got 1.5"):
        create_space("neuron_mlp", density=1.5)
    with pytest.raises(ConfigError, match=r"hidden\[1\] must be a positive int, got 0"):
        create_space("neuron_mlp", hidden=(4, 0))
    with pytest.raises(ConfigError, match=r"gated=\['synapses'\]: unknown \['synapses'\]; "
                                          r"choose from \['units', 'connections'\]"):
        create_space("neuron_mlp", gated="synapses")
