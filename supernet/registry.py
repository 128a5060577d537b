"""The one registry helper behind every registry of supernet (ops, activations, compilers,
lint rules, edit kinds, cost rules, relaxations, policies, strategies, spaces, data sets).

Every registry behaves the same way, as timm's model registry and PyG's resolver do:
registering a name twice is refused unless ``override=True``; ``list`` filters names with
one shell-style glob; a name that is not there fails with one message that lists the
choices, suggests the closest one and says how to register one.

Examples:
    >>> colors = Registry("color", hint="register one with colors.register")
    >>> @colors.register("red")
    ... def red():
    ...     return "#f00"
    >>> colors.register("green", lambda: "#0f0")
    <function <lambda> at ...>
    >>> colors.list("g*"), colors.resolve("red")()
    (['green'], '#f00')
    >>> colors.resolve("rde")
    Traceback (most recent call last):
        ...
    supernet.errors.UnknownNameError: could not resolve color 'rde' among ['green', 'red'];
    did you mean 'red'? register one with colors.register
    >>> colors.register("red", lambda: "#e00")
    Traceback (most recent call last):
        ...
    supernet.errors.DuplicateNameError: color 'red' is registered already;
    pass override=True to replace it
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
import types
import warnings
from typing import Callable, Generic, Iterator, TypeVar

from supernet.errors import ConfigError, DuplicateNameError, UnknownNameError

__all__ = ["PLUGINS", "Registry", "decorator", "import_modules", "load_plugins"]

T = TypeVar("T")

_MISSING = object()


class Registry(Generic[T]):
    """Named entries of one kind.

    A registry reads like a mapping of names to entries as well: ``name in reg``,
    ``reg[name]`` (as :meth:`resolve`), ``reg[name] = obj`` (as :meth:`register`, so a name
    taken already is refused), ``del reg[name]`` (as :meth:`unregister`), ``sorted(reg)``
    and ``len(reg)``.

    Args:
        kind: what an entry is, for messages (``"op"``, ``"strategy"``).
        hint: how a user adds one, ending the error of an unknown name
            (``"register one with @supernet.register_op"``).
        entry_points: an entry-point group whose modules register entries; they are
            imported the first time a name is missing or the names are listed, so an
            installed package extends the registry without being imported by hand. A
            module that fails to import is skipped with a warning, and the error of an
            unknown name says which one failed. Every registry also loads the group
            ``supernet.plugins`` (:data:`PLUGINS`), whose modules may register anything.
    """

    def __init__(self, kind: str, hint: str = "", entry_points: str | None = None):
        self.kind = kind
        self.hint = hint
        self.entry_points = entry_points
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False
        self._plugin_errors: list[str] = []

    # ------------------------------------------------------------------ writing
    def register(self, name: str, obj=_MISSING, *, override: bool = False):
        """Register ``obj`` under ``name`` and return it; without ``obj``, a decorator.

        Raises:
            DuplicateNameError: ``name`` is registered already and ``override`` is False.
        """
        if obj is _MISSING:
            return lambda o: self.register(name, o, override=override)
        if not isinstance(name, str) or not name:
            raise UnknownNameError(f"{self.kind} names are non-empty strings, got {name!r}")
        if name in self._entries and not override:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered already; pass override=True to replace it"
            )
        self._entries[name] = obj
        return obj

    def unregister(self, name: str) -> T:
        """Remove ``name``; returns what it held. Fails as :meth:`resolve` for a missing one."""
        self.resolve(name)
        return self._entries.pop(name)

    # ------------------------------------------------------------------ reading
    def resolve(self, name: str, where: str = "") -> T:
        """The entry ``name``; fails with the list of choices and the closest one.

        Args:
            name: the registered name.
            where: what asked for it (``"g: edge x->h"``), to begin the message with.

        Raises:
            UnknownNameError: with the message of :meth:`unknown`.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            pass
        if self._load_plugins():
            return self.resolve(name, where)
        raise UnknownNameError(self.unknown(name, where)) from None

    def unknown(self, name, where: str = "") -> str:
        """The message for a name that is not registered."""
        at = f"{where}: " if where else ""
        names = self.list()
        close = difflib.get_close_matches(str(name), names, n=1)
        maybe = f"; did you mean {close[0]!r}?" if close else ""
        hint = f" {self.hint}" if self.hint else ""
        if not close and hint:
            hint = ";" + hint
        failed = ""
        if self._plugin_errors:
            failed = (f" (entry point(s) of group {self.entry_points!r} failed to load: "
                      f"{'; '.join(self._plugin_errors)})")
        return f"{at}could not resolve {self.kind} {name!r} among {names}{maybe}{hint}{failed}"

    def get(self, name: str, default=None):
        """The entry ``name``, or ``default`` if there is none."""
        if name not in self:
            return default
        return self._entries[name]

    def list(self, filter: str | None = None) -> list[str]:
        """Registered names, sorted; ``filter`` is a shell-style glob (``"darts*"``),
        matched case-sensitively against the whole name."""
        self._load_plugins()
        names = sorted(self._entries)
        return names if filter is None else [n for n in names if fnmatch.fnmatchcase(n, filter)]

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        self._load_plugins()
        return sorted(self._entries.items(), key=lambda kv: kv[0])

    def __contains__(self, name) -> bool:
        try:
            if name in self._entries:
                return True
        except TypeError:  # an unhashable name is no name
            return False
        return self._load_plugins() and name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.resolve(name)

    def __setitem__(self, name: str, obj: T) -> None:
        self.register(name, obj)

    def __delitem__(self, name: str) -> None:
        self.unregister(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    # ------------------------------------------------------------------ plugins
    def _load_plugins(self) -> bool:
        """Import the modules of the entry-point group once; True if that was done now."""
        if self._plugins_loaded:
            return False
        self._plugins_loaded = True
        self._plugin_errors += load_plugins()
        for ep in (importlib.metadata.entry_points(group=self.entry_points)
                   if self.entry_points else ()):
            try:
                ep.load()
            except Exception as exc:  # a broken package must not hide the others
                error = f"{ep.name} = {ep.value}: {exc!r}"
                self._plugin_errors.append(error)
                warnings.warn(
                    f"{self.kind} registry: entry point {error}; its {self.kind}s are missing "
                    "until the package that declares it is fixed or uninstalled",
                    stacklevel=3,
                )
        return True


#: The entry-point group of installed packages that extend supernet: each entry point names
#: a module (imported) or a callable (called once), which registers data sets, spaces, ops,
#: relaxations, strategies... Declared in a package's ``pyproject.toml`` as
#: ``[project.entry-points."supernet.plugins"] my_pkg = "my_pkg.supernet_plugin"``.
PLUGINS = "supernet.plugins"
_PLUGINS_DONE: list[str] | None = None


def load_plugins() -> list[str]:
    """Load the installed plugins (:data:`PLUGINS`) once per process; returns the errors of
    those that failed (each also warned about), so that a broken package hides no other."""
    global _PLUGINS_DONE
    if _PLUGINS_DONE is not None:
        return list(_PLUGINS_DONE)
    _PLUGINS_DONE = []
    for ep in importlib.metadata.entry_points(group=PLUGINS):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, types.ModuleType):
                obj()
        except Exception as exc:  # a broken package must not hide the others
            error = f"{ep.name} = {ep.value}: {exc!r}"
            _PLUGINS_DONE.append(error)
            warnings.warn(f"plugin {error}; what it registers is missing until the package "
                          "that declares it is fixed or uninstalled", stacklevel=3)
    return list(_PLUGINS_DONE)


