"""The DARTS search spaces ``"darts"`` (CIFAR-style images) and ``"darts1d"`` (sequences).

The super-network is DARTS ``model_search.Network``: a conv-BN stem, ``layers`` cells (two
templates, ``"normal"`` and ``"reduce"``, so all normal cells share one set of gates as
DARTS shares ``alphas_normal``), global pooling and a linear classifier. Each cell has
``steps`` intermediate nodes; every earlier state feeds every node through a gate of the
eight DARTS ops (14 gates for 4 steps). Compiled, its weights enumerate in the order of the
reference's parameters, with the same count.

``reduction="frc"`` (``darts`` only) puts GDAS's fixed reduction cell (Dong and Yang, CVPR
2019: "GDAS (FRC)") in place of the searched ``"reduce"`` template
(:func:`~search_spaces.darts.cells.frc_cell`): only the normal cell is searched (14 gates),
``graph.meta["reduction"]`` says so, and :func:`encode` refuses it (a genotype has no text
for a fixed cell).

``graph.meta["constraints"]`` is the discretization contract: per template, each node with
gated in-edges keeps at most ``max_inputs`` in-edges, ranked by their best op outside
``exclude``, and each kept edge keeps that op. :func:`encode` then writes the genotype and
:func:`decode` reads one back (round trips exact).

Examples:
    >>> import torch, supernet
    >>> from search_spaces import create_space, encode, decode
    >>> g = create_space("darts", C=4, layers=3, steps=2, multiplier=2)
    >>> sorted(g.cells), len(g.cells["normal"].gate_edges())
    (['normal', 'reduce'], 5)
    >>> supernet.lint(g)
    >>> net = supernet.compile(g)
    >>> net(torch.randn(2, 3, 8, 8)).shape
    torch.Size([2, 10])
    >>> text = ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 2), "
    ...         "('max_pool_3x3', 0)], normal_concat=range(2, 4), reduce=[('max_pool_3x3', 0), "
    ...         "('max_pool_3x3', 1), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
    ...         "reduce_concat=range(2, 4))")
    >>> d = decode("darts", text, C=4, layers=3)
    >>> encode(d) == text
    True
"""

from __future__ import annotations

import torch

from search_spaces.darts.cells import (
    FAIR,
    FRC_GROUPS,
    MAX_LAYERS,
    MAX_STEPS,
    cell_network,
    cell_pairs,
    cell_triples,
    frc_cell,
    genotype_cells,
    search_cell,
)
from search_spaces.darts.genotype import PRIMITIVES, Genotype, parse_genotype
from supernet import Graph
from supernet.errors import ConfigError, GenotypeError
from supernet.ops import resolve_op
from supernet.spaces import MAX_SIZE, Example, check_names, check_size, register_space

__all__ = ["CONSTRAINTS", "REDUCTIONS", "darts", "darts1d", "decode_genotype", "encode_genotype"]

#: Discretization contract of both cell templates (DARTS ``genotype()``: two inputs per
#: node, ``none`` never chosen).
CONSTRAINTS = {
    "normal": {"max_inputs": 2, "exclude": ["none"]},
    "reduce": {"max_inputs": 2, "exclude": ["none"]},
}


def _check(C, layers, steps, multiplier, stem_multiplier, num_classes, in_channels, dim):
    for key, value, hi in (("C", C, MAX_SIZE), ("layers", layers, MAX_LAYERS),
                           ("steps", steps, MAX_STEPS), ("multiplier", multiplier, MAX_STEPS),
                           ("stem_multiplier", stem_multiplier, MAX_STEPS),
                           ("num_classes", num_classes, MAX_SIZE),
                           ("in_channels", in_channels, MAX_SIZE)):
        check_size("darts", key, value, 1, hi)
    if layers < 3:  # reduction cells sit at layers // 3 and 2 * layers // 3
        raise ConfigError(
            f"darts: layers={layers} makes every cell a reduction cell (at {layers // 3} and "
            f"{2 * layers // 3}), so no normal cell is searched; use layers >= 3"
        )
    if multiplier > steps:
        raise ConfigError(
            f"darts: multiplier={multiplier} concatenates more nodes than the {steps} step(s) "
            "of a cell; use multiplier <= steps"
        )
    if dim not in (1, 2):
        raise ConfigError(f"darts: dim must be 1 (sequences) or 2 (images), got {dim!r}")


