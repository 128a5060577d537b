"""Shared test set-up: one torch thread (small steps are far slower with two threads when the
other core is busy), deterministic seeds."""

import os
import random
import sys

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

# Helpers shared by test files in several folders (oracles, small graphs and data).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def searched():
    """A small DARTS-like graph after a short search, and its discretized module (one per
    test module: tests may train it further)."""
    from search_graphs import darts_like, data, small_config

    from supernet.search import search

    torch.manual_seed(0)
    g = darts_like()
    r = search(g, data(), config=small_config())
    return g, r.module.eval()
