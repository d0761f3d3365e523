"""Save and load any module as versioned JSON: the module tree and its state, never pickle.

A model file reads like this (numbers shortened):

    {
      "format": "autograd-nn",
      "version": 2,
      "module": {"type": "Sequential", "config": {}, "children": [
        {"type": "Layer", "config": {"nin": 2, "nout": 16, "activation": "relu"}},
        {"type": "BatchNorm1d", "config": {"num_features": 16, "eps": 1e-05, "momentum": 0.1}},
        {"type": "Layer", "config": {"nin": 16, "nout": 1, "activation": "linear"}}]},
      "state": {"0.weight": [[0.41, -1.2], ...], "0.bias": [0.0, ...],
                "1.running_mean": [...], ..., "2.bias": [0.0]}
    }

Each node of `module` names a type registered in `nn.modules.MODULE_TYPES` (MLP, Layer, Neuron,
Sequential, BatchNorm1d, Dropout, and every type another file registers with
`nn.modules.register`) and holds its `config()`; a container (Sequential) also lists its
children. `state` is the model's `state_dict()`. So `load` is: rebuild the tree, then
`load_state_dict(state)`. JSON, unlike pickle, runs no code when it is read, and a person can
open it. Files of version 1 (an MLP only: `"format": "autograd-nn-mlp"`, `architecture`,
`weights`) still load.

Both directions check everything before they commit. `save` refuses a target that is not a
regular file (a directory, a symlink, a device such as /dev/null), writes to a temporary file
in the same directory, flushes it to disk, then renames it over the target (`os.replace` is
atomic), so a crash or a refused model never leaves a half-written file or clobbers a good one.
`load` refuses a truncated or corrupted file, another format or version, an unknown module
type, state that does not fit the modules, and non-finite numbers, with a `ValueError` that
says which. The declared shapes are compared with the numbers present before any module is
built, so a tiny file declaring a huge model is refused at once.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from typing import Any, Union

from .modules import MODULE_TYPES, Module, Shape

FORMAT = "autograd-nn"
VERSION = 2
FORMAT_V1, VERSION_V1 = "autograd-nn-mlp", 1
PathLike = Union[str, bytes, "os.PathLike[str]"]
SAFETENSORS = ".safetensors"
"""A path ending so is saved and loaded in the safetensors format; any other as JSON."""
NODE_KEYS = {"type", "config", "children"}


def save(model: Module, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically (temporary file, fsync, rename)."""
    if not isinstance(model, Module):
        raise TypeError(f"save stores an nn module, got {type(model).__name__}")
    path = _file_name(path, "save")
    document = {
        "format": FORMAT,
        "version": VERSION,
        "module": describe(model),
        "state": model.state_dict(),
    }
    # Rebuilding the model from the document is the same check `load` makes: a file that
    # could not be loaded back (a NaN weight, say) is refused before anything is written.
    _model_from(document, f"cannot save {type(model).__name__}")
    _check_target(path)
    if path.endswith(SAFETENSORS):
        _write_atomically(path, _safetensors_bytes(document))
    else:
        _write_atomically(path, (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())


def load(path: PathLike) -> Module:
    """The model saved at `path`; a `ValueError` saying what is wrong with a bad file."""
    path = _file_name(path, "load")
    with open(path, "rb") as file:
        raw = file.read()
    if path.endswith(SAFETENSORS):
        return _model_from(_safetensors_document(raw, path), path)
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise ValueError(f"{path}: {error}") from None
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError is JSON nested
    # deeper than the parser's stack (a file of 200,000 `[`).
    except (ValueError, RecursionError) as error:
        problem = "nested too deeply" if isinstance(error, RecursionError) else error
        raise ValueError(
            f"{path}: not a valid model file (truncated or corrupted?): {problem}"
        ) from None
    return _model_from(document, path)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing a key it holds twice: the parser would keep the last
    silently, and which of two weights is meant is not for us to guess."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(f"the key {key!r} appears twice in one JSON object")
        document[key] = value
    return document


def describe(module: Module) -> dict[str, Any]:
    """The module tree as JSON-ready data: type name, config and (containers) children."""
    name = type(module).__name__
    if MODULE_TYPES.get(name) is not type(module):
        raise TypeError(
            f"cannot save a {name}: its type is not registered with nn.modules.register"
        )
    node: dict[str, Any] = {"type": name, "config": module.config()}
    if module.container:
        node["children"] = [describe(child) for child in module.children()]
    return node


def _model_from(document: Any, where: str) -> Module:
    """Check a parsed document field by field, compare shapes, then build and fill the model."""
    tree, state = _tree_and_state(document, where)
    expected = _shapes(tree, where)
    _check_state_shapes(state, expected, where)
    model = _build(tree, where)
    try:
        model.load_state_dict(state)
    except ValueError as error:
        raise ValueError(f"{where}: bad weights: {error}") from None
    return model


def _tree_and_state(document: Any, where: str) -> tuple[Any, Any]:
    """The module tree and the state of a version 2 document, or of a version 1 (MLP) one."""
    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(document).__name__}")
    version_1 = document.get("format") == FORMAT_V1
    keys = {
        "format",
        "version",
        *(("architecture", "weights") if version_1 else ("module", "state")),
    }
    if set(document) != keys:
        raise ValueError(f"{where}: expected the keys {sorted(keys)}, got {sorted(document)}")
    if document["format"] not in (FORMAT, FORMAT_V1):
        raise ValueError(f"{where}: format is {document['format']!r}, expected {FORMAT!r}")
    version = document["version"]
    supported = VERSION_V1 if version_1 else VERSION
    if type(version) is not int or version != supported:
        raise ValueError(
            f"{where}: unsupported version {version!r} of {document['format']!r}; "
            f"this library reads {supported}"
        )
    if not version_1:
        return document["module"], document["state"]
    architecture = document["architecture"]
    keys = {"nin", "nouts", "activation"}
    if not isinstance(architecture, dict) or set(architecture) != keys:
        got = sorted(architecture) if isinstance(architecture, dict) else architecture
        raise ValueError(f"{where}: architecture must hold {sorted(keys)}, got {got!r}")
    return {"type": "MLP", "config": architecture}, document["weights"]


