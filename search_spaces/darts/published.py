"""Published cells in the DARTS genotype form, each taken from its authors' own file.

``PUBLISHED[name]`` is a dict with ``genotype`` (text in the DARTS form, or the FairDARTS
``(op, node, input)`` form, concat written as its source writes it), ``source`` (the paper,
then the repository and file the genotype is copied from, with its name there) and, where
the authors report one for CIFAR-10 (C=36, 20 cells), ``params_m``: millions of parameters
of the evaluation network, auxiliary head excluded unless ``params_aux`` is true, rounded
to the digits given (``params_round="down"``: truncated, as the FairDARTS README does).

Where the authors' code is not in the DARTS form the source says how it was read: NASNet-A
and AmoebaNet-A (TensorFlow releases) are the transcriptions of the DARTS authors'
``cnn/genotypes.py``; ENAS is its authors' final micro architecture (a ``fixed_arc`` string
of ``(input, op)`` per node) decoded. Their papers' parameter counts are of their own
networks (NASNet 3.3M, AmoebaNet 3.2M, ENAS 4.6M), not of the DARTS network, so none is
pinned; nor is DARTS first order's (the paper lists 3.3M for both orders, its network
counts 3,169,414). SNAS' mild cell counts 2,661,382 in the DARTS network where the paper
lists 2.9M, so it is not pinned either; its moderate cell (the paper's SNAS, 2.8M) counts
2,847,358. ``SNAS`` is the moderate cell under the name the paper gives its result.

Examples:
    >>> from search_spaces.darts import PUBLISHED, network
    >>> sorted(PUBLISHED)[:3]
    ['AmoebaNet', 'DARTS_V1', 'DARTS_V2']
    >>> PUBLISHED["PC_DARTS"]["params_m"]
    3.63
    >>> "AutoDL-Projects xautodl/nas_infer_model/DXYs/genotypes.py" in PUBLISHED["GDAS"]["source"]
    True
"""

from __future__ import annotations

__all__ = ["PUBLISHED"]


def _g(normal, normal_concat, reduce, reduce_concat) -> str:
    return (f"Genotype(normal={normal}, normal_concat={normal_concat}, reduce={reduce}, "
            f"reduce_concat={reduce_concat})")


