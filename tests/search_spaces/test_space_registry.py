"""Registry-wide tests (as timm's): every registered space, small instance from its
``example``, through build -> lint -> compile -> forward/backward -> export -> load -> same
outputs, and discretize -> text form -> decode. A newly registered space is covered by
being registered; one without an example fails here with the way to add one."""

import inspect

import pytest
import torch

import supernet
from search_spaces import create_space, decode, encode, list_spaces, space_entry, space_example
from supernet.compiler.module import module_key
from supernet.edits import Editor
from supernet.errors import ConfigError
from supernet.search.discretize.units import decision_edits as discretize_units
from supernet.spaces import SPACES as SPACE_REGISTRY

SPACES = list_spaces()


def _example(name):
    try:
        return space_example(name)
    except ConfigError as exc:
        pytest.fail(str(exc))


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _build(name):
    ex = _example(name)
    graph = create_space(name, **ex.kwargs)
    torch.manual_seed(0)
    net = supernet.compile(graph)
    args, kwargs = ex.inputs(graph)
    return ex, graph, net, args, kwargs


def test_every_space_is_covered():
    assert {"darts", "darts1d", "nasbench201", "proxyless", "gnn", "channel_cnn",
            "neuron_mlp"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_build_compile_run_export_load(name, tmp_path):
    ex, graph, net, args, kwargs = _build(name)
    assert graph.meta["space"] == name
    supernet.lint(graph)

    net.train()
    outs = _outputs(net(*args, **kwargs))
    sum(o.float().square().mean() for o in outs).backward()
    weights = [p for p in net.weights() if p.requires_grad]
    assert weights and any(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)
    for key, p in net.arch.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"gate {key} has no gradient"

    net.eval()
    with torch.no_grad():
        ref = _outputs(net(*args, **kwargs))
    supernet.save_graph(graph, tmp_path / "g.json")
    supernet.write_graphml(graph, tmp_path / "g.graphml")
    supernet.save_weights(net, tmp_path / "w.pt")
    for loaded in (supernet.load_graph(tmp_path / "g.json"),
                   supernet.read_graphml(tmp_path / "g.graphml")):
        assert loaded.same_as(graph)
        supernet.lint(loaded)
        fresh = supernet.compile(loaded)
        supernet.load_weights(fresh, tmp_path / "w.pt")
        fresh.eval()
        with torch.no_grad():
            got = _outputs(fresh(*args, **kwargs))
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            assert torch.equal(a, b), f"{name}: reloaded module differs by {(a - b).abs().max()}"


def _discretize_layer(graph, module):
    """The contract of ``graph.meta['constraints']`` (see docs/spaces.md), applied with the
    graph API: per node with gated in-edges keep the ``max_inputs`` strongest in-edges, each
    with its best op outside ``exclude``."""
    g = graph.copy()
    for cell, rule in g.meta["constraints"].items():
        t = g if cell == "" else g.cells[cell]
        prefix = "" if cell == "" else f"{cell}:"
        for v in [n for n in t.nx.nodes
                  if any(len(t.edge(u, n)["ops"]) > 1 for u in t.nx.predecessors(n))]:
            best = {}
            for u, _ in t.in_edges(v):
                ops = t.edge(u, v)["ops"]
                if len(ops) == 1:
                    continue
                w = torch.softmax(module.arch[module_key(f"{prefix}{u}->{v}")], -1)[0]
                best[u] = max((w[k].item(), op) for k, op in enumerate(ops)
                              if op not in rule["exclude"])
            kept = sorted(best, key=lambda u: -best[u][0])[:rule["max_inputs"]]
            for u in best:
                if u in kept:
                    t.set_ops(u, v, [best[u][1]])
                else:
                    t.remove_edge(u, v)
    return g


@pytest.mark.parametrize("name", SPACES)
def test_discretize_and_text_form(name):
    ex, graph, net, args, kwargs = _build(name)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.arch.values():
            p.copy_(torch.randn(p.shape, generator=gen))
            if graph.level != "layer":
                p[:, 0] += 2.0  # keep most units and connections
    if graph.level == "layer":
        final = _discretize_layer(graph, net)
        assert final.gate_edges() == [] and all(not c.gate_edges() for c in final.cells.values())
        fnet = supernet.compile(final)
    else:
        before = sum(len(graph.node(n)["units"]) for n in graph.nx.nodes)
        edits = discretize_units(net)
        assert edits, "random gates should drop something"
        ed = Editor(graph, net)
        for edit in edits:
            ed.apply(edit)
        final, fnet = graph, net
        assert sum(len(graph.node(n)["units"]) for n in graph.nx.nodes) <= before
    supernet.lint(final)
    fnet.eval()
    with torch.no_grad():
        for out in _outputs(fnet(*args, **kwargs)):
            assert torch.isfinite(out).all()
    if SPACE_REGISTRY.resolve(name).decode is None:
        return
    text = encode(final)
    params = inspect.signature(SPACE_REGISTRY.resolve(name).decode).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    dkw = {k: v for k, v in ex.kwargs.items() if takes_all or k in params}
    again = decode(name, text, **dkw)
    supernet.lint(again)
    assert again.meta["space"] == name
    assert encode(again) == text
    supernet.compile(again)


def test_a_space_without_example_fails_with_the_fix():
    from search_spaces import register_space

    register_space("no_example_space")(lambda: supernet.Graph("layer"))
    try:
        fix = (r"space 'no_example_space' has no example; add one to its registration: "
               r"register_space\('no_example_space', example=fn\)")
        with pytest.raises(ConfigError, match=fix):
            space_example("no_example_space")
        with pytest.raises(pytest.fail.Exception, match=fix):  # what the tests above report
            _example("no_example_space")
    finally:
        SPACE_REGISTRY.unregister("no_example_space")
    assert "no_example_space" not in list_spaces() and space_entry("channel_cnn")
