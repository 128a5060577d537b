"""The DARTS search space against a hand-written DARTS search network, and its text codec."""

import inspect

import pytest
import torch
from darts_oracle import PRIMITIVES, SearchNetwork, genotype_of, randomize

import supernet
from search_spaces import create_space, decode, encode, list_spaces, space_entry
from search_spaces.darts import PUBLISHED, network, parse_genotype
from supernet.compiler import module_key
from supernet.errors import GenotypeError

CONSTRAINTS = {"normal": {"max_inputs": 2, "exclude": ["none"]},
               "reduce": {"max_inputs": 2, "exclude": ["none"]}}


def state(j):
    return f"p{j}" if j < 2 else f"n{j}"


def copy_alphas(module, ref, steps=4):
    """Our per-edge gate logits from the oracle's (edges, ops) alpha matrices."""
    k = 0
    with torch.no_grad():
        for i in range(2, steps + 2):
            for j in range(i):
                for kind, alpha in (("normal", ref.alphas_normal), ("reduce", ref.alphas_reduce)):
                    module.arch[module_key(f"{kind}:{state(j)}->n{i}")].copy_(alpha[k:k + 1])
                k += 1


def discretize(graph, module):
    """The contract of meta['constraints'], applied with the graph API."""
    g = graph.copy()
    for cell, rule in g.meta["constraints"].items():
        t = g.cells[cell]
        for v in [n for n in t.nx.nodes if any(len(t.edge(u, n)["ops"]) > 1
                                               for u in t.nx.predecessors(n))]:
            best = {}
            for u, _ in t.in_edges(v):
                ops = t.edge(u, v)["ops"]
                w = torch.softmax(module.arch[module_key(f"{cell}:{u}->{v}")], -1)[0]
                best[u] = max((w[k].item(), op) for k, op in enumerate(ops)
                              if op not in rule["exclude"])
            kept = sorted(best, key=lambda u: -best[u][0])[:rule["max_inputs"]]
            for u in list(best):
                if u in kept:
                    t.set_ops(u, v, [best[u][1]])
                else:
                    t.remove_edge(u, v)
    return g


def test_registered_with_the_documented_signature_and_meta():
    assert {"darts", "darts1d"} <= set(list_spaces("darts*"))
    params = inspect.signature(space_entry("darts")).parameters
    defaults = {k: p.default for k, p in params.items()}
    assert {k: defaults[k] for k in ("C", "layers", "steps", "multiplier", "stem_multiplier",
                                      "num_classes", "in_channels", "dim")} == dict(
        C=16, layers=8, steps=4, multiplier=4, stem_multiplier=3, num_classes=10,
        in_channels=3, dim=2)
    assert list(defaults["ops"]) == PRIMITIVES
    g = create_space("darts")
    assert g.meta["space"] == "darts" and g.meta["constraints"] == CONSTRAINTS
    assert create_space("darts1d").meta["space"] == "darts1d"


def test_search_network_has_the_reference_parameters_in_order():
    g = create_space("darts")
    supernet.lint(g)
    ours, ref = supernet.compile(g), SearchNetwork()
    assert sum(p.numel() for p in ours.weights()) == sum(p.numel() for p in ref.parameters()) \
        == 1_930_618  # the "param size" DARTS' search logs report (MB = millions)
    assert [p.shape for p in ours.weights()] == [p.shape for p in ref.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in ref.buffers()]


def test_gates_are_shared_per_template():
    g = create_space("darts")
    m = supernet.compile(g)
    keys = {f"{kind}:{state(j)}->n{i}" for kind in ("normal", "reduce")
            for i in range(2, 6) for j in range(i)}
    assert set(m.gates()) == keys and len(m.arch) == 28
    assert all(ops == PRIMITIVES for ops in m.gates().values())
    assert len(m.cell_modules("normal")) == 6 and len(m.cell_modules("reduce")) == 2
    # every cell of a kind reads the same gate: a gradient reaches each logit from all cells
    m(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.arch_parameters())


@pytest.mark.parametrize("space, shape, dim", [("darts", (2, 3, 16, 16), 2),
                                                ("darts1d", (2, 1, 40), 1)])
