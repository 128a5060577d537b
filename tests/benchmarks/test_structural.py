"""The shared protocol of the structural benchmarks (benchmarks/structural_common.py) and
one smoke run of benchmarks/structural_neuron.py."""

import doctest
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import structural_common as common
import structural_neuron as neuron


def test_the_examples_of_the_protocol_run():
    result = doctest.testmod(common, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("weights", [750, 1500, 3000, 9999])
def test_dense_same_size_is_the_nearest_width(weights):
    sizes = common.dense_same_size([40, 100, 100, 10], weights)
    h = sizes[1]
    def count(w):
        return 50 * w + w * w

    assert sizes == [40, h, h, 10]
    assert abs(count(h) - weights) <= min(abs(count(h - 1) - weights),
                                          abs(count(h + 1) - weights))


def test_methods_end_at_their_exact_weight_count():
    recipe = common.quick(steps=20)
    r = neuron.run_task(("digits", "SET (ERK)", 0.9, 0, recipe, 5))
    assert r["weights"] == 17400 - round(0.9 * 17400)
    assert r["params"] == r["weights"] + 210 and 0.0 <= r["acc"] <= 1.0
    data = common.load_data("digits")
    g, _ = neuron.m_one_shot(neuron.Run(data, 0.8, 0, recipe, 5))
    assert common.weight_count(g) == sum(n - round(0.8 * n) for n in (6400, 10000, 1000))


def test_bad_choices_are_refused():
    with pytest.raises(common.ConfigError, match="'cifar' is not 'mnist1d' or 'digits'"):
        common.load_data("cifar")
    with pytest.raises(common.ConfigError, match="distribution is 'uniform' or 'erk'"):
        common.build([4, 3], 0.5, "normal")
    with pytest.raises(SystemExit):
        neuron.main(["--methods", "SNAP", "--quick"])
