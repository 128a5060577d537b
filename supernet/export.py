"""The files users keep after a search, and loading them back.

:func:`export` writes, for a discretized graph and its weights:

============== ===============================================================
``graph.json``    node-link JSON of the graph (:func:`supernet.save_graph`)
``graph.graphml`` the same as GraphML
``arch.txt``      the space's text form (DARTS genotype, NAS-Bench-201 string), when
                  the graph's space has one (:func:`supernet.spaces.encode`)
``weights.safetensors``    ``state_dict`` of the standalone network
``model.ts``      TorchScript of the standalone network (scripted, or traced on the
                  example inputs when an op cannot be scripted): loads with
                  ``torch.jit.load`` alone, no supernet needed
``model.pt2``     ``torch.export`` program (when example inputs are given): the successor
                  of TorchScript, loads with ``torch.export.load(path).module()``
``model.onnx``    ONNX (when ``onnxscript`` is installed and example inputs are given)
``export.json``   what was written, input names and output count
============== ===============================================================

:func:`load_export` reads them back; every form computes the same outputs.
"""

from __future__ import annotations

import io as _io
import json
import os
import warnings
from dataclasses import dataclass, field

import torch

from supernet.compiler.standalone import standalone
from supernet.errors import ConfigError, SerializationError
from supernet.io import (
    atomic_write,
    file_sha256,
    load_graph,
    load_weights,
    save_graph,
    save_weights,
    write_graphml,
)
from supernet.spaces import encode

__all__ = ["Exported", "export", "load_export", "text_form"]


def text_form(graph) -> str | None:
    """The space's text form of ``graph``, or ``None`` when its space has none."""
    space = graph.meta.get("space")
    if not space:
        return None
    try:
        return encode(graph)
    except ConfigError:  # no codec for this space
        return None


