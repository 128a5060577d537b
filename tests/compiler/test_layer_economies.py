"""The forward's economies (shared prefixes, weighted batch norms, released values, memory
format) against the plain path: the same outputs and gradients, on tiny networks."""

import weakref

import pytest
import torch
import torch.nn as nn

import supernet as sn
from autograd_helpers import saved_bytes
from supernet.errors import ConfigError

CANDIDATES = ["sep_conv_3x3", "dil_conv_3x3", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "none"]


def fan_out_graph(ops=CANDIDATES, C=4):
    """Node ``s`` feeds two gated edges (candidates ``ops``), then a ReLU-conv-BN edge."""
    g = sn.Graph("layer", name="fan")
    g.add_input("x", channels=3)
    g.add_node("s", channels=C)
    g.add_edge("x", "s", "stem_conv_bn")
    g.add_node("a", channels=C)
    g.add_edge("s", "a", list(ops), pool_bn=True)
    g.add_node("b", channels=C)
    g.add_edge("s", "b", list(ops), pool_bn=True)
    g.add_edge("a", "b", "relu_conv_bn", kernel_size=3)
    g.add_node("cat", merge="concat")
    g.add_edge("a", "cat", "identity")
    g.add_edge("b", "cat", "identity")
    g.add_node("pool", channels=2 * C)
    g.add_edge("cat", "pool", "global_avg_pool")
    g.add_node("logits", channels=3)
    g.add_edge("pool", "logits", "linear")
    g.set_outputs(["logits"])
    return g


def darts(dtype=torch.float64):
    from search_spaces import create_space

    torch.manual_seed(0)
    net = sn.compile(create_space("darts", C=4, layers=3, steps=2, multiplier=2)).to(dtype)
    with torch.no_grad():
        for a in net.arch.values():
            a.normal_()
    return net


def grads(net, x, y):
    net.zero_grad(set_to_none=True)
    out = net(x)
    nn.functional.cross_entropy(out, y).backward()
    return out.detach(), [p.grad.clone() for p in net.parameters()]


def test_shared_prefixes_give_the_plain_outputs_and_gradients():
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (4,))
    runs = []
    for share in (False, True):
        net = darts()
        net.memory_format = "preserve"
        net.share_prefixes = share
        runs.append(grads(net, x, y))
        if share:  # batch statistics too: the running means after one step
            stats = [b.clone() for b in net.buffers()]
        else:
            plain_stats = [b.clone() for b in net.buffers()]
    (o0, g0), (o1, g1) = runs
    assert torch.equal(o0, o1)  # the forward is the same sequence of calls
    for a, b in zip(g0, g1):  # only the order of the gradient sums differs
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(plain_stats, stats):
        assert torch.equal(a, b)


def count_relu_calls(net, x):
    calls = []
    handles = [m.register_forward_hook(lambda *a: calls.append(1))
               for m in net.modules() if isinstance(m, nn.ReLU)]
    net(x)
    for h in handles:
        h.remove()
    return len(calls)


def test_each_prefix_of_a_node_runs_once_for_all_its_out_edges():
    net = sn.compile(fan_out_graph())
    x = torch.randn(2, 3, 6, 6)
    net.share_prefixes = False
    # per gated edge: sep_conv (two ReLUs), dil_conv (one); the relu_conv_bn edge: one
    assert count_relu_calls(net, x) == 2 * 3 + 1
    net.share_prefixes = True
    # relu(s) once for both gated edges, the second ReLU of each sep_conv, relu(a) once
    assert count_relu_calls(net, x) == 1 + 2 + 1
    e = net.plan.edge("s", "a")
    keys = [None if s is None else s[0][0] for s in e.shared]
    assert keys == ["ReLU", "ReLU", "MaxPool2d", "AvgPool2d", None, None]


def test_a_hooked_candidate_runs_as_a_whole():
    net = sn.compile(fan_out_graph())
    seen = []
    net.edge_module("s", "a")["sep_conv_3x3"].register_forward_hook(
        lambda m, args, out: seen.append(out))
    net(torch.randn(2, 3, 6, 6))
    assert len(seen) == 1


