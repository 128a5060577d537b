"""Activation names resolve to elementwise functions, with the list of choices on a miss; every
registered activation maps a tensor to a same-shape tensor, unit by unit."""

import pytest
import torch

from supernet.errors import DuplicateNameError, UnknownNameError
from supernet.ops.activations import ACTIVATIONS, register_activation, resolve_activation


def test_resolve_and_register():
    assert resolve_activation("tanh") is torch.tanh
    with pytest.raises(UnknownNameError,
                       match="could not resolve activation 'tahn'.*did you mean 'tanh'"):
        resolve_activation("tahn")
    register_activation("square_test", lambda x: x * x)
    try:
        assert resolve_activation("square_test")(torch.tensor(3.0)) == 9.0
    finally:
        del ACTIVATIONS["square_test"]
    assert "square_test" not in ACTIVATIONS


@pytest.mark.parametrize("name", ACTIVATIONS.list())
def test_every_activation_maps_a_tensor_to_a_same_shape_tensor_unit_by_unit(name):
    fn = resolve_activation(name)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    y = fn(x)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    # elementwise: one unit does not see another (up to the rounding of vectorized kernels)
    assert torch.allclose(fn(x[:, :2]), y[:, :2], rtol=1e-6, atol=1e-7)
    assert torch.allclose(fn(x.flip(1)), y.flip(1), rtol=1e-6, atol=1e-7)


def test_a_duplicate_is_refused_and_override_replaces():
    relu = ACTIVATIONS["relu"]
    with pytest.raises(DuplicateNameError, match="activation 'relu' is registered already; "
                                                 "pass override=True"):
        register_activation("relu", torch.tanh)
    assert resolve_activation("relu") is relu
    try:
        register_activation("relu", torch.tanh, override=True)
        assert resolve_activation("relu") is torch.tanh
    finally:
        register_activation("relu", relu, override=True)


def test_an_unknown_activation_names_where_and_how_to_add_one():
    with pytest.raises(UnknownNameError,
                       match=r"g: node 'h': could not resolve activation 'swish' among \[.*'relu'"
                             r".*\]; register one with supernet.ops.activations"
                             r".register_activation\(name, fn\)"):
        resolve_activation("swish", "g: node 'h'")
    with pytest.raises(UnknownNameError, match=r"could not resolve activation \['relu'\]"):
        resolve_activation(["relu"])
