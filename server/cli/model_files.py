"""Model files of the learning commands: one ``.npz`` file (a zip of numpy arrays, read
with ``allow_pickle=False``, so loading runs no code) holding a JSON header (format name,
version, parameters, evaluation) and the model's arrays; id lists are stored as UTF-8
bytes with offsets. Written to a temporary name and renamed, so a reader never sees half
a model.
"""

from __future__ import annotations

import itertools
import json
import os
import zipfile
from typing import Any

import numpy as np
import numpy.typing as npt

from server.cli.common import CliError

FORMAT_VERSION = 1


def write_model(path: str, kind: str, header: dict[str, Any],
                arrays: dict[str, npt.NDArray[Any]], strings: dict[str, list[str]]) -> None:
    """Save a model of ``kind`` (``interests`` or ``sendtime``) to ``path``."""
    doc = {"format": f"geopush.{kind}", "version": FORMAT_VERSION, **header}
    payload: dict[str, npt.NDArray[Any]] = {
        "header": np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)}
    payload.update(arrays)
    for name, values in strings.items():
        encoded = [v.encode() for v in values]
        payload[f"{name}__bytes"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        payload[f"{name}__offsets"] = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(exc.strerror or "cannot write", location=path) from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class LoadedModel:
    """A model file's header and arrays."""

    def __init__(self, header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.header, self.arrays = header, arrays

    def strings(self, name: str) -> list[str]:
        data = self.arrays[f"{name}__bytes"].tobytes()
        offsets = self.arrays[f"{name}__offsets"].tolist()
        return [data[a:b].decode() for a, b in itertools.pairwise(offsets)]


def read_model(path: str, kind: str) -> LoadedModel:
    """Load a model of ``kind``; a file that is not one is a :class:`CliError`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except OSError as exc:
        raise CliError(exc.strerror or "cannot read a model", location=path) from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        raise CliError(f"not a geopush {kind} model file", location=path) from exc
    try:
        header = json.loads(arrays.pop("header").tobytes())
    except (KeyError, ValueError) as exc:
        raise CliError(f"not a geopush {kind} model file", location=path) from exc
    if header.get("format") != f"geopush.{kind}":
        raise CliError(f"not a geopush {kind} model (it is {header.get('format')!r})",
                       location=path)
    if header.get("version") != FORMAT_VERSION:
        raise CliError(f"model format version {header.get('version')} "
                       f"(this geopush reads {FORMAT_VERSION})", location=path)
    return LoadedModel(header, arrays)