def test_forward_releases_values_after_their_last_reader():
    net = sn.compile(fan_out_graph())
    plan = net.plan
    released = [u for st in plan.steps for u in st.release]
    assert sorted(released) == ["a", "b", "cat", "pool", "s", "x"]
    assert plan.step("cat").release == ("a", "b")
    refs = {}

    def keep(m, args, out):
        refs["a"] = weakref.ref(args[0])

    def look(m, args, out):
        refs["alive"] = refs["a"]()

    net.edge_module("a", "cat")["identity"].register_forward_hook(keep)
    net.edge_module("pool", "logits")["linear"].register_forward_hook(look)
    with torch.no_grad():
        net.eval()(torch.randn(2, 3, 6, 6))
    assert refs["alive"] is None  # a's value was dropped before the classifier ran
    gates = net.relaxation(dict(net.arch.items()))
    values = net.run((torch.randn(2, 3, 6, 6),), gates)  # run keeps every value by default
    assert {"s", "a", "b", "cat", "pool", "logits"} <= set(values)


def test_memory_format_is_channels_last_on_cpu_and_overridable():
    net = sn.compile(fan_out_graph())
    stem = net.edge_module("x", "s")["stem_conv_bn"][0]
    formats = []
    stem.register_forward_pre_hook(
        lambda m, args: formats.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(2, 3, 6, 6)
    net(x)
    net.memory_format = "contiguous"
    net(x.contiguous(memory_format=torch.channels_last))
    assert formats == [True, False]
    with pytest.raises(ConfigError, match="memory_format must be one of"):
        net.memory_format = "nhwc"
    plain = sn.compile(fan_out_graph(["sep_conv_3x3"]))  # no gates: as its exports, in the
    assert not plain.gates()  # format of its input
    stem = plain.edge_module("x", "s")["stem_conv_bn"][0]
    stem.register_forward_pre_hook(
        lambda m, args: formats.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    plain(x)
    assert formats[-1] is False


def test_channels_last_gives_the_contiguous_outputs_and_gradients():
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (4,))
    runs = []
    for fmt in ("contiguous", "channels_last"):
        net = darts()
        net.memory_format = fmt
        runs.append(grads(net, x, y))
    (o0, g0), (o1, g1) = runs
    torch.testing.assert_close(o0, o1, rtol=1e-10, atol=1e-10)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_a_deep_copy_runs_its_own_modules_through_the_shared_prefixes():
    import copy
    import pickle

    net = darts()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    before = net(x).detach()
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)  # the copy's weights alone change
    assert torch.equal(net(x).detach(), before)
    out = twin(x).detach()
    assert not torch.allclose(out, before)
    twin.share_prefixes = False  # the plain path through the copy's own modules
    assert torch.allclose(twin(x).detach(), out, atol=1e-12)
    twin.share_prefixes = True
    again = pickle.loads(pickle.dumps(twin))
    assert torch.allclose(again(x).detach(), out, atol=1e-12)


def test_candidates_ending_in_a_norm_are_weighted_without_keeping_its_output():
    from torch.nn.modules.module import register_module_forward_hook

    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (4,))
    runs = {}
    for mode in ("plain", "fused", "fused_shared"):
        net = darts()
        net.memory_format = "preserve"
        net.share_prefixes = mode == "fused_shared"
        # a global hook makes every candidate run as a whole, multiplied as written
        hook = register_module_forward_hook(lambda m, i, o: None) if mode == "plain" else None
        try:
            _, kept = saved_bytes(lambda: net(x))
            out, gs = grads(net, x, y)
        finally:
            if hook is not None:
                hook.remove()
        runs[mode] = out, gs, [b.clone() for b in net.buffers()], kept
    o0, g0, b0, kept0 = runs["plain"]
    for mode in ("fused", "fused_shared"):
        o1, g1, b1, kept1 = runs[mode]
        assert torch.equal(o0, o1)
        for a, b in zip(g0, g1):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for a, b in zip(b0, b1):  # running statistics moved once per forward, as bn's own
            assert torch.equal(a, b)
    assert runs["fused"][3] < 0.9 * kept0  # measured 0.85x on this network
    assert runs["fused_shared"][3] < 0.7 * kept0  # with the shared prefixes: 0.61x


def test_partial_channel_edges_share_their_prefixes():
    from supernet.search.relaxations import PartialChannels, mark_partial, use_relaxation

    g = fan_out_graph(C=8)
    assert mark_partial(g, 4) == 2
    torch.manual_seed(0)
    net = sn.compile(g).double()
    use_relaxation(net, PartialChannels(4))
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    net.share_prefixes = False
    plain_calls = count_relu_calls(net, x)
    plain = net(x)
    net.share_prefixes = True
    shared_calls = count_relu_calls(net, x)
    assert torch.equal(net(x), plain)
    # per partial edge: sep_conv (two ReLUs), dil_conv (one) on s[:, :2]; relu_conv_bn: one
    assert plain_calls == 2 * 3 + 1
    # relu(s[:, :2]) once for both partial edges, the second ReLU of each sep_conv, relu(a)
    assert shared_calls == 1 + 2 + 1
