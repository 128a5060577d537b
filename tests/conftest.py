"""Shared test set-up: one torch thread (small steps are far slower with two threads when the
other core is busy), deterministic seeds."""

import random

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
