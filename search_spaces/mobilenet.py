"""The MobileNetV2 / ProxylessNAS chain space (Cai et al., "ProxylessNAS: Direct Neural
Architecture Search on Target Task and Hardware", ICLR 2019; the mobile search space of its
public code).

A chain of blocks. The defaults are the ProxylessNAS ImageNet search space: a 3x3 conv
(32 channels, stride 2) - BN - ReLU6; a fixed first block ``3x3 MBConv1`` to 16 channels;
six stages of widths ``24, 40, 80, 96, 192, 320`` with ``4, 4, 4, 4, 4, 1`` blocks and
strides ``2, 2, 2, 1, 2, 1`` (on the first block of a stage); a 1x1 feature-mix conv to
1280 channels - BN - ReLU6; global average pooling; a linear classifier (dropout first if
``dropout > 0``). Every width is scaled by ``width_mult`` and rounded to a multiple of 8 as
the reference's ``make_divisible`` does; BN momentum 0.1 and eps 1e-3.

Each searched block chooses among the MBConv candidates (kernel 3, 5, 7 x expansion 3, 6
by default, see :mod:`supernet.ops.mobile`). Where the block keeps the shape (stride 1,
equal widths), ``none`` is a candidate too and an identity shortcut is added around the
choice, as ProxylessNAS's ``MobileInvertedResidualBlock`` does: choosing ``none`` then
skips the block. In the graph, such a block ``b`` is node ``block{b}_op`` (the gated edge
from the previous block) plus node ``block{b}`` summing ``block{b}_op`` and the shortcut
(two ``identity`` edges); other blocks are a gated edge into ``block{b}``.

Text form: one registry op name per block, first block included, joined by commas, e.g.
``"mbconv_3x3_e1,mbconv_5x5_e6,none,..."`` (ProxylessNAS calls ``mbconv_5x5_e6``
``5x5_MBConv6`` and ``none`` ``Zero``).

Examples:
    >>> from search_spaces import mobilenet as mb
    >>> kw = dict(width_mult=0.25, n_cell_stages=(1, 2, 1, 1, 1, 1), num_classes=5,
    ...           last_channel=32, input_size=16)
    >>> g = mb.proxyless(**kw)
    >>> len(g.gate_edges())  # one gate per searched block
    7
    >>> text = ",".join(["mbconv_3x3_e1", "mbconv_5x5_e6", "mbconv_3x3_e3", "none",
    ...                  "mbconv_7x7_e6", "mbconv_3x3_e6", "mbconv_5x5_e3", "mbconv_7x7_e3"])
    >>> mb.encode(mb.decode(text, **kw)) == text
    True
"""

from __future__ import annotations

import functools
import inspect

import torch

from supernet import Graph
from supernet.errors import ConfigError, GenotypeError
from supernet.ops import resolve_op
from supernet.ops.mobile import mbconv_name
from supernet.spaces import Example, check_names, check_number, check_size, register_space

__all__ = [
    "PROXYLESS_CANDIDATES",
    "FIRST_BLOCK",
    "make_divisible",
    "block_choices",
    "proxyless",
    "decode",
    "encode",
]

