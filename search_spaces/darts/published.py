"""Published cells in the DARTS genotype form, with where they come from.

``PUBLISHED[name]`` is a dict with ``genotype`` (text in the DARTS form, concat written as
its source writes it), ``source`` and, where the paper reports them for CIFAR-10 (C=36,
20 cells), ``params_m`` (millions of parameters, auxiliary head excluded).

NASNet-A, AmoebaNet-A, DARTS (first and second order) are those of the DARTS repository's
``cnn/genotypes.py``; ENAS is the ENAS cell as transcribed in DARTS-family code bases; the
others are the cells their papers' code releases list.

Examples:
    >>> from search_spaces.darts import PUBLISHED, network
    >>> sorted(PUBLISHED)[:3]
    ['AmoebaNet', 'DARTS_V1', 'DARTS_V2']
    >>> PUBLISHED["PC_DARTS"]["params_m"]
    3.63
"""

from __future__ import annotations

__all__ = ["PUBLISHED"]


def _g(normal, normal_concat, reduce, reduce_concat) -> str:
    return (f"Genotype(normal={normal}, normal_concat={normal_concat}, reduce={reduce}, "
            f"reduce_concat={reduce_concat})")


PUBLISHED: dict[str, dict] = {
    "NASNet": dict(
        source="Zoph et al., CVPR 2018 (NASNet-A), as in DARTS cnn/genotypes.py",
        genotype=_g(
            "[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), "
            "('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), "
            "('sep_conv_3x3', 1), ('skip_connect', 1)]", "[2, 3, 4, 5, 6]",
            "[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), "
            "('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), "
            "('sep_conv_3x3', 2), ('max_pool_3x3', 1)]", "[4, 5, 6]"),
    ),
    "AmoebaNet": dict(
        source="Real et al., AAAI 2019 (AmoebaNet-A), as in DARTS cnn/genotypes.py",
        genotype=_g(
            "[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), "
            "('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), "
            "('skip_connect', 0), ('avg_pool_3x3', 1)]", "[4, 5, 6]",
            "[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), "
            "('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), "
            "('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)]", "[3, 4, 6]"),
    ),
    "DARTS_V1": dict(
        source="Liu et al., ICLR 2019, first order; DARTS cnn/genotypes.py",
        genotype=_g(
            "[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)]",
            "[2, 3, 4, 5]",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)]",
            "[2, 3, 4, 5]"),
    ),
    "DARTS_V2": dict(
        source="Liu et al., ICLR 2019, second order; DARTS cnn/genotypes.py",
        params_m=3.3,
        genotype=_g(
            "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]",
            "[2, 3, 4, 5]",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)]",
            "[2, 3, 4, 5]"),
    ),
    "ENAS": dict(
        source="Pham et al., ICML 2018, as transcribed in DARTS-family code bases",
        genotype=_g(
            "[('sep_conv_3x3', 1), ('skip_connect', 1), ('sep_conv_5x5', 1), ('skip_connect', 0), "
            "('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), "
            "('sep_conv_5x5', 1), ('avg_pool_3x3', 0)]", "[2, 3, 4, 5, 6]",
            "[('sep_conv_5x5', 0), ('avg_pool_3x3', 1), ('sep_conv_3x3', 1), ('avg_pool_3x3', 1), "
            "('sep_conv_3x3', 1), ('avg_pool_3x3', 1), ('sep_conv_5x5', 4), ('avg_pool_3x3', 1), "
            "('sep_conv_3x3', 5), ('sep_conv_5x5', 0)]", "[2, 3, 6]"),
    ),
    "PC_DARTS": dict(
        source="Xu et al., ICLR 2020 (PC-DARTS, CIFAR-10 cell)",
        params_m=3.63,
        genotype=_g(
            "[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
            "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)]",
            "range(2, 6)",
            "[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), "
            "('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)]",
            "range(2, 6)"),
    ),
    "PDARTS": dict(
        source="Chen et al., ICCV 2019 (P-DARTS, CIFAR-10 cell)",
        params_m=3.4,
        genotype=_g(
            "[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 0), ('dil_conv_5x5', 4)]",
            "range(2, 6)",
            "[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), "
            "('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)]",
            "range(2, 6)"),
    ),
    "GDAS": dict(
        source="Dong & Yang, CVPR 2019 (GDAS, searched cells, DARTS form)",
        genotype=_g(
            "[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_5x5', 2), "
            "('sep_conv_3x3', 3), ('skip_connect', 0), ('sep_conv_5x5', 4), ('sep_conv_3x3', 3)]",
            "[2, 3, 4, 5]",
            "[('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), ('sep_conv_5x5', 1), "
            "('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 2)]",
            "[2, 3, 4, 5]"),
    ),
    "SNAS": dict(
        source="Xie et al., ICLR 2019 (SNAS, mild constraint)",
        genotype=_g(
            "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 1), "
            "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 0), ('sep_conv_3x3', 1)]",
            "[2, 3, 4, 5]",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('dil_conv_5x5', 2)]",
            "[2, 3, 4, 5]"),
    ),
    "SGAS_Cri1": dict(
        source="Li et al., CVPR 2020 (SGAS criterion 1, best CIFAR-10 cell Cri1_CIFAR_3)",
        params_m=3.80,
        genotype=_g(
            "[('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_5x5', 1), ('sep_conv_5x5', 3), ('skip_connect', 0), ('dil_conv_5x5', 2)]",
            "range(2, 6)",
            "[('max_pool_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), "
            "('sep_conv_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 1)]",
            "range(2, 6)"),
    ),
    "SGAS_Cri2": dict(
        source="Li et al., CVPR 2020 (SGAS criterion 2, best CIFAR-10 cell Cri2_CIFAR_3)",
        params_m=4.09,
        genotype=_g(
            "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 2), "
            "('max_pool_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3)]",
            "range(2, 6)",
            "[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('dil_conv_3x3', 0), ('max_pool_3x3', 1), "
            "('max_pool_3x3', 0), ('sep_conv_3x3', 2), ('max_pool_3x3', 0), ('sep_conv_5x5', 2)]",
            "range(2, 6)"),
    ),
}