#: The reduction cells of the search network: searched as the normal one, or GDAS's FRC.
REDUCTIONS = ("search", "frc")


def _meta(g: Graph, space: str, reduction: str = "search") -> Graph:
    g.set_meta(space=space)
    kinds = [k for k in CONSTRAINTS if reduction == "search" or k != "reduce"]
    g.set_meta(constraints={k: dict(CONSTRAINTS[k], exclude=list(CONSTRAINTS[k]["exclude"]))
                            for k in kinds})
    if reduction != "search":
        g.set_meta(reduction=reduction)
    return g


def _check_reduction(space, reduction, C, dim) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"{space}: reduction={reduction!r} is unknown; use one of "
                          f"{list(REDUCTIONS)}")
    if reduction == "frc":
        if dim != 2:
            raise ConfigError(f"{space}: reduction='frc' is GDAS's 2-D reduction cell (1x3 "
                              f"and 3x1 convolutions); it needs dim=2, got dim={dim}")
        if (2 * C) % FRC_GROUPS:
            raise ConfigError(
                f"{space}: reduction='frc' convolves the {2 * C} channels of the first "
                f"reduction cell (2 C) in {FRC_GROUPS} groups; use C divisible by "
                f"{FRC_GROUPS // 2}, got C={C}")


def build_search(space: str, C, layers, steps, multiplier, stem_multiplier, num_classes,
                 in_channels, ops, dim, reduction: str = "search") -> Graph:
    _check(C, layers, steps, multiplier, stem_multiplier, num_classes, in_channels, dim)
    _check_reduction(space, reduction, C, dim)
    ops = check_names(space, "ops", ops)
    if not ops or len(set(ops)) != len(ops):
        raise ConfigError(f"{space}: ops must be distinct op names, got {ops}")
    for op in ops:
        resolve_op(op, f"{space}: ops")  # unknown names fail here, with the choices
    cells = {kind: search_cell(kind, steps, multiplier, kind == "reduce", ops, dim)
             for kind in ("normal", "reduce")}
    if reduction == "frc":
        cells["reduce"] = frc_cell("reduce")
    g = cell_network(space, cells, C, layers, stem_multiplier, num_classes, in_channels, dim)
    return _meta(g, space, reduction)


def encode_genotype(graph: Graph) -> str:
    """The genotype text of a discretized DARTS graph (search or evaluation network).

    Each node lists its two in-edges in port order; a graph with ``meta["genotype"] ==
    "fair"`` (a FairDARTS discretization, a decoded FairDARTS genotype) is written as
    ``(op, node, input)`` triples, any number per node. Raises :class:`GenotypeError` when a
    template is not discretized.
    """
    if graph.meta.get("reduction") == "frc":
        raise GenotypeError(
            f"graph {graph.name!r} has GDAS's fixed reduction cell (reduction='frc'), which a "
            "DARTS genotype cannot write; save the graph itself (supernet.io) instead")
    missing = [k for k in ("normal", "reduce") if k not in graph.cells]
    if missing:
        raise GenotypeError(
            f"graph {graph.name!r} has no cell template(s) {missing}; a DARTS graph has "
            f"'normal' and 'reduce' (it has {sorted(graph.cells)})"
        )
    read = cell_triples if graph.meta.get("genotype") == FAIR else cell_pairs
    fields = {}
    for kind in ("normal", "reduce"):
        fields[kind], fields[kind + "_concat"] = read(graph.cells[kind])
    return str(Genotype(**fields))


