"""Atomic file writing: an interrupted run never leaves a half-written file behind.

Every writer of the project goes through :func:`atomic_path`, which also turns the operating
system's write errors (permission denied, read-only file system, no space left, a folder where a
file is expected) into one-line ``ValueError``s naming the path, with nothing partial left behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

import numpy as np

__all__ = ["H5_READ_ERRORS", "NPZ_READ_ERRORS", "apply_default_mode", "atomic_path", "check_writable", "os_reason", "read_npz", "write_npz"]

# Every member of a .npz the project writes carries this date (the zip format's earliest), not
# the time of writing, so that the same arrays always give the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def os_reason(exc: OSError) -> str:
    """The operating system's reason for ``exc`` in a few words ("Permission denied")."""
    return exc.strerror or str(exc) or type(exc).__name__


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Check that a file can be written at ``path`` (before any work is done); return it as a Path.

    Raises FileExistsError when ``path`` exists and not ``force``; ValueError when ``path`` is a
    folder (even with ``force``: a folder is never replaced by a file), when a parent is a file, or
    when the nearest existing folder above it is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: expected a file name to write, got a directory")
    if path.exists() and not force:
        raise FileExistsError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{path}: cannot be written: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: cannot be written: no write permission in {folder}")
    return path


def apply_default_mode(path: Path) -> None:
    """Give ``path`` the mode a plain ``open(path, "w")`` would: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file lives in the destination folder so that the final ``os.replace`` is an
    atomic rename on the same file system. On any exception the temporary file is removed and the
    destination is left untouched; an ``OSError`` (permission, full disk, ...) becomes a one-line
    ValueError naming ``path``. The suffix of ``path`` is kept (some writers key on it, e.g.
    Keras' ``.weights.h5``). The file gets the umask's mode after the writer is done, since some
    writers (safetensors) replace the temporary file rather than write into it.
    """
    path = check_writable(path, force)
    suffix = "".join(path.suffixes) or ".tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".partial{suffix}", dir=path.parent)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be written ({os_reason(exc)})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            apply_default_mode(tmp_path)
            os.replace(tmp_path, path)
        except OSError as exc:
            raise ValueError(f"{path}: could not be written ({os_reason(exc)}); nothing was written") from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_npz(handle: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to the open binary ``handle``, reproducibly.

    What ``np.savez`` writes (``np.load`` reads it back, ``allow_pickle=False``), but every member
    is dated 1980-01-01 instead of now, so the same arrays always give the same bytes.
    """
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


# What h5py raises on a damaged HDF5 file: OSError mostly, RuntimeError or KeyError when the
# damage is in an object header or a link (found by tests/faults/test_fuzz_loaders.py).
H5_READ_ERRORS = (OSError, RuntimeError, KeyError)

# What reading a damaged .npz can raise, besides ValueError: zipfile's own errors, a compressed
# member's zlib.error, an encrypted one's RuntimeError, an unknown method's NotImplementedError.
NPZ_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError)


def _read_npy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member, its header checked against its stored size before the data is read."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        if dtype.hasobject:
            raise ValueError(f"{info.filename}: holds Python objects (dtype {dtype}), which are never unpickled")
        n_bytes = math.prod(shape) * dtype.itemsize
        if n_bytes > info.file_size:
            raise ValueError(f"{info.filename}: declares {shape} {dtype} ({n_bytes} bytes) but stores {info.file_size}")
        data = member.read(n_bytes)
        if len(data) != n_bytes or member.read(1):  # reading to the end also checks the CRC
            raise ValueError(f"{info.filename}: expected {n_bytes} bytes of {shape} {dtype} data, got another size")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C").copy()


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` file, keyed by name (``W1.npy`` -> ``W1``); never unpickles.

    Each member's declared dtype and shape are checked against the size it actually stores before
    its data is read, so a damaged or crafted file cannot make this allocate more than the file
    holds. Raises one of :data:`NPZ_READ_ERRORS` on a damaged file (callers name the file).
    """
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{info.filename}: expected only .npy members")
            arrays[info.filename[: -len(".npy")]] = _read_npy_member(archive, info)
    return arrays
