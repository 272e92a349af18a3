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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from server.cli.common import CliError

FORMAT_VERSION = 1

# What a model's arrays may hold, for :meth:`LoadedModel.check`: numpy's dtype kind and
# size (``f8``) by the word a message uses.
NUMBERS = "numbers"
FINITE = "finite numbers"
INTEGERS = "integers"
BYTES = "bytes"
_DTYPES = {NUMBERS: {"f4", "f8", "i4", "i8", "u4", "u8"},
           FINITE: {"f4", "f8", "i4", "i8", "u4", "u8"},
           INTEGERS: {"i4", "i8", "u4", "u8"}, BYTES: {"u1"}}


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
        """The id list ``name``; ``ValueError`` when its bytes and offsets disagree."""
        self.check({f"{name}__bytes": (BYTES, ""), f"{name}__offsets": (INTEGERS, "")})
        data = self.arrays[f"{name}__bytes"].tobytes()
        offsets = self.arrays[f"{name}__offsets"].tolist()
        if offsets[:1] != [0] or offsets[-1] != len(data) or any(
                b < a for a, b in itertools.pairwise(offsets)):
            raise ValueError(f"the offsets of {name} do not cut its bytes")
        return [data[a:b].decode() for a, b in itertools.pairwise(offsets)]

    def check(self, specs: dict[str, tuple[str | int, ...]]) -> None:
        """Each named array is of ``specs[name]``: what it holds (:data:`NUMBERS`,
        :data:`FINITE`, :data:`INTEGERS`, :data:`BYTES`), then its length along each axis:
        a number is exact, a name must agree wherever it is used (``"users"`` in
        ``hour_counts`` and ``weekday_counts``), ``""`` is any length. Raises ``KeyError``
        for a missing array and ``ValueError`` naming the first one that does not fit."""
        sizes: dict[str, int] = {}
        for name, (holds, *shape) in specs.items():
            array = self.arrays[name]
            if f"{array.dtype.kind}{array.dtype.itemsize}" not in _DTYPES[str(holds)] \
                    or array.ndim != len(shape):
                raise ValueError(f"array {name} holds {array.dtype} in {array.ndim} "
                                 f"dimensions, not {holds} in {len(shape)}")
            for axis, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
                expected = sizes.setdefault(want, got) if isinstance(want, str) else want
                if want != "" and got != expected:
                    raise ValueError(f"array {name} has {got} along axis {axis}, not "
                                     f"{expected}")
            if holds == FINITE and not np.isfinite(array).all():
                raise ValueError(f"array {name} holds NaN or infinite numbers")


def read_model(path: str, kind: str) -> LoadedModel:
    """Load a model of ``kind``; a file that is not one is a :class:`CliError`."""
    try:
        # Opened here: np.load(path) leaves its file open when the zip is truncated.
        with open(path, "rb") as f:
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):  # one .npy array, not a model
                raise ValueError("not an .npz file")
            with npz:
                arrays = {name: npz[name] for name in npz.files}
    except OSError as exc:
        raise CliError(exc.strerror or "cannot read a model", location=path) from exc
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        # EOFError: numpy's answer to an empty file.
        raise CliError(f"not a geopush {kind} model file", location=path) from exc
    try:
        header = json.loads(arrays.pop("header").tobytes())
    except (KeyError, ValueError) as exc:
        raise CliError(f"not a geopush {kind} model file", location=path) from exc
    if not isinstance(header, dict):
        raise CliError(f"not a geopush {kind} model file (its header is not an object)",
                       location=path)
    if header.get("format") != f"geopush.{kind}":
        raise CliError(f"not a geopush {kind} model (it is {header.get('format')!r})",
                       location=path)
    if header.get("version") != FORMAT_VERSION:
        raise CliError(f"model format version {header.get('version')} "
                       f"(this geopush reads {FORMAT_VERSION})", location=path)
    return LoadedModel(header, arrays)


@contextmanager
def damaged(path: str, kind: str) -> Iterator[None]:
    """Turn a model file whose header says ``kind`` but whose parts are missing or of
    the wrong shape (a hand-made or damaged file) into a :class:`CliError`, raised
    while the block builds the model from it."""
    try:
        yield
    except KeyError as exc:
        raise CliError(f"a damaged geopush {kind} model: it has no {exc}",
                       location=path) from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise CliError(f"a damaged geopush {kind} model: {exc}", location=path) from exc