PUBLISHED: dict[str, dict] = {
    "NASNet": dict(
        source="Zoph et al., CVPR 2018 (NASNet-A), as transcribed in quark0/darts "
               "cnn/genotypes.py (NASNet)",
        genotype=_g(
            "[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 0), ('sep_conv_3x3', 0), "
            "('avg_pool_3x3', 1), ('skip_connect', 0), ('avg_pool_3x3', 0), ('avg_pool_3x3', 0), "
            "('sep_conv_3x3', 1), ('skip_connect', 1)]", "[2, 3, 4, 5, 6]",
            "[('sep_conv_5x5', 1), ('sep_conv_7x7', 0), ('max_pool_3x3', 1), ('sep_conv_7x7', 0), "
            "('avg_pool_3x3', 1), ('sep_conv_5x5', 0), ('skip_connect', 3), ('avg_pool_3x3', 2), "
            "('sep_conv_3x3', 2), ('max_pool_3x3', 1)]", "[4, 5, 6]"),
    ),
    "AmoebaNet": dict(
        source="Real et al., AAAI 2019 (AmoebaNet-A), as transcribed in quark0/darts "
               "cnn/genotypes.py (AmoebaNet)",
        genotype=_g(
            "[('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), "
            "('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1), "
            "('skip_connect', 0), ('avg_pool_3x3', 1)]", "[4, 5, 6]",
            "[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2), "
            "('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), "
            "('conv_7x1_1x7', 0), ('sep_conv_3x3', 5)]", "[3, 4, 6]"),
    ),
    "DARTS_V1": dict(
        source="Liu et al., ICLR 2019, first order; quark0/darts cnn/genotypes.py (DARTS_V1)",
        genotype=_g(
            "[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)]",
            "[2, 3, 4, 5]",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
            "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)]",
            "[2, 3, 4, 5]"),
    ),
    "DARTS_V2": dict(
        source="Liu et al., ICLR 2019, second order; quark0/darts cnn/genotypes.py (DARTS_V2)",
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
        source="Pham et al., ICML 2018; melodyguan/enas scripts/cifar10_micro_final.sh "
               "(fixed_arc, decoded: ops 0-4 are sep_conv_3x3, sep_conv_5x5, avg_pool_3x3, "
               "max_pool_3x3, skip_connect; the concat is the nodes no node reads)",
        genotype=_g(
            "[('avg_pool_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_5x5', 0), "
            "('skip_connect', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), "
            "('avg_pool_3x3', 0), ('sep_conv_5x5', 1)]", "[2, 3, 4, 5, 6]",
            "[('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('avg_pool_3x3', 0), "
            "('sep_conv_5x5', 1), ('sep_conv_5x5', 3), ('sep_conv_3x3', 1), ('skip_connect', 0), "
            "('max_pool_3x3', 0), ('sep_conv_5x5', 1)]", "[2, 4, 5, 6]"),
    ),
    "PC_DARTS": dict(
        source="Xu et al., ICLR 2020; yuhuixu1993/PC-DARTS genotypes.py (PC_DARTS_cifar)",
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
        source="Chen et al., ICCV 2019; chenxin061/pdarts genotypes.py (PDARTS)",
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
        source="Dong & Yang, CVPR 2019; D-X-Y/AutoDL-Projects "
               "xautodl/nas_infer_model/DXYs/genotypes.py (GDAS_V1, pairs of each step in order)",
        params_m=3.4,
        genotype=_g(
            "[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_5x5', 2), "
            "('sep_conv_3x3', 3), ('skip_connect', 0), ('sep_conv_5x5', 4), ('sep_conv_3x3', 3)]",
            "[2, 3, 4, 5]",
            "[('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), ('sep_conv_5x5', 1), "
            "('dil_conv_5x5', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)]",
            "[2, 3, 4, 5]"),
    ),
    "SNAS_mild": dict(
        source="Xie et al., ICLR 2019 (mild resource constraint); SNAS-Series/SNAS-Series "
               "SNAS/genotypes.py (SNAS_mild)",
        genotype=_g(
            "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 1), "
            "('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('sep_conv_3x3', 1)]",
            "range(2, 6)",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('dil_conv_5x5', 2)]",
            "range(2, 6)"),
    ),
    "SNAS_moderate": dict(
        source="Xie et al., ICLR 2019 (moderate resource constraint, the paper's SNAS cell); "
               "SNAS-Series/SNAS-Series SNAS/genotypes.py (SNAS_moderate)",
        params_m=2.8,
        genotype=_g(
            "[('dil_conv_5x5', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('skip_connect', 1), "
            "('skip_connect', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 1)]",
            "range(2, 6)",
            "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_5x5', 0), ('dil_conv_5x5', 1), "
            "('sep_conv_5x5', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 1)]",
            "range(2, 6)"),
    ),
    "FairDARTS_a": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_a; README table)",
        params_aux=True, params_round="down",
        params_m=2.83,
        genotype=_g(
            "[('sep_conv_3x3', 2, 0), ('sep_conv_5x5', 2, 1), ('max_pool_3x3', 4, 0), "
            "('sep_conv_3x3', 5, 0)]",
            "range(2, 6)",
            "[('max_pool_3x3', 2, 0), ('avg_pool_3x3', 2, 1), ('avg_pool_3x3', 3, 0), "
            "('dil_conv_5x5', 3, 1), ('avg_pool_3x3', 4, 0), ('sep_conv_5x5', 4, 1), "
            "('skip_connect', 5, 0), ('skip_connect', 5, 1)]",
            "range(2, 6)"),
    ),
    "FairDARTS_b": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_b; README table)",
        params_aux=True, params_round="down",
        params_m=3.88,
        genotype=_g(
            "[('sep_conv_3x3', 2, 0), ('sep_conv_3x3', 2, 1), ('sep_conv_3x3', 3, 1), "
            "('dil_conv_3x3', 4, 0), ('sep_conv_5x5', 4, 1), ('dil_conv_5x5', 5, 1)]",
            "range(2, 6)",
            "[('skip_connect', 2, 0), ('dil_conv_3x3', 2, 1), ('skip_connect', 3, 0), "
            "('dil_conv_3x3', 3, 1), ('max_pool_3x3', 4, 0), ('sep_conv_3x3', 4, 1), "
            "('skip_connect', 5, 2), ('max_pool_3x3', 5, 0)]",
            "range(2, 6)"),
    ),
    "FairDARTS_c": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_c; README table, which counts this one without the auxiliary head)",
        params_round="down",
        params_m=2.59,
        genotype=_g(
            "[('max_pool_3x3', 2, 0), ('sep_conv_5x5', 2, 1), ('dil_conv_3x3', 4, 0), "
            "('dil_conv_5x5', 4, 2), ('skip_connect', 5, 3), ('sep_conv_3x3', 5, 0)]",
            "range(2, 6)",
            "[('dil_conv_3x3', 2, 1), ('dil_conv_5x5', 2, 0), ('dil_conv_3x3', 3, 0), "
            "('sep_conv_3x3', 3, 1), ('sep_conv_5x5', 4, 0), ('sep_conv_5x5', 4, 3), "
            "('sep_conv_5x5', 5, 0), ('skip_connect', 5, 1)]",
            "range(2, 6)"),
    ),
    "FairDARTS_d": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_d; README table)",
        params_aux=True, params_round="down",
        params_m=3.84,
        genotype=_g(
            "[('sep_conv_3x3', 2, 0), ('sep_conv_5x5', 2, 1), ('dil_conv_3x3', 3, 1), "
            "('max_pool_3x3', 3, 0), ('dil_conv_3x3', 4, 0), ('dil_conv_3x3', 4, 1), "
            "('sep_conv_3x3', 5, 0), ('dil_conv_5x5', 5, 1)]",
            "range(2, 6)",
            "[('max_pool_3x3', 2, 0), ('sep_conv_5x5', 2, 1), ('avg_pool_3x3', 3, 0), "
            "('dil_conv_5x5', 3, 2), ('dil_conv_3x3', 4, 3), ('avg_pool_3x3', 4, 0), "
            "('avg_pool_3x3', 5, 0), ('skip_connect', 5, 3)]",
            "range(2, 6)"),
    ),
    "FairDARTS_e": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_e; README table)",
        params_aux=True, params_round="down",
        params_m=3.12,
        genotype=_g(
            "[('sep_conv_3x3', 2, 0), ('sep_conv_3x3', 2, 1), ('dil_conv_3x3', 4, 1), "
            "('dil_conv_3x3', 4, 2), ('dil_conv_3x3', 5, 0), ('dil_conv_5x5', 5, 1)]",
            "range(2, 6)",
            "[('max_pool_3x3', 2, 1), ('max_pool_3x3', 2, 0), ('max_pool_3x3', 3, 1), "
            "('max_pool_3x3', 3, 0), ('sep_conv_5x5', 4, 1), ('max_pool_3x3', 4, 0), "
            "('avg_pool_3x3', 5, 0), ('dil_conv_5x5', 5, 1)]",
            "range(2, 6)"),
    ),
    "FairDARTS_f": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_f; README table)",
        params_aux=True, params_round="down",
        params_m=3.62,
        genotype=_g(
            "[('max_pool_3x3', 2, 0), ('sep_conv_3x3', 2, 1), ('dil_conv_3x3', 3, 1), "
            "('sep_conv_5x5', 4, 1), ('sep_conv_3x3', 5, 0), ('sep_conv_3x3', 5, 1)]",
            "range(2, 6)",
            "[('max_pool_3x3', 2, 0), ('max_pool_3x3', 2, 1), ('max_pool_3x3', 3, 0), "
            "('dil_conv_3x3', 3, 1), ('dil_conv_3x3', 4, 2), ('max_pool_3x3', 4, 0), "
            "('max_pool_3x3', 5, 0), ('sep_conv_3x3', 5, 1)]",
            "range(2, 6)"),
    ),
    "FairDARTS_g": dict(
        source="Chu et al., ECCV 2020; xiaomi-automl/FairDARTS fairdarts/genotypes.py "
               "(FairDARTS_g; README table)",
        params_aux=True, params_round="down",
        params_m=3.375,
        genotype=_g(
            "[('sep_conv_3x3', 2, 0), ('sep_conv_3x3', 2, 1), ('skip_connect', 4, 3), "
            "('sep_conv_5x5', 4, 1), ('dil_conv_3x3', 5, 0), ('sep_conv_3x3', 5, 1)]",
            "range(2, 6)",
            "[('avg_pool_3x3', 2, 1), ('skip_connect', 2, 0), ('skip_connect', 3, 2), "
            "('max_pool_3x3', 3, 1), ('sep_conv_5x5', 4, 3), ('max_pool_3x3', 4, 0), "
            "('dil_conv_3x3', 5, 1), ('dil_conv_3x3', 5, 4)]",
            "range(2, 6)"),
    ),
    "SGAS_Cri1": dict(
        source="Li et al., CVPR 2020 (criterion 1); lightaime/sgas cnn/genotypes.py "
               "(Cri1_CIFAR_Best = Cri1_CIFAR_3)",
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
        source="Li et al., CVPR 2020 (criterion 2); lightaime/sgas cnn/genotypes.py "
               "(Cri2_CIFAR_Best = Cri2_CIFAR_3)",
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

#: The paper's SNAS result is the moderate cell.
PUBLISHED["SNAS"] = dict(PUBLISHED["SNAS_moderate"],
                         source="the moderate cell, as SNAS_moderate: "
                                + PUBLISHED["SNAS_moderate"]["source"])