def test_search_outputs_equal_the_oracle(space, shape, dim):
    ours = supernet.compile(create_space(space, C=4, layers=5))
    ref = SearchNetwork(C=4, layers=5, in_channels=shape[1], dim=dim)
    ref.alphas_normal.normal_(0, 1)
    ref.alphas_reduce.normal_(0, 1)
    randomize(ref)
    # load weights and buffers by position (architecture logits apart), then the alphas
    state_dict = {k: v for k, v in ours.state_dict().items() if not k.startswith("arch.")}
    ref_items = list(ref.state_dict().values())
    assert len(ref_items) == len(state_dict)
    ours.load_state_dict({**ours.state_dict(), **dict(zip(state_dict, ref_items))})
    copy_alphas(ours, ref)
    x = torch.randn(*shape)
    for mode in (False, True):
        ours.train(mode), ref.train(mode)
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_discretized_search_graph_encodes_to_the_darts_genotype():
    g = create_space("darts", C=4, layers=5)
    m = supernet.compile(g)
    ref = SearchNetwork(C=4, layers=5)
    ref.alphas_normal.normal_(0, 1)
    ref.alphas_reduce.normal_(0, 1)
    copy_alphas(m, ref)
    d = discretize(g, m)
    supernet.lint(d)
    text = encode(d)
    # DARTS lists a node's pairs by strength, the graph by port: same pairs per node
    ours, theirs = parse_genotype(text), parse_genotype(genotype_of(ref.alphas_normal,
                                                                     ref.alphas_reduce))
    for kind in ("normal", "reduce"):
        a, b = getattr(ours, kind), getattr(theirs, kind)
        assert [sorted(a[k:k + 2]) for k in (0, 2, 4, 6)] == \
            [sorted(b[k:k + 2]) for k in (0, 2, 4, 6)]
    assert str(ours).endswith("reduce_concat=range(2, 6))")
    # and back: the decoded genotype is the discretized graph, exactly
    assert decode("darts", text, C=4, layers=5).same_as(d)
    # the evaluation network of either text has the same modules
    assert sum(p.numel() for p in network(text).parameters()) == \
        sum(p.numel() for p in network(str(theirs)).parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_decode_encode_round_trips(name):
    text = PUBLISHED[name]["genotype"]
    g = decode("darts", text)
    supernet.lint(g)
    assert encode(g) == text
    assert decode("darts", encode(g)).same_as(g)
    supernet.compile(decode("darts", text, C=4, layers=3))(torch.randn(1, 3, 8, 8))


def test_decode_keeps_the_genotype_order_with_search_ports():
    text = PUBLISHED["DARTS_V2"]["genotype"]  # node 4 lists input 1 before input 0
    t = decode("darts", text).cells["normal"]
    assert [(u, t.edge(u, "n4")["port"]) for u, _ in t.in_edges("n4")] == [("p1", 0), ("p0", 1)]
    assert t.edge("p0", "n2")["ops"] == ["sep_conv_3x3"]
    assert t.edge("p0", "n2")["args"] == create_space("darts").cells["normal"].edge(
        "p0", "n2")["args"]


def test_encode_refuses_graphs_that_are_not_discretized():
    g = create_space("darts", C=4, layers=3)
    with pytest.raises(GenotypeError, match=r"edge p0->n2 keeps 8 ops \['none', 'max_pool_3x3'"):
        encode(g)
    d = decode("darts", PUBLISHED["DARTS_V2"]["genotype"])
    d.cells["normal"].add_edge("n3", "n4", ["sep_conv_3x3"])
    with pytest.raises(GenotypeError, match=r"node 'n4' keeps 3 input\(s\) \[1, 0, 3\]"):
        encode(d)


def test_decode_checks_steps_and_multiplier():
    text = PUBLISHED["DARTS_V2"]["genotype"]
    assert encode(decode("darts", text, steps=4, multiplier=4)) == text
    with pytest.raises(GenotypeError, match=r"genotype normal: has 4 step\(s\), but steps=5"):
        decode("darts", text, steps=5)
    with pytest.raises(GenotypeError, match="unexpected 'DARTS'"):
        decode("darts", "DARTS")


def test_bad_space_arguments_are_refused():
    from supernet.errors import ConfigError, UnknownNameError

    with pytest.raises(UnknownNameError, match=r"darts: ops: could not resolve op 'sep_conv_4x4'"):
        create_space("darts", ops=["none", "sep_conv_4x4"])
    with pytest.raises(ConfigError, match=r"darts: layers=2 makes every cell a reduction cell "
                                          r"\(at 0 and 1\), so no normal cell is searched"):
        create_space("darts1d", layers=2)
    with pytest.raises(ConfigError, match="multiplier=5 concatenates more nodes than the 4"):
        create_space("darts", multiplier=5)
    with pytest.raises(ConfigError, match="dim must be 1 .* or 2"):
        create_space("darts", dim=3)
    with pytest.raises(ConfigError, match=r"does not take argument\(s\) \['width'\]"):
        create_space("darts", width=3)


def test_discretizing_with_edits_keeps_weights_and_matches_the_decoded_graph():
    from supernet.edits import Editor, RemoveEdge, RemoveOp

    g = create_space("darts", C=4, layers=3)
    net = supernet.compile(g)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_()
    target = discretize(g, net)  # what the contract keeps
    editor = Editor(g, net)
    for cell in ("normal", "reduce"):
        t, want = g.cells[cell], target.cells[cell]
        for u, v in list(t.gate_edges()):
            if not want.nx.has_edge(u, v):
                editor.apply(RemoveEdge(u, v, cell=cell))
                continue
            for op in [o for o in t.edge(u, v)["ops"] if o not in want.edge(u, v)["ops"]]:
                editor.apply(RemoveOp(u, v, op, cell=cell))
    assert g.same_as(target) and len(net.arch) == 0
    text = encode(g)
    fresh = supernet.compile(decode("darts", text, C=4, layers=3))
    assert [p.shape for p in net.parameters()] == [p.shape for p in fresh.parameters()]
    fresh.load_state_dict(dict(zip(fresh.state_dict(), net.state_dict().values())))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(net.eval()(x), fresh.eval()(x), rtol=0, atol=1e-6)
