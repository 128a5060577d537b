"""Reading a benchmark's pickle without running code from it.

Unpickling runs whatever callable a pickle names (``__reduce__``), so ``pickle.load`` on a
downloaded file is running that file. :class:`RestrictedUnpickler` resolves only the globals
it is given (each mapped to a function of ours that checks its arguments) and refuses every
other one, naming the file and the global; persistent ids are refused too. The NAS-Bench-
Graph files need two globals only (``pickletools.genops`` shows them): ``numpy.dtype`` and
``numpy.core.multiarray.scalar``, the reconstruction of a numpy float scalar, which
:data:`NUMPY_SCALARS` serves with plain fixed-size numeric dtypes only.

Examples:
    >>> import io, pickle
    >>> import numpy as np
    >>> data = pickle.dumps({"para": np.float64(1.5)}, protocol=3)
    >>> restricted_loads(data, NUMPY_SCALARS, "bench")
    {'para': np.float64(1.5)}
    >>> restricted_loads(pickle.dumps(eval), NUMPY_SCALARS, "bench")
    Traceback (most recent call last):
        ...
    supernet.errors.SerializationError: bench: refused to unpickle global 'builtins.eval' ...
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping

import numpy as np

from supernet.errors import SerializationError

__all__ = ["NUMPY_SCALARS", "RestrictedUnpickler", "restricted_load", "restricted_loads"]

#: numpy dtypes a scalar of a benchmark file may have: fixed-size booleans, integers, floats.
_SCALAR_KINDS = "biuf"


def _dtype(code, align=False, copy=True):
    """``numpy.dtype(code)`` for a plain numeric type code (``'f8'``, ``'i4'``) only; always
    a copy, so that the state the pickle sets next never touches numpy's own dtype."""
    try:
        dtype = np.dtype(code) if isinstance(code, str) and len(code) <= 4 else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _SCALAR_KINDS:
        raise pickle.UnpicklingError(f"numpy.dtype({code!r}): only plain numeric types "
                                     "(bool, int, uint, float) are read")
    return np.dtype(code, bool(align), True)


def _scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar(dtype, data)`` for the numeric dtypes of :func:`_dtype`."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _SCALAR_KINDS \
            or dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r}: only plain numeric "
                                     "types are read")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype}: expected "
                                     f"{dtype.itemsize} bytes, got {type(data).__name__}")
    return np.frombuffer(data, dtype=dtype)[0]


#: The globals of pickled numpy numeric scalars (numpy 1 and 2 module names).
NUMPY_SCALARS: Mapping[tuple[str, str], Callable] = {
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only the globals of ``allowed``.

    Args:
        file: a binary file object.
        allowed: ``(module, name)`` -> the object the global stands for.
        where: the file's name, for messages.
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], Callable], where: str):
        super().__init__(file)
        self.allowed = dict(allowed)
        self.where = where

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            pass
        names = sorted(f"{m}.{n}" for m, n in self.allowed)
        raise SerializationError(
            f"{self.where}: refused to unpickle global '{module}.{name}' (unpickling it could "
            f"run code from the file); this reader allows only {names}")

    def persistent_load(self, pid):
        raise SerializationError(f"{self.where}: refused a persistent id {pid!r:.60} (a "
                                 "benchmark table has none)")


def restricted_loads(data: bytes, allowed: Mapping[tuple[str, str], Callable], where: str):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any failure is a
    :class:`~supernet.errors.SerializationError` naming ``where``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), allowed, where).load()
    except SerializationError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, RecursionError, OverflowError) as exc:
        raise SerializationError(f"{where}: not a readable pickle ({type(exc).__name__}: "
                                 f"{exc})") from None


def restricted_load(path: str, allowed: Mapping[tuple[str, str], Callable]):
    """Unpickle the file ``path`` with :class:`RestrictedUnpickler`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SerializationError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    return restricted_loads(data, allowed, path)
