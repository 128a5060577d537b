"""The memory format a compiled layer-level module runs its 4-D tensors in.

Depthwise and dilated convolutions, most of a DARTS step, run several times faster on
``channels_last`` tensors than on ``contiguous`` (NCHW) ones on CPUs (oneDNN). The ops keep
the format of their input, so converting the inputs of the top-level forward is enough;
parameters stay as they are (checkpoints need contiguous tensors).

``module.memory_format`` (:class:`~supernet.compiler.layer.LayerModule`) is ``"auto"`` by
default: a super-network (a module with gates) runs 4-D floating inputs in
``channels_last`` on a CPU, where it was measured faster (``benchmarks/bench_search.py
--only f``); on other devices, where it was not measured, and in a discretized module
(no gates: it stays bitwise equal to its standalone network and exported files, which run
in the format of their input), inputs keep their format. ``"channels_last"`` and
``"contiguous"`` force a format on every device; ``"preserve"`` converts nothing. Values
are equal in either format up to float rounding (summation order inside the kernels).

Examples:
    >>> import torch
    >>> x = torch.randn(2, 3, 4, 4)
    >>> resolve_memory_format("auto", (x,), gated=True) is torch.channels_last
    True
    >>> resolve_memory_format("auto", (x,), gated=False) is None
    True
    >>> resolve_memory_format("preserve", (x,)) is None
    True
    >>> resolve_memory_format("nhwc", (x,))
    Traceback (most recent call last):
    ...
    supernet.errors.ConfigError: memory_format must be one of ['auto', 'channels_last', 'contiguous', 'preserve'], got 'nhwc'
"""

from __future__ import annotations

import torch

from supernet.errors import ConfigError

__all__ = ["MEMORY_FORMATS", "check_memory_format", "resolve_memory_format", "to_memory_format"]

MEMORY_FORMATS = ("auto", "channels_last", "contiguous", "preserve")
_FAST = {"cpu": torch.channels_last}  # measured per device type; others keep their format


def check_memory_format(setting: str) -> str:
    """``setting`` if it is one of :data:`MEMORY_FORMATS`, else a :class:`ConfigError`."""
    if setting not in MEMORY_FORMATS:
        raise ConfigError(f"memory_format must be one of {list(MEMORY_FORMATS)}, got {setting!r}")
    return setting


def _images(inputs):
    return [x for x in inputs if torch.is_tensor(x) and x.dim() == 4 and x.is_floating_point()]


def resolve_memory_format(setting: str, inputs, gated: bool = True
                          ) -> torch.memory_format | None:
    """The format to convert the 4-D floating ``inputs`` to, or ``None`` to leave them;
    ``gated``: whether the module is a super-network (``"auto"`` converts only those)."""
    check_memory_format(setting)
    if setting == "preserve":
        return None
    if setting == "channels_last":
        return torch.channels_last
    if setting == "contiguous":
        return torch.contiguous_format
    images = _images(inputs) if gated else []
    return _FAST.get(images[0].device.type) if images else None


def to_memory_format(x, fmt: torch.memory_format):
    """``x`` in format ``fmt`` if it is a 4-D floating tensor, else ``x`` itself."""
    if torch.is_tensor(x) and x.dim() == 4 and x.is_floating_point():
        return x.contiguous(memory_format=fmt)
    return x
