"""The DARTS evaluation network of a genotype (DARTS ``model.NetworkCIFAR``), as a graph.

:func:`network` builds the graph of :func:`network_graph` and compiles it. The module is the
reference network: the same modules (the ops of every state, even those outside the
concat; the auxiliary head), the same parameter count (3,349,342 for DARTS_V2 at C=36, 20
cells, 10 classes) and parameters and buffers in the reference's order, so a reference
``state_dict`` loads by position.

Forward returns the logits ``(N, num_classes)``; with ``auxiliary=True`` it returns
``(logits, logits_aux)`` as the reference does, ``logits_aux`` being ``None`` in eval mode
(the head is a ``train_only`` node reading cell ``2 * layers // 3``). ``net.drop_path_prob``
(0 by default) drops whole samples of the output of every op but the identity, in training
only, as the reference.

One difference, in training only and below 4 cells: there the head reads the last cell,
and the reference head's first ReLU, in place, also rectifies what the reference's
classifier reads; here the classifier reads the cell's output as it is. (From 4 cells on,
the cell it reads feeds only cells that start with a ReLU, and both agree.)

Examples:
    >>> import torch
    >>> from search_spaces.darts import network
    >>> net = network("DARTS_V2")
    >>> sum(p.numel() for p in net.parameters())
    3349342
    >>> small = network("DARTS_V2", C=8, layers=5, auxiliary=True).eval()
    >>> logits, aux = small(torch.randn(2, 3, 32, 32))
    >>> logits.shape, aux
    (torch.Size([2, 10]), None)
"""

from __future__ import annotations

import torch.nn as nn

import supernet
from search_spaces.darts.cells import MAX_LAYERS, MAX_STEPS, cell_network, genotype_cells
from search_spaces.darts.genotype import Genotype, parse_genotype
from search_spaces.darts.published import PUBLISHED
from supernet import Graph
from supernet.errors import ConfigError
from supernet.spaces import MAX_SIZE, check_size

__all__ = ["network", "network1d", "network_imagenet", "network_graph", "resolve_genotype"]


def resolve_genotype(genotype: "str | Genotype") -> Genotype:
    """A :class:`Genotype` from its text, or from the name of a published one
    (``"DARTS_V2"``; see :data:`search_spaces.darts.PUBLISHED`)."""
    if isinstance(genotype, str) and genotype.strip() in PUBLISHED:
        genotype = PUBLISHED[genotype.strip()]["genotype"]
    return parse_genotype(genotype)


def network_graph(genotype: "str | Genotype", C: int = 36, layers: int = 20,
                  num_classes: int = 10, auxiliary: bool = False, in_channels: int = 3,
                  dim: int = 2, stem_multiplier: int = 3, space: str = "darts",
                  imagenet: bool = False) -> Graph:
    """The graph of the evaluation network of ``genotype`` (see :func:`network`;
    ``imagenet``: see :func:`network_imagenet`)."""
    g = resolve_genotype(genotype)
    for key, value, hi in (("C", C, MAX_SIZE), ("layers", layers, MAX_LAYERS),
                           ("num_classes", num_classes, MAX_SIZE),
                           ("in_channels", in_channels, MAX_SIZE),
                           ("stem_multiplier", stem_multiplier, MAX_STEPS)):
        check_size("network", key, value, 1, hi)
    cells = genotype_cells(g, dim, affine=True, pool_bn=False, drop_path=True)
    if imagenet and (dim != 2 or C % 2):
        raise ConfigError(f"network: the ImageNet network takes images (dim=2) and an even "
                          f"C (its first stem has C // 2 channels), got dim={dim}, C={C}")
    graph = cell_network(f"{space}_{'imagenet_' if imagenet else ''}network", cells, C, layers,
                         stem_multiplier, num_classes, in_channels, dim, auxiliary=auxiliary,
                         imagenet=imagenet)
    graph.set_meta(space=space)
    if g.form == "fair":
        graph.set_meta(genotype="fair")  # encode writes it back in the FairDARTS form
    return graph


def _compile(graph: Graph, genotype) -> nn.Module:
    net = supernet.compile(graph)
    net.genotype = str(resolve_genotype(genotype))
    return net


def network(genotype: str, C: int = 36, layers: int = 20, num_classes: int = 10,
            auxiliary: bool = False) -> nn.Module:
    """The DARTS evaluation network (``NetworkCIFAR``) of ``genotype``, compiled.

    Args:
        genotype: genotype text (DARTS form) or the name of a published genotype.
        C: channels of the first cells (36 in DARTS).
        layers: number of cells (20 in DARTS).
        num_classes: classes of the classifier.
        auxiliary: add the auxiliary head on the output of cell ``2 * layers // 3``.

    Returns:
        A compiled :class:`supernet.GraphModule` (its graph is ``net.graph``, its genotype
        text ``net.genotype``); forward returns logits, or ``(logits, logits_aux)`` with
        ``auxiliary=True``.

    Raises:
        GenotypeError: the genotype is malformed, names an unknown op or an impossible cell.
    """
    return _compile(network_graph(genotype, C, layers, num_classes, auxiliary), genotype)


def network_imagenet(genotype: str, C: int = 48, layers: int = 14, num_classes: int = 1000,
                     auxiliary: bool = False) -> nn.Module:
    """The DARTS ImageNet network (``NetworkImageNet``, the mobile setting) of ``genotype``.

    As :func:`network`, with the reference's ImageNet stems (3x3 conv-BN at stride 2 to
    ``C // 2``, ReLU-conv-BN at stride 2 to ``C``, then ReLU-conv-BN at stride 2: the first
    cell sees 28x28 and 56x56 inputs of a 224x224 image), a 7x7 average pooling and the
    ImageNet auxiliary head (on the 7x7 output of cell ``2 * layers // 3``). DARTS_V2 at the
    defaults: 4,718,752 parameters (the paper's "4.7 M") and 529,911,552 multiply-accumulates
    of its convolutions and classifier on 224x224 inputs (:func:`supernet.cost.layer.graph_cost`;
    the paper lists 574 M, counted by its own script).
    """
    graph = network_graph(genotype, C, layers, num_classes, auxiliary, imagenet=True)
    return _compile(graph, genotype)


def network1d(genotype: str, C: int = 16, layers: int = 5, num_classes: int = 10,
              in_channels: int = 1, auxiliary: bool = False, stem_multiplier: int = 3
              ) -> nn.Module:
    """The 1-D evaluation network of ``genotype`` (sequences such as MNIST-1D, length 40).

    As :func:`network` with 1-D convolutions, pooling and batch norm. The auxiliary head
    expects a length of 8 to 10 at cell ``2 * layers // 3`` (length 40 after two
    reductions gives 10).
    """
    graph = network_graph(genotype, C, layers, num_classes, auxiliary, in_channels, dim=1,
                          stem_multiplier=stem_multiplier, space="darts1d")
    return _compile(graph, genotype)