def _script(net, example_inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.jit.script(net), "script"
        except Exception:
            if example_inputs is None:
                raise SerializationError(
                    "TorchScript: the network cannot be scripted (an op uses Python-only "
                    "constructs); pass example_inputs= so that it can be traced"
                ) from None
            return torch.jit.trace(net, tuple(example_inputs), check_trace=False), "trace"


def export(graph, module, directory: str, example_inputs=None, *, torchscript: bool = True,
           program: bool | None = None, onnx: bool | None = None,
           opset: int | None = None) -> dict:
    """Write the results of a search to ``directory``; returns ``{kind: path}``.

    Args:
        graph: a discretized graph (no gate left).
        module: its compiled module (weights kept); ``None`` compiles fresh weights.
        example_inputs: a tuple of input tensors, for tracing and ONNX.
        program: write the ``torch.export`` program (default: when example inputs are
            given).
        onnx: write ONNX (default: when ``onnxscript`` is importable and example inputs
            are given).
    """
    os.makedirs(directory, exist_ok=True)
    net = standalone(graph, module).eval()
    if example_inputs is not None and torch.is_tensor(example_inputs):
        example_inputs = (example_inputs,)
    paths = {}
    paths["graph"] = os.path.join(directory, "graph.json")
    save_graph(graph, paths["graph"])
    paths["graphml"] = os.path.join(directory, "graph.graphml")
    write_graphml(graph, paths["graphml"])
    text = text_form(graph)
    if text is not None:
        paths["text"] = os.path.join(directory, "arch.txt")
        atomic_write(paths["text"], (text + "\n").encode())
    paths["weights"] = os.path.join(directory, "weights.safetensors")
    save_weights(net, paths["weights"])
    how = None
    if torchscript:
        scripted, how = _script(net, example_inputs)
        buf = _io.BytesIO()
        with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(scripted, buf)
        paths["torchscript"] = os.path.join(directory, "model.ts")
        atomic_write(paths["torchscript"], buf.getvalue())
    if program is None:
        program = example_inputs is not None
    if program:
        if example_inputs is None:
            raise SerializationError("torch.export needs example_inputs=(tensor, ...)")
        paths["program"] = os.path.join(directory, "model.pt2")
        buf = _io.BytesIO()
        torch.export.save(_program(net, tuple(example_inputs)), buf)
        atomic_write(paths["program"], buf.getvalue())
    skipped = {}
    if onnx is None:
        onnx = example_inputs is not None and _has_onnxscript()
        if example_inputs is not None and not onnx:
            skipped["onnx"] = ONNX_MISSING
    if onnx:
        if example_inputs is None:
            raise SerializationError("ONNX export needs example_inputs=(tensor, ...)")
        if not _has_onnxscript():
            raise SerializationError(f"ONNX export: {ONNX_MISSING}")
        paths["onnx"] = os.path.join(directory, "model.onnx")
        _export_onnx(net, example_inputs, paths["onnx"], opset)
    manifest = {
        "format": "supernet-export",
        "graph": graph.name,
        "inputs": list(graph.inputs),
        "outputs": len([o for o in graph.outputs
                        if not graph.nx.nodes[o].get("train_only")]),
        "files": {k: os.path.basename(v) for k, v in paths.items()},
        # each file as written: loading checks it before reading it
        "sha256": {k: file_sha256(v)[0] for k, v in paths.items()},
        "torchscript": how,
        "text": text,
        "skipped": skipped,  # formats not written, and why
    }
    atomic_write(os.path.join(directory, "export.json"), json.dumps(manifest, indent=1).encode())
    return paths


def _program(net, inputs):
    """``torch.export`` with a dynamic batch size (static if the network needs it)."""
    dims = tuple({0: torch.export.Dim.AUTO} if t.dim() else None for t in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.export.export(net, inputs, dynamic_shapes=dims)
        except Exception:
            return torch.export.export(net, inputs)


#: Why ONNX is not written without its packages, and how to get them.
ONNX_MISSING = ('needs the packages onnx and onnxscript, which the base install leaves out: '
                'pip install "supernet[export]"')


def _has_onnxscript() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _export_onnx(net, example_inputs, path, opset):
    names = [n.target for n in net.graph.nodes if n.op == "placeholder"]
    inputs = tuple(example_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # through torch.export, with a dynamic batch size
            prog = torch.onnx.export(_program(net, inputs), inputs, dynamo=True,
                                     input_names=names, opset_version=opset, verbose=False)
        except Exception:
            prog = torch.onnx.export(net, inputs, dynamo=True, input_names=names,
                                     opset_version=opset, verbose=False)
    # a temporary name that the next run's clean-up recognizes if a kill leaves it behind
    buf_path = os.path.join(os.path.dirname(path), ".tmp-onnx-" + os.path.basename(path))
    try:
        prog.save(buf_path)
        with open(buf_path, "rb") as f:
            atomic_write(path, f.read())
    finally:
        if os.path.exists(buf_path):
            os.unlink(buf_path)


@dataclass
class Exported:
    """What :func:`load_export` reads back.

    Attributes:
        graph: the discretized graph.
        module: the standalone network rebuilt from the graph, with the saved weights.
        torchscript: the TorchScript module (``None`` if not exported).
        program: the ``torch.export`` program's module (``None`` if not exported).
        onnx: path of the ONNX file (``None`` if not exported).
        text: the space's text form (``None`` if none).
    """

    graph: object
    module: torch.nn.Module
    torchscript: object = None
    program: object = None
    onnx: str | None = None
    text: str | None = None
    manifest: dict = field(default_factory=dict)


def load_export(directory: str, trusted: bool = False) -> Exported:
    """Load what :func:`export` wrote to ``directory``.

    The graph and the weights are read without running anything from the files (JSON and a
    checked tensor file). The TorchScript and ``torch.export`` archives can run code when
    loaded (``torch.export.load`` unpickles), so they are loaded only with ``trusted=True``
    (an export you made yourself); otherwise ``torchscript`` and ``program`` stay ``None``
    and the manifest still names the files.
    """
    try:
        with open(os.path.join(directory, "export.json")) as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SerializationError(f"{directory}: not a supernet export ({exc})") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not {"graph", "weights"} <= set(files):
        raise SerializationError(f"{directory}/export.json: no 'files' naming the graph and the "
                                 "weights; not a supernet export")
    for kind, name in files.items():
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise SerializationError(f"{directory}/export.json: files.{kind} is {name!r}; an "
                                     "export names files inside its own directory only")
    sums = manifest.get("sha256")
    if sums is not None and not (isinstance(sums, dict)
                                 and all(isinstance(v, str) for v in sums.values())):
        raise SerializationError(f"{directory}/export.json: 'sha256' is not a table of "
                                 "file checksums")

    def checked(kind):
        path = os.path.join(directory, files[kind])
        if sums is None or kind not in sums:
            if kind in ("torchscript", "program"):  # no checksum: no code from it
                raise SerializationError(
                    f"{path}: export.json has no SHA-256 of it (an export of an older "
                    "version); export again to load it")
            return path
        try:
            sha = file_sha256(path)[0]
        except OSError as exc:
            raise SerializationError(f"{path}: unreadable ({exc.strerror or exc})") from exc
        if sha != sums[kind]:
            raise SerializationError(f"{path}: changed since it was exported (its SHA-256 is "
                                     "not the one export.json lists); export again")
        return path

    graph = load_graph(checked("graph"))
    net = standalone(graph).eval()
    load_weights(net, checked("weights"))
    ts = prog = None
    if trusted and "torchscript" in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ts = torch.jit.load(checked("torchscript"), map_location="cpu")
    if trusted and "program" in files:
        prog = torch.export.load(checked("program")).module()
    onnx_path = os.path.join(directory, files["onnx"]) if "onnx" in files else None
    return Exported(graph, net, ts, prog, onnx_path, manifest.get("text"), manifest)
