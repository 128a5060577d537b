"""The channel-level ResNet space: layout against a ResNet written in PyTorch, gated search
steps, discretization that really shrinks tensors (residual streams together), function-
preserving widening, and its text form."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import supernet
from search_spaces import create_space, decode, encode
from supernet.edits import Editor
from supernet.edits.units import AddUnits
from supernet.errors import ConfigError, GenotypeError
from supernet.gates import Decision, Relaxation
from supernet.search import scores
from supernet.search.discretize.units import decision_edits as discretize
from supernet.search.discretize.units import prune
from supernet.search.relaxations import TiedGates, use_relaxation
from supernet.units import dependency_groups

SMALL = dict(widths=(4, 8), depths=(2, 1), num_classes=3, input_size=8)


def small(**kw):
    return create_space("channel_cnn", **{**SMALL, **kw})


def randomize(net):
    """Non-trivial batch-norm statistics and gate logits, so that tests see them."""
    with torch.no_grad():
        for m in net.nodes.values():
            if getattr(m, "has_norm", False):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.norm_weight.normal_()
                m.norm_bias.normal_()
        for a in net.arch.values():
            a.normal_()


def hard(choice):
    return {k: Decision(F.one_hot(c, 2).float()) for k, c in choice.items()}


# ---------------------------------------------------------------------- layout
def test_default_layout_streams_and_gates():
    g = create_space("channel_cnn")
    supernet.lint(g)
    assert g.meta["space"] == "channel_cnn"
    assert encode(g) == "16 16:16,16 32p:32,32 64p:64,64"
    assert [n for n in g.nx.nodes if n.endswith("_proj")] == ["s2b1_proj", "s3b1_proj"]
    assert g.meta["streams"]["s1b1"] == ["stem", "s1b1_c2", "s1b1", "s1b2_c2", "s1b2"]
    assert g.meta["stream_gates"] == {"s1b1": ["stem", "s1b1", "s1b2"], "s2b1": ["s2b1", "s2b2"],
                                      "s3b1": ["s3b1", "s3b2"]}
    # One dependency group per stream channel, spanning every node of its stream.
    groups = dependency_groups(g)
    assert len(groups) == 16 + 32 + 64
    assert sorted(groups[0]) == sorted(g.meta["streams"]["s1b1"])
    assert all(len(ids) == 1 for grp in groups for ids in grp.values())
    gated = sorted(n for n in g.nx.nodes if g.node(n).get("gated"))
    inner = [f"s{s}b{b}_c1" for s in (1, 2, 3) for b in (1, 2)]
    assert gated == sorted(inner + ["stem", "s1b1", "s1b2", "s2b1", "s2b2", "s3b1", "s3b2"])
    assert g.edge("s1b2", "s2b1_c1")["stride"] == [2, 2]
    assert g.edge("s1b2", "s2b1_proj")["kernel"] == [1, 1]


class BasicBlock(nn.Module):
    def __init__(self, cin, inner, cout, stride, proj):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, inner, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout)) if proj else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """A CIFAR-style ResNet of basic blocks, written the usual way."""

    def __init__(self, stem, stages, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU())
        blocks, cin = [], stem
        for width, stride, inner in stages:
            for b, c in enumerate(inner):
                s = stride if b == 0 else 1
                blocks.append(BasicBlock(cin, c, width, s, b == 0 and (s != 1 or cin != width)))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def load_from(ref, net, g):
    def bn(m, v):
        p = net.unit_params(v)
        for a, b in (("weight", "norm_weight"), ("bias", "norm_bias"),
                     ("running_mean", "running_mean"), ("running_var", "running_var")):
            getattr(m, a).copy_(getattr(p, b))

    with torch.no_grad():
        ref.stem[0].weight.copy_(net.block("x", "stem").weight)
        bn(ref.stem[1], "stem")
        prev, k = "stem", 0
        for s, blocks in enumerate(g.meta["stages"], start=1):
            for name in blocks:
                blk = ref.blocks[k]
                blk.conv1.weight.copy_(net.block(prev, f"{name}_c1").weight)
                bn(blk.bn1, f"{name}_c1")
                blk.conv2.weight.copy_(net.block(f"{name}_c1", f"{name}_c2").weight)
                bn(blk.bn2, f"{name}_c2")
                if blk.short is not None:
                    blk.short[0].weight.copy_(net.block(prev, f"{name}_proj").weight)
                    bn(blk.short[1], f"{name}_proj")
                prev, k = name, k + 1
        ref.fc.weight.copy_(net.block(prev, "head").weight)
        ref.fc.bias.copy_(net.unit_params("head").bias)


def test_matches_a_resnet_written_in_torch():
    stages = [(6, 1, [3, 5]), (8, 2, [7])]  # stem 5 != 6: a projection in stage 1 too
    g = create_space("channel_cnn", widths=(6, 8), depths=(2, 1), stem=5, inner=[[3, 5], [7]],
                     num_classes=4, gated=())
    assert encode(g) == "5 6p:3,5 8p:7"
    net = supernet.compile(g, seed=0)
    randomize(net)
    ref = ResNet(5, stages, 4)
    load_from(ref, net, g)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in net.weights())
    x = torch.randn(4, 3, 8, 8)
    for mode in ("eval", "train"):
        net.train(mode == "train"), ref.train(mode == "train")
        assert (net(x) - ref(x)).abs().max() < 1e-5, mode


# ---------------------------------------------------------------------- search
class StraightThroughGumbel(Relaxation):
    """GDAS-style sampling: a hard one-hot sample forward, the soft gradient backward."""

    def decide(self, key, alpha):
        return Decision(F.gumbel_softmax(alpha, tau=1.0, hard=True))


@pytest.mark.parametrize("base", [None, StraightThroughGumbel()], ids=["softmax", "gumbel"])
def test_channel_gated_search_step(base):
    g = small()
    net = supernet.compile(g, seed=0)
    use_relaxation(net, TiedGates(base))
    w_opt = torch.optim.SGD(net.weights(), lr=0.05, momentum=0.9)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=0.1)
    before = {k: a.detach().clone() for k, a in net.arch.items()}
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    decisions = net.decisions()
    stream = [decisions[k] for k in g.meta["stream_gates"]["s1b1"]]
    assert all(torch.equal(d.weights, stream[0].weights) for d in stream)  # one per channel
    for opt, params in ((w_opt, net.weights()), (a_opt, net.arch_parameters())):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    for k in net.arch.keys():
        assert not torch.equal(net.arch[k], before[k]), f"gate {k} did not move"
    grads = [net.arch[k].grad for k in g.meta["stream_gates"]["s1b1"]]
    assert all(torch.equal(grads[0], gr) for gr in grads[1:])  # tied gates, one gradient
    assert net.arch["s1b1_c1"].shape == (4, 2) and net.arch["s2b1"].shape == (8, 2)


def test_discretize_removes_channels_and_streams_shrink_together():
    g = small()
    net = supernet.compile(g, seed=0)
    use_relaxation(net, TiedGates())
    randomize(net)
    with torch.no_grad():
        for a in net.arch.values():
            a.copy_(torch.tensor([1.0, 0.0]))
        net.arch["s1b2"][[1, 2], 1] = 9.0  # drop two channels of the stage-1 stream
        net.arch["s2b1_c1"][[0, 3, 6], 1] = 3.0  # and three inner channels
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    choice = net.relaxation.choice(net)
    with torch.no_grad():
        gated = net(x, gates=hard(choice))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    ed = Editor(g, net, opt)
    for edit in discretize(net, choice=choice):
        ed.apply(edit)
    supernet.lint(g)
    assert encode(g) == "2 2:4,4 8p:5"
    for n in g.meta["streams"]["s1b1"]:
        assert g.node(n)["units"].tolist() == [0, 3], n
    assert net.block("x", "stem").weight.shape == (2, 3, 3, 3)
    assert net.block("stem", "s1b1_c1").weight.shape == (4, 2, 3, 3)
    assert net.block("s1b1_c1", "s1b1_c2").weight.shape == (2, 4, 3, 3)
    assert net.block("s1b2", "s2b1_proj").weight.shape == (8, 2, 1, 1)
    assert net.block("s2b1_c1", "s2b1_c2").weight.shape == (8, 5, 3, 3)
    assert net.unit_params("s1b1_c2").norm_weight.shape == (2,)
    assert net.arch["s1b1"].shape == (2, 2) and net.arch["s2b1_c1"].shape == (5, 2)
    keep = {k: Decision(torch.tensor([[1.0, 0.0]]).expand(len(a), 2)) for k, a in net.arch.items()}
    with torch.no_grad():
        assert (net(x, gates=keep) - gated).abs().max() < 1e-6
    net.train()
    F.cross_entropy(net(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()  # momentum buffers were sliced with the tensors


def test_pruning_residual_channels_by_score_removes_whole_groups():
    g = small(gated=())
    net = supernet.compile(g, seed=0)
    unit_scores = scores.magnitude(net, what="units")
    stream = g.meta["streams"]["s2b1"]
    weighted = {n: unit_scores[n] for n in stream if n in unit_scores}  # c2 and proj
    assert sorted(weighted) == ["s2b1_c2", "s2b1_proj"]
    (edit,) = prune(g, weighted, 0.25, what="units")
    Editor(g, net).apply(edit)
    assert {len(g.node(n)["units"]) for n in stream} == {6}  # round(0.25 * 8) groups gone
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3)


# ---------------------------------------------------------------------- creation
@pytest.mark.parametrize("init,kw", [("split", {"source": [0, 2]}), ("zero", {"count": 3})])
@pytest.mark.parametrize("node", ["s1b1", "s2b1", "s1b2_c1", "s2b1_c1"])
def test_widening_preserves_the_function(init, kw, node):
    g = small()
    net = supernet.compile(g, seed=0)
    use_relaxation(net, TiedGates())
    randomize(net)
    net.eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        before = net(x)
    ed = Editor(g, net)
    ed.apply(AddUnits(node, init=init, seed=1, **kw))
    supernet.lint(g)
    added = len(kw["source"]) if init == "split" else kw["count"]
    assert encode(g) != "4 4:4,4 8p:8"  # widths did change ...
    with torch.no_grad():
        assert (net(x) - before).abs().max() < 1e-6  # ... the function did not
    grown = g.meta["streams"].get(node, [node])  # a stream grows in every node at once
    assert {len(g.node(n)["units"]) for n in grown} == {(8 if node[1] == "2" else 4) + added}


# ---------------------------------------------------------------------- text form
def test_text_form_round_trips_a_pruned_network_with_its_weights():
    g = small()
    net = supernet.compile(g, seed=0)
    randomize(net)
    with torch.no_grad():
        for a in net.arch.values():
            a.copy_(torch.tensor([1.0, 0.0]))
        net.arch["stem"][0, 1] = 9.0
        net.arch["s1b2_c1"][[1, 2], 1] = 3.0
    use_relaxation(net, TiedGates())
    for edit in discretize(net, choice=net.relaxation.choice(net)):
        Editor(g, net).apply(edit)
    text = encode(g)
    assert text == "3 3:4,2 8p:8"
    d = decode("channel_cnn", text, num_classes=3, input_size=8)
    supernet.lint(d)
    assert encode(d) == text and not d.gate_edges()
    fresh = supernet.compile(d)
    fresh.load_state_dict({k: v for k, v in net.state_dict().items()
                           if not k.startswith("arch.")})  # same names, same shapes
    net.eval(), fresh.eval()
    x = torch.randn(2, 3, 8, 8)
    ones = {k: Decision(torch.tensor([[1.0, 0.0]]).expand(len(a), 2)) for k, a in net.arch.items()}
    with torch.no_grad():
        assert torch.equal(fresh(x), net(x, gates=ones))


def test_decode_and_builder_errors_name_the_fix():
    with pytest.raises(GenotypeError, match=r"stage 2: token '8:8' has an identity shortcut, "
                                            r"but the stage changes the shape \(stride 2\); "
                                            r"write '8p:8'"):
        decode("channel_cnn", "4 4:4 8:8")
    with pytest.raises(GenotypeError, match=r"stage 1: token '4:4;4' is not "
                                            r"'width\[p\]:inner,inner,...'"):
        decode("channel_cnn", "4 4:4;4")
    with pytest.raises(GenotypeError, match=r"has 2 stage\(s\) but strides=\[1\]"):
        decode("channel_cnn", "4 4:4 8p:8", strides=[1])
    with pytest.raises(GenotypeError, match=r"token '0:4' has a zero width"):
        decode("channel_cnn", "4 0:4")
    with pytest.raises(ConfigError, match=r"stage 1 has 2 block\(s\) but inner\[0\] lists 1"):
        create_space("channel_cnn", widths=(4,), depths=2, inner=[[4]])
    with pytest.raises(ConfigError, match=r"depths has 1 entries for 2 stages"):
        create_space("channel_cnn", widths=(4, 8), depths=(1,))
    with pytest.raises(ConfigError, match=r"gated=\['neurons'\]: unknown \['neurons'\]; "
                                          r"choose from \['inner', 'stream'\]"):
        create_space("channel_cnn", gated=["neurons"])


def test_resnet20_size():
    # ResNet-20 (He et al.: 3 stages of 3 blocks at 16, 32, 64) has 269,722 parameters
    # with option A shortcuts; the two 1x1 conv-BN projections of option B add 2,752.
    g = create_space("channel_cnn", depths=3, gated=())
    net = supernet.compile(g)
    assert sum(p.numel() for p in net.parameters()) == 269_722 + 16 * 32 + 32 * 64 + 2 * 96
    from supernet.cost.units import unit_cost

    cost = unit_cost(g)
    assert cost.total.params == 272_474
    assert cost.total.macs - (32 * 16 * 16 * 16 + 64 * 32 * 8 * 8) == 40_551_040  # option A
