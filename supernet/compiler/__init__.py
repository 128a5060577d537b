"""Compilers: graph -> ``nn.Module``, one per abstraction level.

* :mod:`~supernet.compiler.base` -- :func:`compile` and the compiler registry
* :mod:`~supernet.compiler.module` -- :class:`GraphModule`, the base of compiled graphs
* :mod:`~supernet.compiler.layer` -- layer-level graphs (:class:`LayerModule`)
* :mod:`~supernet.compiler.units` -- channel- and neuron-level graphs (:class:`UnitModule`),
  with their blocks (:mod:`.blocks`), kernels (:mod:`.kernels`) and weight-carrying
  synchronization (:mod:`.unit_sync`)
* :mod:`~supernet.compiler.plan` -- the compiled schedule, read-only as ``module.plan``
* :mod:`~supernet.compiler.standalone` -- a discretized graph as a plain ``torch.fx`` module
"""

from supernet.compiler.base import COMPILERS, compile, register_compiler
from supernet.compiler.layer import LayerModule
from supernet.compiler.module import GraphModule, full_version, module_key
from supernet.compiler.plan import LayerPlan, UnitPlan
from supernet.compiler.standalone import gates_left, standalone
from supernet.compiler.units import SPARSE_BELOW, UnitModule, compile_units

__all__ = ["COMPILERS", "compile", "register_compiler", "GraphModule", "full_version", "module_key",
           "LayerModule", "UnitModule", "compile_units", "SPARSE_BELOW", "standalone",
           "gates_left", "LayerPlan", "UnitPlan"]
