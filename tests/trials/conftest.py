import pytest
from trial_helpers import tiny_gnn


@pytest.fixture(scope="session")
def gnn2():
    """The 18-choice GNN super-network of two computing nodes over gcn, gin, linear."""
    return tiny_gnn()