def _node_parts(node: Any, where: str) -> tuple[type[Module], dict[str, Any], list[Any]]:
    """A tree node's module type, config and children, each checked."""
    if not isinstance(node, dict) or not {"type", "config"} <= set(node) <= NODE_KEYS:
        raise ValueError(
            f"{where}: bad architecture: a module is an object of type, config and "
            f"(containers) children, got {str(node)[:200]}"
        )
    name, config = node["type"], node["config"]
    if not isinstance(name, str) or name not in MODULE_TYPES:
        raise ValueError(
            f"{where}: bad architecture: unknown module type {str(name)[:100]!r}; "
            f"known: {', '.join(sorted(MODULE_TYPES))}"
        )
    if not isinstance(config, dict):
        raise ValueError(f"{where}: bad architecture: config of {name} must be an object")
    cls = MODULE_TYPES[name]
    children = node.get("children", [])
    if cls.container != ("children" in node) or not isinstance(children, list):
        expected = "a list of children" if cls.container else "no children"
        raise ValueError(f"{where}: bad architecture: {name} takes {expected}")
    return cls, config, children


def _shapes(node: Any, where: str) -> dict[str, Shape]:
    """The shape of every state entry the tree declares, computed without building it."""
    cls, config, children = _node_parts(node, where)
    if cls.container:
        # A container names its children's entries by position, as Sequential does.
        return {
            f"{i}.{key}": shape
            for i, child in enumerate(children)
            for key, shape in _shapes(child, where).items()
        }
    try:
        return cls.state_shapes(**config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: bad architecture: {cls.__name__}: {error}") from None


def _check_state_shapes(state: Any, expected: dict[str, Shape], where: str) -> None:
    """The state has exactly the declared entries, each a full list of the declared shape."""
    if not isinstance(state, dict):
        raise ValueError(f"{where}: bad weights: expected an object, got {type(state).__name__}")
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise ValueError(f"{where}: bad weights: missing {missing}, unexpected {unexpected}")
    for key, shape in expected.items():
        problem = _misfit(state[key], shape)
        if problem:
            raise ValueError(
                f"{where}: bad weights: {key}{problem}: the architecture declares shape {shape}"
            )


def _misfit(numbers_: Any, shape: Shape) -> str:
    """'' if `numbers_` is a nested list of exactly `shape`, else where and how it differs.

    Every list is checked, not only the first of each level: the file must hold as many
    numbers as the model will have, so what is built next is no larger than the file.
    """
    pending = [(numbers_, 0, "")]
    while pending:
        entry, depth, at = pending.pop()
        if depth == len(shape):
            if isinstance(entry, list):
                return f"{at}: expected a number, got a list"
            continue
        if not isinstance(entry, list) or len(entry) != shape[depth]:
            got = f"a list of {len(entry)}" if isinstance(entry, list) else type(entry).__name__
            return f"{at}: expected a list of {shape[depth]}, got {got}"
        pending += [(child, depth + 1, f"{at}[{i}]") for i, child in enumerate(entry)]
    return ""


def _build(node: dict[str, Any], where: str) -> Module:
    cls, config, children = _node_parts(node, where)
    built = [_build(child, where) for child in children]
    try:
        return cls(*built, **config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: bad architecture: {cls.__name__}: {error}") from None


def _file_name(path: Any, function: str) -> str:
    """`path` (a str, bytes or path object) as a str, or an error saying what a path is."""
    try:
        name = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(
            f"{function} needs a file name (a str or a pathlib.Path), got {type(path).__name__}"
        ) from None
    if not name:
        raise ValueError(f"{function} needs a file name, got an empty one")
    return name


def _check_target(path: str) -> None:
    """Refuse to replace anything but a regular file: never a device, a directory or a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ValueError(f"{path}: is a symlink; save writes only to a regular file")
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory; save needs a file name")
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{path}: is not a regular file (a device, pipe or socket); save will not replace it"
        )


def _safetensors_bytes(document: dict[str, Any]) -> bytes:
    """The state as safetensors tensors (float64; a count as an int64 scalar), and the rest of
    the document (format, version, the module tree as JSON) as the file's string metadata."""
    import numpy as np

    safetensors_numpy = _import_safetensors()
    tensors = {
        key: np.asarray(value, dtype=np.int64 if isinstance(value, int) else np.float64)
        for key, value in document["state"].items()
    }
    metadata = {
        "format": document["format"],
        "version": str(document["version"]),
        "module": json.dumps(document["module"], allow_nan=False),
    }
    return safetensors_numpy.save(tensors, metadata=metadata)


def _safetensors_document(raw: bytes, path: str) -> dict[str, Any]:
    """The document a safetensors file holds, for the checks every model file goes through."""
    safetensors_numpy = _import_safetensors()
    try:
        tensors = safetensors_numpy.load(raw)
        # The header: 8 bytes of its length, then JSON holding the metadata.
        size = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + size], object_pairs_hook=_unique_keys)["__metadata__"]
        module = json.loads(metadata["module"], object_pairs_hook=_unique_keys)
        version = int(metadata["version"])
        return {
            "format": metadata["format"],
            "version": version,
            "module": module,
            "state": {key: array.tolist() for key, array in tensors.items()},
        }
    # Exception: safetensors raises its own SafetensorError for a damaged file, besides the
    # ValueError, KeyError (a missing metadata field) and TypeError of a header we read.
    except Exception as error:
        problem = f"no {error}" if isinstance(error, KeyError) else error
        raise ValueError(
            f"{path}: not a valid model file (truncated or corrupted?): {problem}"
        ) from None


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            "a .safetensors model file needs the safetensors library: pip install safetensors "
            "(or the project's interchange extra)"
        ) from None
    return safetensors.numpy


def _write_atomically(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, as open() does.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise _naming(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.errno is not None:
            raise _naming(path, error) from None
        raise
    _sync_directory(directory)


def _naming(path: str, error: OSError) -> OSError:
    """The same error, naming the file the user asked for, not our temporary one."""
    return type(error)(error.errno, f"cannot save to {path}: {error.strerror}", path)


def _sync_directory(directory: str) -> None:
    """Flush the rename itself to disk (POSIX; Windows cannot open a directory)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
