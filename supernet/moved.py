"""Old module paths that still import, with a warning that says where the module lives now.

The package was laid out concept first (every level's compiler in :mod:`supernet.compiler`,
its edits in :mod:`supernet.edits`, ...). Code written against the old paths keeps working:
importing ``supernet.search.rigl`` gives :mod:`supernet.search.creation.rigl` and warns.

Examples:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from supernet.search.rigl import RigL
    >>> RigL.__module__, str(caught[0].message)
    ('supernet.search.creation.rigl', 'supernet.search.rigl moved to supernet.search.creation.rigl')
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["MOVED_MODULES"]

#: Old module path -> where it lives now.
MOVED_MODULES = {
    "supernet.units.module": "supernet.compiler.units",
    "supernet.units.blocks": "supernet.compiler.blocks",
    "supernet.units.kernels": "supernet.compiler.kernels",
    "supernet.units.sync": "supernet.compiler.unit_sync",
    "supernet.units.edits": "supernet.edits.units",
    "supernet.units.lint": "supernet.lint.units",
    "supernet.units.cost": "supernet.cost.units",
    "supernet.units.lower": "supernet.lowering",
    "supernet.units.prune": "supernet.search.discretize.units",
    "supernet.units.scores": "supernet.search.scores",
    "supernet.units.activations": "supernet.ops.activations",
    "supernet.cost_hooks": "supernet.cost.rules",
    "supernet.cost_latency": "supernet.cost.latency",
    "supernet.edits.init": "supernet.init",
    "supernet.edits.optim": "supernet.optim",
    "supernet.search.unit_choices": "supernet.search.choices.units",
    "supernet.search.rigl": "supernet.search.creation.rigl",
    "supernet.search.unit_growth": "supernet.search.creation.units",
    "supernet.search.standalone": "supernet.compiler.standalone",
    "supernet.search.export": "supernet.export",
    "supernet.search.data": "supernet.train.data",
    "supernet.search.training": "supernet.train.training",
    "supernet.search.retrain": "supernet.train.retrain",
    "supernet.search.distributed": "supernet.distributed",
    "search_spaces.registry": "supernet.spaces",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of :data:`MOVED_MODULES` and hands out the module at its new path."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)  # loaded on first use of the old path only

    def exec_module(self, module) -> None:
        pass  # the new module is loaded already


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
