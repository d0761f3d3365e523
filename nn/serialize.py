"""Save and load an `MLP` as versioned JSON: the architecture and the weights, never pickle.

A model file reads like this (numbers shortened):

    {
      "format": "autograd-nn-mlp",
      "version": 1,
      "architecture": {"nin": 2, "nouts": [16, 16, 1], "activation": "relu"},
      "weights": {"layers.0.weight": [[0.41, -1.2], ...], "layers.0.bias": [0.0, ...], ...}
    }

`architecture` is `MLP.config()` and `weights` is `MLP.state_dict()`, so `load` is
`MLP(**architecture)` followed by `load_state_dict(weights)`. JSON, unlike pickle, runs no code
when it is read, and a person can open it.

Both directions check everything before they commit. `save` writes to a temporary file in the
same directory, flushes it to disk, then renames it over the target (`os.replace` is atomic),
so a crash or a refused model never leaves a half-written file or clobbers a good one. `load`
refuses a truncated or corrupted file, another format or version, weights that do not fit the
architecture, and non-finite weights, with a `ValueError` that says which.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any, Union

from .modules import MLP

FORMAT = "autograd-nn-mlp"
VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


def save(model: MLP, path: PathLike) -> None:
    """Write `model` to `path` as JSON, atomically (temporary file, fsync, rename)."""
    if not isinstance(model, MLP):
        raise TypeError(f"save stores an MLP, got {type(model).__name__}")
    document = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.config(),
        "weights": model.state_dict(),
    }
    # Rebuilding the model from the document is the same check `load` makes: a file that
    # could not be loaded back (a NaN weight, say) is refused before anything is written.
    _model_from(document, f"cannot save {type(model).__name__}")
    _write_atomically(os.fspath(path), json.dumps(document, indent=1, allow_nan=False) + "\n")


def load(path: PathLike) -> MLP:
    """The model saved at `path`; a `ValueError` saying what is wrong with a bad file."""
    path = os.fspath(path)
    with open(path, "rb") as file:
        raw = file.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(
            f"{path}: not a valid model file (truncated or corrupted?): {error}"
        ) from None
    return _model_from(document, path)


def _model_from(document: Any, where: str) -> MLP:
    """Check a parsed document field by field and build its model."""
    if not isinstance(document, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(document).__name__}")
    expected_keys = {"format", "version", "architecture", "weights"}
    if set(document) != expected_keys:
        raise ValueError(
            f"{where}: expected the keys {sorted(expected_keys)}, got {sorted(document)}"
        )
    if document["format"] != FORMAT:
        raise ValueError(f"{where}: format is {document['format']!r}, expected {FORMAT!r}")
    version = document["version"]
    if type(version) is not int or version != VERSION:
        raise ValueError(f"{where}: unsupported version {version!r}; this library reads {VERSION}")
    model = _build(document["architecture"], where)
    try:
        model.load_state_dict(document["weights"])
    except ValueError as error:
        raise ValueError(f"{where}: bad weights: {error}") from None
    return model


def _build(architecture: Any, where: str) -> MLP:
    keys = {"nin", "nouts", "activation"}
    if not isinstance(architecture, dict) or set(architecture) != keys:
        got = sorted(architecture) if isinstance(architecture, dict) else architecture
        raise ValueError(f"{where}: architecture must hold {sorted(keys)}, got {got!r}")
    try:
        # seed=0: the weights are overwritten next, no need to draw fresh random numbers.
        return MLP(**architecture, seed=0)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: bad architecture: {error}") from None


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, as open() does.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    """Flush the rename itself to disk (POSIX; Windows cannot open a directory)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