def _decoder(space: str, defaults: dict):
    def decode_genotype(text, C=defaults["C"], layers=defaults["layers"], steps=None,
                        multiplier=None, stem_multiplier=3, num_classes=10,
                        in_channels=defaults["in_channels"], ops=None, dim=defaults["dim"]):
        """The discretized search graph of ``text`` (as the search would leave it).

        ``steps`` and ``multiplier`` follow from the genotype; when given they must agree.
        ``ops`` (the search candidates) does not matter to a discretized graph.
        """
        genotype = parse_genotype(text)
        for key, value in (("steps", steps), ("multiplier", multiplier)):
            for kind in ("normal", "reduce"):
                have = genotype.steps(kind) if key == "steps" else len(genotype.concat(kind))
                if value is not None and value != have:
                    raise GenotypeError(
                        f"genotype {kind}: has {have} {'step' if key == 'steps' else 'concat'}"
                        f"(s), but {key}={value} was asked; drop {key}= or pass {have}"
                    )
        _check(C, layers, genotype.steps("normal"), 1, stem_multiplier, num_classes,
               in_channels, dim)
        cells = genotype_cells(genotype, dim, affine=False, pool_bn=True, drop_path=False)
        g = cell_network(space, cells, C, layers, stem_multiplier, num_classes, in_channels,
                         dim)
        if genotype.form == FAIR:
            g.set_meta(genotype=FAIR)
        return _meta(g, space)

    return decode_genotype


decode_genotype = _decoder("darts", {"C": 16, "layers": 8, "in_channels": 3, "dim": 2})
_decode_1d = _decoder("darts1d", {"C": 8, "layers": 4, "in_channels": 1, "dim": 1})


def _example(dim: int):
    """A small instance for the registry-wide tests: 3 cells of 2 steps, 8x8 inputs."""

    def example():
        def inputs(graph):
            shape = (2, graph.node("x")["channels"]) + (8,) * dim
            return (torch.randn(shape),), {}

        return Example({"C": 4, "layers": 3, "steps": 2, "multiplier": 2, "num_classes": 3},
                       inputs)

    return example


@register_space("darts", encode=encode_genotype, decode=decode_genotype, example=_example(2))
def darts(C: int = 16, layers: int = 8, steps: int = 4, multiplier: int = 4,
          stem_multiplier: int = 3, num_classes: int = 10, in_channels: int = 3,
          ops: list[str] = tuple(PRIMITIVES), dim: int = 2, reduction: str = "search") -> Graph:
    """The DARTS CNN search space (Liu et al., ICLR 2019) for 32x32 images.

    Args:
        C: channels of the first cells (doubled at each reduction cell).
        layers: number of cells; reduction cells at 1/3 and 2/3 of the depth.
        steps: intermediate nodes per cell.
        multiplier: number of last nodes concatenated into the cell output.
        stem_multiplier: the stem outputs ``stem_multiplier * C`` channels.
        ops: candidate ops of every gated edge (default: the eight DARTS ``PRIMITIVES``).
        dim: 2 for images, 1 for sequences.
        reduction: ``"search"`` (a searched reduction cell) or ``"frc"`` (GDAS's fixed
            reduction cell; ``C`` a multiple of 4).
    """
    return build_search("darts", C, layers, steps, multiplier, stem_multiplier, num_classes,
                        in_channels, ops, dim, reduction)


@register_space("darts1d", encode=encode_genotype, decode=_decode_1d, example=_example(1))
def darts1d(C: int = 8, layers: int = 4, steps: int = 4, multiplier: int = 4,
            stem_multiplier: int = 3, num_classes: int = 10, in_channels: int = 1,
            ops: list[str] = tuple(PRIMITIVES), dim: int = 1) -> Graph:
    """The DARTS cell on sequences (1-D convolutions and pooling), sized for MNIST-1D.

    Defaults suit signals of length 40 with one channel and 10 classes: 8 channels and 4
    cells (reductions at cells 1 and 2: lengths 40, 20, 10), the full DARTS cell (4 steps,
    14 gates), so that a search runs in a minute or two on two CPU cores: one first-order
    epoch on MNIST-1D's 4000 training signals (half of them for the architecture, batch 64)
    is 64 steps of a few tenths of a second.
    Arguments as :func:`darts`.
    """
    return build_search("darts1d", C, layers, steps, multiplier, stem_multiplier, num_classes,
                        in_channels, ops, dim)
