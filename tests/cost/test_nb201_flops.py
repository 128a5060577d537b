"""NAS-Bench-201's FLOPs convention: ``cost(g, convention="nas-bench-201")``.

The benchmark's figures come from AutoDL-Projects' ``get_model_infos`` (``utils/
flop_benchmark.py``). Its rules, which the expected numbers below are worked out from by
hand: per sample, a ``Conv2d`` counts ``k_h * k_w * C_in * C_out / groups`` per output
position plus ``C_out`` per position when it has a bias; a ``Linear`` counts
``in * out`` plus ``out`` for its bias; pooling is hooked but left out of the sum; batch
norm, ReLU and adaptive pooling are not counted. The figure is divided by ``1e6``.

The evaluation network (``TinyNetwork``, C=16, N=5, CIFAR-10: 32x32, 10 classes) has
affine batch norms, hence no conv biases. Its fixed part:

* stem, 3x3 conv 3 -> 16 at 32x32: ``9 * 3 * 16 * 1024 = 442,368``;
* each residual block (stride 2; 16 -> 32 at 16x16, then 32 -> 64 at 8x8):
  ``conv_a 9 * C * 2C * HW + conv_b 9 * 2C * 2C * HW + 1x1 downsample C * 2C * HW``
  with ``HW`` the output size: ``1,179,648 + 2,359,296 + 131,072 = 3,670,016`` for both
  (the 2x2 average pooling before the 1x1 conv is not counted);
* classifier 64 -> 10 with bias: ``640 + 10 = 650``;
* fixed total ``442,368 + 2 * 3,670,016 + 650 = 7,783,050``.

Per cell edge, summed over the 5 cells of each of the 3 stages (C * HW is the same
16 * 1024 = 32 * 256 = 64 * 64 in all three): ``nor_conv_3x3``
``15 * 9 * C^2 * HW = 15 * 2,359,296 = 35,389,440``; ``nor_conv_1x1``
``15 * 262,144 = 3,932,160``; ``avg_pool_3x3``, ``skip_connect``, ``none``: 0.
"""

import math

import pytest
import torch
import torch.nn as nn

from search_spaces import nasbench201 as nb
from supernet.cost import CONVENTIONS, cost, counting_convention, module_cost
from supernet.errors import ConfigError
from supernet.ops import build_op

FIXED = 442_368 + 2 * (1_179_648 + 2_359_296 + 131_072) + 650
CONV3, CONV1 = 15 * 2_359_296, 15 * 262_144

ARCHS = {
    # none and skip only: the macro skeleton
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": FIXED,
    "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|skip_connect~2|": FIXED,
    # pooling only: pooling is not in the benchmark's sum
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|"
    "+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|": FIXED,
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|": FIXED + 2 * CONV1,
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|none~1|nor_conv_3x3~2|": FIXED + 3 * CONV3,
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|": FIXED + 6 * CONV3,
}


def test_hand_derived_figures():
    assert FIXED == 7_783_050  # 7.78 MFLOPs, the smallest figure of the benchmark
    assert FIXED + 6 * CONV3 == 220_119_690  # 220.12 MFLOPs, the largest


@pytest.mark.parametrize("arch", list(ARCHS))
def test_eval_network_flops_match_the_benchmark(arch):
    r = cost(nb.decode(arch, C=16, N=5, num_classes=10), (3, 32, 32),
             convention="nas-bench-201")
    assert r.convention == "nas-bench-201"
    mflops, expected = r.total.macs / 1e6, ARCHS[arch] / 1e6
    assert abs(mflops - expected) <= 0.01 * expected
    assert r.total.macs == ARCHS[arch]  # in fact exact


def _hooked_flops(net, shape):
    """The counter's rules applied by forward hooks on the compiled network."""
    total = [0]

    def hook(m, inputs, out):
        per_out = (m.in_features if isinstance(m, nn.Linear)
                   else m.in_channels // m.groups * math.prod(m.kernel_size))
        total[0] += out[0].numel() * (per_out + (m.bias is not None))

    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net.eval()(torch.zeros(1, *shape))
    return total[0]


def test_search_network_counts_conv_biases():
    # affine=False batch norms give every cell conv a bias: per cell edge and cell, one
    # addition per output element of the 1x1 and the 3x3 conv, C * HW = 16,384, 8,192,
    # 4,096 in the three stages; 6 edges, 5 cells per stage.
    g = nb.nasbench201(C=16, N=5, num_classes=10)
    bias_adds = 6 * 5 * 2 * (16_384 + 8_192 + 4_096)
    thop = cost(g, (3, 32, 32))
    assert thop.convention == "thop"
    assert thop.total.macs == FIXED - 10 + 6 * (CONV3 + CONV1)
    bench = cost(g, (3, 32, 32), convention="nas-bench-201")
    assert bench.total.macs == FIXED + 6 * (CONV3 + CONV1) + bias_adds
    assert bench.total.pool == thop.total.pool and bench.total.bn == thop.total.bn


def test_matches_the_rules_run_on_the_compiled_network():
    arch = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    g = nb.decode(arch, C=4, N=1, num_classes=3)
    hooked = _hooked_flops(nb.network(arch, C=4, N=1, num_classes=3), (3, 16, 16))
    assert cost(g, (3, 16, 16), convention="nas-bench-201").total.macs == hooked
    assert cost(g, (3, 16, 16)).total.macs == hooked - 3  # thop leaves the bias out


def test_convention_in_force_reaches_nested_rules():
    op = build_op("nor_conv_3x3", 4, 4, {"affine": False})
    assert module_cost(op, (4, 8, 8))[1].macs == 9 * 16 * 64
    with counting_convention("nas-bench-201"):
        assert module_cost(op, (4, 8, 8))[1].macs == 9 * 16 * 64 + 4 * 64
    assert module_cost(op, (4, 8, 8), convention="nas-bench-201")[1].macs == 9 * 16 * 64 + 256


def test_unknown_or_unsupported_convention_is_a_config_error():
    g = nb.decode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", C=4, N=1)
    with pytest.raises(ConfigError, match="unknown.*nas-bench-201"):
        cost(g, (3, 8, 8), convention="nb201")
    from supernet.units.build import mlp
    with pytest.raises(ConfigError, match="neuron-level.*'thop'"):
        cost(mlp([4, 3, 2]), convention="nas-bench-201")
    assert set(CONVENTIONS) >= {"thop", "nas-bench-201"}