def decorator(registry: Registry, transform: Callable | None = None):
    """A ``@register_x(name, override=False)`` decorator over ``registry`` (optionally
    storing ``transform(name, obj)`` instead of ``obj``, and returning ``obj``)."""

    def register(name: str, override: bool = False):
        def wrap(obj):
            registry.register(name, obj if transform is None else transform(name, obj),
                              override=override)
            return obj

        return wrap

    return register


def import_modules(names, where: str) -> list:
    """Import the user modules ``names`` (dotted module names, or paths of ``.py`` files)
    that register data sets, spaces, ops, relaxations or strategies; ``where`` names what
    gave them (``"--import"``, ``"config key 'imports'"``) for errors. A module name is
    looked up on ``sys.path`` and then in the current directory. Importing runs the
    module's code: name only modules you trust.

    Raises:
        ConfigError: a module that is not found (with where it was looked for), or whose
            import failed (its exception, and the file and line it came from).
    """
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n
                                                       for n in names):
        raise ConfigError(f"{where}: a list of module names or .py files, got {names!r}")
    modules = []
    for name in names:
        try:
            if name.endswith(".py") or os.sep in name or "/" in name:
                path = os.path.abspath(name)
                if not os.path.isfile(path):
                    raise ConfigError(f"{where}: no file {name!r} (looked for {path})")
                mod_name = os.path.splitext(os.path.basename(path))[0]
                if mod_name in sys.modules and getattr(sys.modules[mod_name], "__file__",
                                                       None) == path:
                    modules.append(sys.modules[mod_name])
                    continue
                spec = importlib.util.spec_from_file_location(mod_name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(mod_name, None)
                    raise
            else:
                if os.getcwd() not in sys.path and "" not in sys.path:
                    sys.path.append(os.getcwd())  # as `python -m` finds the user's modules
                module = importlib.import_module(name)
            modules.append(module)
        except ConfigError:
            raise
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                raise ConfigError(
                    f"{where}: no module {name!r} (looked on sys.path and in "
                    f"{os.getcwd()}); install the package, or give the path of its .py file"
                ) from None
            raise ConfigError(f"{where}: importing {name!r} failed: it imports {exc.name!r}, "
                              "which is not installed") from None
        except Exception as exc:  # the user's module raised: say what and where
            frames = traceback.extract_tb(exc.__traceback__)
            at = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
            raise ConfigError(f"{where}: importing {name!r} failed: "
                              f"{type(exc).__name__}: {exc}{at}") from None
    return modules
