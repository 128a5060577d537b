"""The settings of a `supernet search` that runs in seconds: the default darts1d search on
MNIST-1D, shrunk (4 channels, 3 cells, 2 steps a cell, 2 steps an epoch)."""


def tiny_args(samples: int = 300, epochs: int = 1) -> list[str]:
    """``--set`` arguments (and ``--quiet``) for a search of a few seconds."""
    return ["--set", f"search.epochs={epochs}", "--set", "search.max_steps_per_epoch=2",
            "--set", "search.batch_size=16", "--set", "train.epochs=1",
            "--set", "space.C=4", "--set", "space.layers=3", "--set", "space.steps=2",
            "--set", "space.multiplier=2", "--set", f"data.num_samples={samples}", "--quiet"]
