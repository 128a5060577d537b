"""A run directory's manifest: every file the run wrote, with its SHA-256, and what the run
is (its identity), so that a file changed, damaged or brought in from another run is refused
when it is read, naming the file.

``manifest.json`` beside the results::

    {"format": "supernet-run-manifest", "version": 1, "complete": true,
     "identity": {"space": ..., "strategy": ..., "data": ..., "seed": 0},
     "files": {"config.yaml": {"sha256": "...", "bytes": 1234}, ...}}

The run records each file right after writing it; ``complete`` is set after the last one
(the report), so a run killed at any point is known to be unfinished. The search checkpoint
(``checkpoints/last.safetensors``) carries checksums of its own and the run's identity: a
checkpoint of another configuration or space is refused, naming what differs
(:func:`check_identity`).

Examples:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> open(os.path.join(d, "notes.txt"), "w").write("found")
    5
    >>> files = RunFiles(d, identity={"seed": 0})
    >>> files.add("notes.txt")
    >>> RunFiles.open(d).check("notes.txt") == os.path.join(d, "notes.txt")
    True
    >>> open(os.path.join(d, "notes.txt"), "w").write("edited")
    6
    >>> RunFiles.open(d).check("notes.txt")
    Traceback (most recent call last):
    ...
    supernet.errors.SerializationError: ...notes.txt: changed since the run wrote it ...
"""

from __future__ import annotations

import json
import os

from supernet.errors import ConfigError, SerializationError
from supernet.io import atomic_write, file_sha256, path_inside

__all__ = ["MANIFEST", "RunFiles", "check_identity", "file_sha256", "run_identity"]

MANIFEST = "manifest.json"
FORMAT = "supernet-run-manifest"

#: The keys of a run's effective config that say which search it is. Its budget
#: (``search``) and loop settings (``strategy.config``) may change when a search is
#: continued (``--resume`` with more epochs); these may not.
IDENTITY_KEYS = ("space", "strategy", "data", "seed")


def run_identity(effective: dict) -> dict:
    """Which search a run is, from its effective config (``config.yaml``): its space,
    strategy (without its loop settings), data and seed; not its budget, where it writes or
    how it shows progress."""
    out = {k: effective.get(k) for k in IDENTITY_KEYS}
    if isinstance(out["strategy"], dict):
        out["strategy"] = {k: v for k, v in out["strategy"].items() if k != "config"}
    return json.loads(json.dumps(out, default=str))


def _differences(before, now, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(now, dict):
        out = []
        for k in list(before) + [k for k in now if k not in before]:
            out += _differences(before.get(k), now.get(k), f"{where}.{k}" if where else str(k))
        return out
    return [] if before == now else [f"{where or 'the config'}: {before!r} there, {now!r} now"]


def check_identity(saved, now: dict, what: str) -> None:
    """Refuse to continue ``what`` (a checkpoint, a run directory) written by another run:
    ``saved`` (its identity, ``None`` if it has none) must equal ``now``; the
    :class:`~supernet.errors.ConfigError` lists every key that differs."""
    if saved is None:
        raise ConfigError(f"{what}: does not say which run wrote it (no run identity), so it "
                          "is not continued under this run's config; delete it to start over")
    differ = _differences(saved, now)
    if differ:
        shown = "; ".join(differ[:8]) + (f"; and {len(differ) - 8} more" if len(differ) > 8
                                         else "")
        raise ConfigError(f"{what}: written by another run (another config or space): "
                          f"{shown}. Run with the config it was written with, or choose another "
                          "--out (or delete the folder) to start over")


class RunFiles:
    """The manifest of run directory ``directory``: :meth:`add` records files the run
    wrote, :meth:`check` verifies one before it is read."""

    def __init__(self, directory: str, identity: dict | None = None,
                 files: dict | None = None, complete: bool = False):
        self.directory = directory
        self.identity = identity
        self.files = dict(files or {})
        self.complete = complete

    @property
    def path(self) -> str:
        return os.path.join(self.directory, MANIFEST)

    @classmethod
    def open(cls, directory: str, missing_ok: bool = False) -> RunFiles | None:
        """Read ``directory``'s manifest; a missing one is an error (``None`` with
        ``missing_ok``), a damaged one always."""
        path = os.path.join(directory, MANIFEST)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            if missing_ok:
                return None
            raise SerializationError(
                f"{directory}: no {MANIFEST}, so its files cannot be checked; is it a "
                "directory written by 'supernet search' of this version?") from None
        except (OSError, ValueError) as exc:
            raise SerializationError(f"{path}: unreadable or damaged ({exc})") from exc
        files = data.get("files") if isinstance(data, dict) else None
        if (not isinstance(data, dict) or data.get("format") != FORMAT
                or not isinstance(files, dict)
                or not all(isinstance(e, dict) and isinstance(e.get("sha256"), str)
                           and isinstance(e.get("bytes"), int) for e in files.values())):
            raise SerializationError(f"{path}: not a supernet run manifest (format {FORMAT!r} "
                                     "with a 'files' table of sha256 and bytes)")
        return cls(directory, data.get("identity"), files, bool(data.get("complete")))

    def _write(self) -> None:
        data = {"format": FORMAT, "version": 1, "complete": self.complete,
                "identity": self.identity, "files": dict(sorted(self.files.items()))}
        atomic_write(self.path, json.dumps(data, indent=1).encode())

    def add(self, *names: str) -> None:
        """Record the files ``names`` (relative to the directory) as they are now."""
        for name in names:
            path = path_inside(self.directory, name)
            sha, size = file_sha256(path)
            self.files[name.replace(os.sep, "/")] = {"sha256": sha, "bytes": size}
        self._write()

    def drop(self, *names: str) -> None:
        """Forget ``names`` (files removed or about to be rewritten) and mark the run
        unfinished."""
        for name in names:
            self.files.pop(name.replace(os.sep, "/"), None)
        self.complete = False
        self._write()

    def finish(self) -> None:
        """Mark the run finished: every result file is recorded."""
        self.complete = True
        self._write()

    def check(self, name: str) -> str:
        """The path of file ``name``, verified against the manifest: a file missing,
        unlisted, or changed since the run wrote it fails naming it."""
        path = os.path.join(self.directory, name)
        entry = self.files.get(name.replace(os.sep, "/"))
        if entry is None:
            raise SerializationError(
                f"{path}: not listed in {MANIFEST}, so it was not written by this run (or its "
                "write was interrupted); rerun the command that writes it")
        try:
            sha, size = file_sha256(path_inside(self.directory, name))
        except OSError as exc:
            raise SerializationError(f"{path}: listed in {MANIFEST} but unreadable "
                                     f"({exc.strerror or exc})") from exc
        if (sha, size) != (entry["sha256"], entry["bytes"]):
            raise SerializationError(
                f"{path}: changed since the run wrote it ({size} bytes, SHA-256 {sha[:12]}…; "
                f"{MANIFEST} lists {entry['bytes']} bytes, {entry['sha256'][:12]}…). A damaged "
                "or edited file is not read: restore it, or rerun the command that writes it "
                "(change settings with --set rather than by editing the run's files)")
        return path
