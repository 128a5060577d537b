"""The DARTS CNN search space (Liu et al., "DARTS: Differentiable Architecture Search",
ICLR 2019), its genotypes and its evaluation network, built with the public graph API.

* spaces ``"darts"`` (images) and ``"darts1d"`` (sequences, e.g. MNIST-1D): the search
  super-network as a graph (:mod:`.search`), with genotype text as its ``encode`` /
  ``decode``;
* :func:`network` / :func:`network1d` / :func:`network_imagenet`: the evaluation network
  of a genotype (DARTS ``NetworkCIFAR`` / ``NetworkImageNet``), exactly the reference's
  modules and parameter count;
* :func:`parse_genotype`, :class:`Genotype`: the DARTS genotype text (and FairDARTS'
  ``(op, node, input)`` form), read without ``eval`` and written back exactly;
* :data:`PUBLISHED`: published cells (NASNet, AmoebaNet, DARTS, ENAS, PC-DARTS, P-DARTS,
  GDAS, SNAS, SGAS, FairDARTS), each from its authors' file.

See ``docs/spaces.md`` for how graphs map to the reference modules.
"""

from search_spaces.darts.cells import cell_network, cell_pairs, genotype_cell, search_cell
from search_spaces.darts.genotype import CELL_OPS, PRIMITIVES, Genotype, parse_genotype
from search_spaces.darts.network import (
    network,
    network1d,
    network_graph,
    network_imagenet,
    resolve_genotype,
)
from search_spaces.darts.published import PUBLISHED
from search_spaces.darts.search import CONSTRAINTS, darts, darts1d, decode_genotype, encode_genotype

__all__ = [
    "Genotype",
    "parse_genotype",
    "PRIMITIVES",
    "CELL_OPS",
    "PUBLISHED",
    "CONSTRAINTS",
    "darts",
    "darts1d",
    "encode_genotype",
    "decode_genotype",
    "network",
    "network1d",
    "network_imagenet",
    "network_graph",
    "resolve_genotype",
    "search_cell",
    "genotype_cell",
    "cell_pairs",
    "cell_network",
]
