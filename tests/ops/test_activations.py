"""Activation names resolve to elementwise functions, with the list of choices on a miss."""

import pytest
import torch

from supernet.errors import UnknownNameError
from supernet.ops.activations import ACTIVATIONS, register_activation, resolve_activation


def test_resolve_and_register():
    assert resolve_activation("tanh") is torch.tanh
    with pytest.raises(UnknownNameError, match="unknown activation 'tahn'.*Did you mean 'tanh'"):
        resolve_activation("tahn")
    register_activation("square_test", lambda x: x * x)
    try:
        assert resolve_activation("square_test")(torch.tensor(3.0)) == 9.0
    finally:
        del ACTIVATIONS["square_test"]
