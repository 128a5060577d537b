"""A channel-level ResNet for width search and channel pruning (space ``"channel_cnn"``).

The network is a ResNet of basic blocks (He et al., CVPR 2016) at the channel level of
:mod:`supernet.units`: every feature map is a unit with a stable id, every kernel between
two feature maps a connection. Layout (node names):

* ``x``: the input image (``in_channels`` channels);
* ``stem``: 3x3 conv - BN - ReLU to ``stem`` channels;
* per stage ``s`` (from 1) and block ``b`` (from 1), a basic block
  ``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``:

  - ``s{s}b{b}_c1``: 3x3 conv (stride ``strides[s-1]`` in the first block) - BN - ReLU,
    width ``inner[s-1][b-1]`` (the block's own width, free to shrink alone);
  - ``s{s}b{b}_c2``: 3x3 conv - BN, the stage's width;
  - ``s{s}b{b}_proj``: the shortcut 1x1 conv (same stride) - BN, in the first block of a
    stage whose width or resolution changes (ResNet's option B); otherwise the shortcut is
    an identity;
  - ``s{s}b{b}``: ``relu`` of the sum of ``c2`` and the shortcut (two identity edges);

* ``head``: global average pooling, then a dense classifier to ``num_classes``.

Convolutions have no bias (batch norm follows), as in ResNet. The identity edges tie the
channels of a *residual stream*: channel ``i`` of ``c2``, of the block output, of the next
block's output, ... (and of the stem or the projection the stream starts from) are one
dependency group (:func:`supernet.units.dependency_groups`), so removing it removes it from
every add of the stage at once. ``graph.meta["streams"]`` lists, per stream, its nodes in
order, and ``graph.meta["stream_gates"]`` the gated ones among them: the nodes of the stream
that something outside it reads (a conv or the classifier).

Gates (``gated``): ``"inner"`` gives each ``c1`` node one keep/drop gate per channel;
``"stream"`` gates the stream nodes above. The gates of one stream channel are tied (one
dependency group): wrap the relaxation in
:class:`~supernet.search.relaxations.TiedGates` (a search does it itself) so that they take
one decision (a dropped stream channel is then zero in every add, as if removed);
:meth:`~supernet.search.relaxations.TiedGates.choice` is the matching discrete decision for
:func:`supernet.search.discretize.decision_edits`.

Text form: widths per group, ``"stem s1 s2 ..."`` where a stage token is
``width[p]:inner,inner,...`` (``p``: the stage starts with a projection shortcut; one inner
width per block). The default network is ``"16 16:16,16 32p:32,32 64p:64,64"``. Strides,
the input and the classes are arguments of :func:`decode`, as of :func:`channel_cnn`.

Examples:
    >>> import torch, supernet
    >>> from search_spaces import create_space, encode
    >>> g = create_space("channel_cnn", widths=(4, 8), depths=(1, 1), num_classes=3)
    >>> encode(g)
    '4 4:4 8p:8'
    >>> g.meta["streams"]
    {'s1b1': ['stem', 's1b1_c2', 's1b1'], 's2b1': ['s2b1_c2', 's2b1_proj', 's2b1']}
    >>> net = supernet.compile(g)
    >>> net(torch.randn(2, 3, 8, 8)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import re

import torch

from supernet import Graph
from supernet.errors import ConfigError, GenotypeError
from supernet.search.discretize.units import set_gated
from supernet.spaces import (
    MAX_SIZE,
    Example,
    check_connections,
    check_names,
    check_size,
    register_space,
)
from supernet.units import add_group, add_input, connect, dependency_groups

__all__ = ["channel_cnn", "decode", "encode", "GATED"]

#: What ``gated`` may name.
GATED = ("inner", "stream")


#: Bounds of the blocks per stage and of the strides.
MAX_DEPTH, MAX_STRIDE = 256, 64


def _positive(name: str, value, hi: int = MAX_SIZE) -> int:
    return check_size("channel_cnn", name, value, hi=hi)


def _spec(stem, widths, depths, strides, inner):
    """Check the configuration; returns ``(stem, [(width, stride, [inner widths])])``."""
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ConfigError(f"channel_cnn: widths must be a non-empty list of ints, got "
                          f"{widths!r:.60}")
    n = _positive("len(widths)", len(widths), MAX_DEPTH)
    depths = [depths] * n if isinstance(depths, int) else depths
    strides = [1] + [2] * (n - 1) if strides is None else strides
    for name, vals in (("depths", depths), ("strides", strides), ("inner", inner)):
        if not isinstance(vals, (list, tuple)) and not (name == "inner" and vals is None):
            raise ConfigError(f"channel_cnn: {name} must be a list with one entry per stage, "
                              f"got {vals!r:.60}")
    depths, strides = list(depths), list(strides)
    for name, vals in (("depths", depths), ("strides", strides)):
        if len(vals) != n:
            raise ConfigError(f"channel_cnn: {name} has {len(vals)} entries for {n} stages "
                              f"(widths={list(widths)}); give one per stage")
    if inner is None:  # each block as wide as its stage, once the depths are checked
        inner = [None] * n
    if len(inner) != n:
        raise ConfigError(f"channel_cnn: inner has {len(inner)} entries for {n} stages")
    stages = []
    for s, (w, d, st, inn) in enumerate(zip(widths, depths, strides, inner), start=1):
        d = _positive(f"depths[{s - 1}]", d, MAX_DEPTH)
        inn = [w] * d if inn is None else inn
        if not isinstance(inn, (list, tuple)):
            raise ConfigError(f"channel_cnn: inner[{s - 1}] must be a list of widths, one per "
                              f"block, got {inn!r:.60}")
        inn = list(inn)
        if len(inn) != d:
            raise ConfigError(f"channel_cnn: stage {s} has {d} block(s) but inner[{s - 1}] "
                              f"lists {len(inn)} width(s); give one per block")
        stages.append((_positive(f"widths[{s - 1}]", w),
                       _positive(f"strides[{s - 1}]", st, MAX_STRIDE),
                       [_positive(f"inner[{s - 1}][{b}]", x) for b, x in enumerate(inn)]))
    return _positive("stem", stem), stages


def _connections(stem, stages, in_channels, num_classes) -> int:
    """The kernels (channel-level connections) of the network, counted before it is built."""
    count, width = in_channels * stem, stem
    for w, _, inner in stages:
        for b, c in enumerate(inner):
            count += width * c + c * w + (width * w if b == 0 else 0)
            width = w
    return count + width * num_classes


def _build(stem, stages, in_channels, num_classes, input_size, gated, projections=None):
    gated = () if gated is None else check_names("channel_cnn", "gated", gated, GATED)
    in_channels = _positive("in_channels", in_channels)
    num_classes = _positive("num_classes", num_classes)
    size = _size(input_size)
    check_connections("channel_cnn", _connections(stem, stages, in_channels, num_classes),
                      "its widths")
    g = Graph("channel", name="channel_cnn")
    add_input(g, "x", in_channels, shape=[in_channels, *size])
    add_group(g, "stem", stem, act="relu", bias=False, norm="batchnorm")
    connect(g, "x", "stem", "conv", kernel=3)
    prev, width, rows = "stem", stem, []
    for s, (w, stride, inner) in enumerate(stages, start=1):
        proj = stride != 1 or w != width
        if projections is not None:
            proj = projections[s - 1]
        rows.append(proj)
        for b, c in enumerate(inner, start=1):
            name = f"s{s}b{b}"
            st = stride if b == 1 else 1
            add_group(g, f"{name}_c1", c, act="relu", bias=False, norm="batchnorm",
                      gated="inner" in gated)
            connect(g, prev, f"{name}_c1", "conv", kernel=3, stride=st)
            add_group(g, f"{name}_c2", w, bias=False, norm="batchnorm")
            connect(g, f"{name}_c1", f"{name}_c2", "conv", kernel=3)
            short = prev
            if b == 1 and proj:
                short = f"{name}_proj"
                add_group(g, short, w, bias=False, norm="batchnorm")
                connect(g, prev, short, "conv", kernel=1, stride=st, padding=0)
            add_group(g, name, w, act="relu", bias=False)
            connect(g, f"{name}_c2", name, "identity")
            connect(g, short, name, "identity")
            prev = name
        width = w
    add_group(g, "head", num_classes)
    connect(g, prev, "head", "dense", pool="global_avg")
    g.set_outputs(["head"])
    g.set_meta(space="channel_cnn")
    g.set_meta(projections=rows)
    g.set_meta(stages=[[f"s{s}b{b}" for b in range(1, len(inner) + 1)]
                        for s, (_, _, inner) in enumerate(stages, start=1)])
    g.set_meta(strides=[st for _, st, _ in stages])
    streams, gates = _streams(g)
    g.set_meta(streams=streams, stream_gates=gates)
    if "stream" in gated:
        set_gated(g, units=[n for nodes in gates.values() for n in nodes])
    return g


def _size(input_size):
    size = [input_size] * 2 if isinstance(input_size, int) else input_size
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ConfigError(f"channel_cnn: input_size is an int or [height, width], got "
                          f"{input_size!r}")
    return [_positive("input_size", x) for x in size]


def _streams(g: Graph) -> tuple[dict, dict]:
    """Residual streams (the node sets of the dependency groups), named after their first
    block, and per stream the nodes read from outside it."""
    order = {n: i for i, n in enumerate(g.topological_order())}
    seen = []
    for group in dependency_groups(g):
        nodes = sorted(group, key=order.get)
        if nodes not in seen:
            seen.append(nodes)
    streams, gates = {}, {}
    for nodes in seen:
        name = next(n for n in nodes if re.fullmatch(r"s\d+b\d+", n))
        members = set(nodes)
        streams[name] = nodes
        gates[name] = [n for n in nodes if g.node(n)["kind"] == "units" and any(
            g.edge(n, w)["kind"] != "identity" or w not in members for w in g.nx.successors(n))]
    return streams, gates


def channel_cnn(widths=(16, 32, 64), depths=(2, 2, 2), strides=None, stem: int | None = None,
                inner=None, in_channels: int = 3, num_classes: int = 10, input_size=32,
                gated=GATED) -> Graph:
    """The channel-level ResNet (see the module docstring for the layout).

    Args:
        widths: channels of each stage's residual stream.
        depths: basic blocks per stage (an int for all stages).
        strides: stride of each stage's first block (default ``1, 2, 2, ...``).
        stem: channels of the stem (default ``widths[0]``).
        inner: per stage, the width of each block's first conv (default: the stage width).
        input_size: image size (recorded on the input node; used by the cost model).
        gated: ``"inner"`` and/or ``"stream"``: which channels get keep/drop gates.
    """
    if stem is None and isinstance(widths, (list, tuple)) and widths:
        stem = widths[0]
    stem, stages = _spec(stem, widths, depths, strides, inner)
    return _build(stem, stages, in_channels, num_classes, input_size, gated)


def encode(graph: Graph) -> str:
    """Widths per group of a channel-level ResNet: ``"stem s1 s2 ..."`` (module docstring)."""
    stages = graph.meta.get("stages")
    if not stages or "stem" not in graph:
        raise GenotypeError(f"{graph.name}: no stage list in graph.meta; encode graphs made by "
                            "channel_cnn() or decode()")
    width = {n: len(graph.node(n)["units"]) for n in graph.nx.nodes}
    tokens = [str(width["stem"])]
    for s, blocks in enumerate(stages, start=1):
        proj = f"s{s}b1_proj" in graph
        inner = ",".join(str(width[f"{b}_c1"]) for b in blocks)
        tokens.append(f"{width[blocks[0]]}{'p' if proj else ''}:{inner}")
    return " ".join(tokens)


# widths of at most 9 digits: a longer one is past every bound (and slow to convert)
_STEM = re.compile(r"[0-9]{1,9}")
_STAGE = re.compile(r"([0-9]{1,9})(p?):([0-9]{1,9}(?:,[0-9]{1,9})*)")


def decode(text: str, strides=None, in_channels: int = 3, num_classes: int = 10,
           input_size=32, gated=()) -> Graph:
    """The channel-level ResNet of a text form (gates off by default: a final network)."""
    tokens = text.split() if isinstance(text, str) else []
    if len(tokens) < 2 or not _STEM.fullmatch(tokens[0]) or int(tokens[0]) < 1:
        raise GenotypeError(f"channel_cnn: expected 'stem width:inner,...', e.g. "
                            f"'16 16:16,16 32p:32,32', got {text!r:.80}")
    stem, prev = int(tokens[0]), int(tokens[0])
    strides = [1] + [2] * (len(tokens) - 2) if strides is None else list(strides)
    if len(strides) != len(tokens) - 1:
        raise GenotypeError(f"channel_cnn: {text!r:.80} has {len(tokens) - 1} stage(s) but "
                            f"strides={strides}; give one stride per stage")
    stages, projections = [], []
    for s, (token, stride) in enumerate(zip(tokens[1:], strides), start=1):
        m = _STAGE.fullmatch(token)
        if m is None:
            raise GenotypeError(f"channel_cnn: stage {s}: token {token!r:.80} is not "
                                "'width[p]:inner,inner,...' (e.g. '32p:32,32') of widths of "
                                "at most 9 digits")
        w, proj = int(m.group(1)), bool(m.group(2))
        inner = [int(x) for x in m.group(3).split(",")]
        if min([w] + inner) < 1:
            raise GenotypeError(f"channel_cnn: stage {s}: token {token!r} has a zero width; "
                                "widths are positive")
        if not proj and (stride != 1 or w != prev):
            change = f"stride {stride}" if stride != 1 else f"width {prev} -> {w}"
            raise GenotypeError(
                f"channel_cnn: stage {s}: token {token!r} has an identity shortcut, but the "
                f"stage changes the shape ({change}); write '{w}p:{m.group(3)}'"
            )
        stages.append((w, stride, inner))
        projections.append(proj)
        prev = w
    stem, stages = _spec(stem, [w for w, _, _ in stages], [len(i) for _, _, i in stages],
                         strides, [i for _, _, i in stages])
    return _build(stem, stages, in_channels, num_classes, input_size, gated, projections)


def _example():
    def inputs(graph):
        return (torch.randn(2, graph.node("x")["width"], 8, 8),), {}

    return Example({"widths": (4, 8), "depths": (2, 1), "num_classes": 3, "input_size": 8},
                   inputs)


register_space("channel_cnn", encode=encode, decode=decode, example=_example)(channel_cnn)