#: ``3x3_MBConv3, 3x3_MBConv6, 5x5_MBConv3, 5x5_MBConv6, 7x7_MBConv3, 7x7_MBConv6``.
PROXYLESS_CANDIDATES = tuple(mbconv_name(k, e) for k in (3, 5, 7) for e in (3, 6))
FIRST_BLOCK = mbconv_name(3, 1)
WIDTH_STAGES = (24, 40, 80, 96, 192, 320)
N_CELL_STAGES = (4, 4, 4, 4, 4, 1)
STRIDE_STAGES = (2, 2, 2, 1, 2, 1)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor``, never below ``min_value`` (default
    ``divisor``) nor more than 10% below ``v`` (the MobileNetV2 / ProxylessNAS rule).

    Examples:
        >>> make_divisible(32 * 0.35), make_divisible(1280 * 1.4)
        (16, 1792)
    """
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


#: Bounds of the width multiplier and of the blocks per stage.
MAX_WIDTH_MULT, MAX_BLOCKS = 64, 256


#: ``_int(key, value, lo=1, hi=MAX_SIZE)``: a size or count of the space, checked.
_int = functools.partial(check_size, "proxyless")


def block_choices(width_mult: float = 1.0, width_stages=WIDTH_STAGES,
                  n_cell_stages=N_CELL_STAGES, stride_stages=STRIDE_STAGES,
                  candidates=PROXYLESS_CANDIDATES, first_block: str = FIRST_BLOCK) -> list[dict]:
    """The chain's blocks: ``{"C_in", "C_out", "stride", "choices", "shortcut"}`` each.

    Examples:
        >>> [b["C_out"] for b in block_choices(n_cell_stages=(1, 1, 1, 1, 1, 1))]
        [16, 24, 40, 80, 96, 192, 320]
        >>> block_choices(n_cell_stages=(2, 1, 1, 1, 1, 1))[2]["choices"][-1]
        'none'
    """
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or \
            not 0 < width_mult <= MAX_WIDTH_MULT:
        raise ConfigError(f"proxyless: width_mult must be a positive number, got "
                          f"{width_mult!r} (at most {MAX_WIDTH_MULT})")
    for key, value in (("width_stages", width_stages), ("n_cell_stages", n_cell_stages),
                       ("stride_stages", stride_stages)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"proxyless: {key} must be a list with one entry per stage, got "
                              f"{value!r:.60}")
    stages = [list(width_stages), list(n_cell_stages), list(stride_stages)]
    if len({len(s) for s in stages}) != 1:
        raise ConfigError(
            "proxyless: width_stages, n_cell_stages and stride_stages must have one entry per "
            f"stage, got lengths {[len(s) for s in stages]}"
        )
    candidates = check_names("proxyless", "candidates", candidates)
    if not isinstance(first_block, str):
        raise ConfigError(f"proxyless: first_block must be an op name, got {first_block!r:.60}")
    if not candidates or "none" in candidates:
        raise ConfigError(
            f"proxyless: candidates {candidates} must be non-empty MBConv ops without 'none' "
            "('none' is added where the block keeps its shape)"
        )
    for op in candidates + [first_block]:
        resolve_op(op, "proxyless candidates")
    C_in = make_divisible(32 * width_mult)
    first = make_divisible(16 * width_mult)
    blocks = [dict(C_in=C_in, C_out=first, stride=1, choices=[first_block], shortcut=False)]
    C_in = first
    for width, n, s in zip(*stages):
        width = make_divisible(_int("width_stages entries", width) * width_mult)
        for i in range(_int("n_cell_stages entries", n, lo=0, hi=MAX_BLOCKS)):
            stride = _int("stride_stages entries", s, hi=64) if i == 0 else 1
            keeps = stride == 1 and C_in == width
            blocks.append(dict(C_in=C_in, C_out=width, stride=stride, shortcut=keeps,
                               choices=candidates + (["none"] if keeps else [])))
            C_in = width
    return blocks


def _build(picks: list[list[str]] | None, num_classes=1000, width_mult=1.0, input_size=224,
           width_stages=WIDTH_STAGES, n_cell_stages=N_CELL_STAGES, stride_stages=STRIDE_STAGES,
           candidates=PROXYLESS_CANDIDATES, first_block=FIRST_BLOCK, last_channel=None,
           dropout=0.0, bn_momentum=0.1, bn_eps=1e-3, text=None) -> Graph:
    blocks = block_choices(width_mult, width_stages, n_cell_stages, stride_stages, candidates,
                           first_block)
    if picks is None:
        picks = [b["choices"] for b in blocks]
    else:
        picks = _check_picks(picks, blocks, text)
    _int("num_classes", num_classes)
    _int("input_size", input_size)
    check_number("proxyless", "dropout", dropout, 0, 1)
    check_number("proxyless", "bn_momentum", bn_momentum, 0, 1)
    check_number("proxyless", "bn_eps", bn_eps, 0, 1)
    if last_channel is None:
        last_channel = make_divisible(1280 * width_mult) if width_mult > 1.0 else 1280
    _int("last_channel", last_channel)
    bn = {"bn_momentum": bn_momentum, "bn_eps": bn_eps}
    g = Graph("layer", name="proxyless")
    g.add_input("x", channels=3, shape=[3, input_size, input_size])
    g.add_node("first_conv", channels=blocks[0]["C_in"])
    g.add_edge("x", "first_conv", "conv_bn_relu6", kernel_size=3, stride=2, **bn)
    prev, op_edges = "first_conv", []
    for b, (block, ops) in enumerate(zip(blocks, picks)):
        args = {"stride": block["stride"], **bn}
        args = {k: v for k, v in args.items() if any(k in resolve_op(op).params for op in ops)}
        out = f"block{b}"
        dst = f"{out}_op" if block["shortcut"] else out
        g.add_node(dst, channels=block["C_out"])
        g.add_edge(prev, dst, ops, **args)
        if block["shortcut"]:
            g.add_node(out, channels=block["C_out"])
            g.add_edge(dst, out, "identity")
            g.add_edge(prev, out, "identity")
        op_edges.append([prev, dst])
        prev = out
    g.add_node("feature_mix", channels=last_channel)
    g.add_edge(prev, "feature_mix", "conv_bn_relu6", kernel_size=1, **bn)
    g.add_node("pool")
    g.add_edge("feature_mix", "pool", "global_avg_pool")
    prev = "pool"
    if dropout:
        g.add_node("dropout")
        g.add_edge("pool", "dropout", "dropout", p=dropout)
        prev = "dropout"
    g.add_node("logits", channels=num_classes)
    g.add_edge(prev, "logits", "linear")
    g.set_outputs(["logits"])
    g.set_meta(space="proxyless")
    # ProxylessNAS keeps every block and takes the most likely op, 'none' (Zero) included.
    g.set_meta(constraints={"": {"max_inputs": None, "exclude": []}})
    g.set_meta(blocks=op_edges)
    return g


def _check_picks(picks, blocks, text):
    if len(picks) != len(blocks):
        raise GenotypeError(
            f"proxyless: {text!r:.80} names {len(picks)} op(s) but this configuration has "
            f"{len(blocks)} blocks (first block included); give one op per block"
        )
    for b, ((op,), block) in enumerate(zip(picks, blocks)):
        if op not in block["choices"]:
            shape = f"stride {block['stride']}, {block['C_in']} -> {block['C_out']} channels"
            raise GenotypeError(
                f"proxyless: block {b} ({shape}): op {op!r} is not a choice of this block; "
                f"accepted: {block['choices']}"
            )
    return picks


def proxyless(num_classes: int = 1000, width_mult: float = 1.0, input_size: int = 224,
              width_stages=WIDTH_STAGES, n_cell_stages=N_CELL_STAGES,
              stride_stages=STRIDE_STAGES, candidates=PROXYLESS_CANDIDATES,
              first_block: str = FIRST_BLOCK, last_channel: int | None = None,
              dropout: float = 0.0, bn_momentum: float = 0.1, bn_eps: float = 1e-3) -> Graph:
    """The ProxylessNAS chain super-network: one gate per searched block.

    ``last_channel`` overrides the feature-mix width (default 1280, scaled when
    ``width_mult > 1`` as in the reference); ``input_size`` is recorded on the input node.
    """
    return _build(None, num_classes, width_mult, input_size, width_stages, n_cell_stages,
                  stride_stages, candidates, first_block, last_channel, dropout, bn_momentum,
                  bn_eps)


def decode(text: str, **kwargs) -> Graph:
    """The chain network whose blocks run the ops of ``text`` (one per block, commas).

    ``kwargs`` are those of :func:`proxyless` and must describe the same configuration.
    """
    if not isinstance(text, str) or not text.strip():
        raise GenotypeError(f"proxyless: expected a comma-separated op list, got {text!r:.80}")
    accepted = list(inspect.signature(proxyless).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(f"proxyless: decode does not take {unknown}; it takes {accepted}")
    picks = [[token.strip()] for token in text.split(",")]
    return _build(picks, text=text, **kwargs)


def encode(graph: Graph) -> str:
    """The text form of a discretized chain: one op name per block."""
    edges = graph.meta.get("blocks")
    if not edges:
        raise GenotypeError(f"{graph.name}: no block list in graph.meta; encode graphs made "
                            "by proxyless() or decode()")
    names = []
    for b, (u, v) in enumerate(edges):
        if u not in graph or v not in graph or not graph.nx.has_edge(u, v):
            raise GenotypeError(f"{graph.name}: block {b}: its op edge {u}->{v} is gone")
        ops = graph.edge(u, v)["ops"]
        if len(ops) != 1:
            raise GenotypeError(
                f"{graph.name}: block {b} (edge {u}->{v}) still has {len(ops)} candidate ops "
                f"{ops}; discretize the graph first (one op per block)"
            )
        names.append(ops[0])
    return ",".join(names)


def _example() -> Example:
    """A small instance for the registry-wide tests: one block per stage, 32x32 inputs."""
    return Example({"num_classes": 3, "width_mult": 0.25, "input_size": 32,
                    "n_cell_stages": (1, 2, 1, 1, 1, 1), "last_channel": 16},
                   lambda graph: ((torch.randn(2, 3, 32, 32),), {}))


register_space("proxyless", encode=encode, decode=decode, example=_example)(proxyless)
