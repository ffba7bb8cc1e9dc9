"""Snapshot files: the whole state of an engine, written atomically, read back exactly.

Why: a live-room backend restarts (deploys, crashes, moves hosts) in the middle of a
stream; viewers' dwell, windows, carts, timers, cooldowns and budgets must survive it,
and a file damaged on the way must be refused, never half loaded.

Layout of a file (all integers little-endian)::

    magic      8 bytes   b"SEGSNAP\\0"
    version    uint32    FORMAT_VERSION
    hlen       uint32    length of the header
    hsum       32 bytes  sha256 of the header (so sizes are trusted before any data is read)
    header     hlen      msgpack map: rules text, filename and fingerprint, state layout,
                         id maps, Python-side counters, and for every array its name,
                         dtype, shape, offset (from the data start) and byte length
    padding    to a multiple of 64 bytes
    data       the raw bytes of each array (C order), each starting at a multiple of 64
    checksum   32 bytes  sha256 of everything before it

Only the rows in use are written (viewer and room rows handed out, live timer-heap
entries); the capacities are in the header, and so are the sizes of the int-id indexes
(derived from the id maps, rebuilt on load), so a restored engine has the same arrays at
the same sizes (``stats()["memory"]`` is equal).
Writing goes to a temporary file in the target's directory, which is flushed, fsynced,
renamed over the target with ``os.replace`` and followed by an fsync of the directory:
a crash at any point leaves either the previous file or the new one, whole.

Reading checks, in order: magic (foreign file), version, sizes (truncated file),
header decoding, checksum (corrupt file), then that the stored rules still compile to
the stored state layout. Any failure raises :class:`SnapshotError` and no engine is
built. Untrusted input is safe to read: nothing is unpickled, every size is checked
against the file's length before anything is allocated.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec
import numpy as np

from ..errors import RulesError, SnapshotError
from ..runtime.store import SAVED

if TYPE_CHECKING:
    from ..runtime.core import EngineCore

__all__ = ["MAGIC", "FORMAT_VERSION", "save", "load"]

MAGIC = b"SEGSNAP\0"
FORMAT_VERSION = 2  # 2: timer-heap rows carry the viewer's arrival number (and VI its column)
_PREFIX = struct.Struct("<8sII32s")  # magic, version, header length, header sha256
_DIGEST = 32
_ALIGN = 64
_CHUNK = 8 << 20  # bytes per write/read call: bounded memory, and a crash can hit mid-array
_DTYPES = frozenset({"<i8", "<f8", "<u2"})  # the dtypes a Store holds (VN counters are uint16)
_BIG_INT = 1  # msgpack ext code: an int viewer id outside 64 bits, as decimal text



def _align(n: int) -> int:
    return -n % _ALIGN


# --- writing ------------------------------------------------------------------------------

def _write_chunk(f: BinaryIO, hasher: Any, data: memoryview | bytes) -> None:
    """Write and hash one piece (a seam for tests that simulate a crash mid-write)."""
    f.write(data)
    hasher.update(data)


def _raw(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array as a flat memoryview (also for zero rows)."""
    return memoryview(arr.reshape(-1).view(np.uint8))


def _write(f: BinaryIO, hasher: Any, data: memoryview | bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        _write_chunk(f, hasher, view[start:start + _CHUNK])


def _big_ints(obj: Any) -> Any:
    """Int viewer ids beyond 64 bits as msgpack extensions (msgpack ints stop at 64 bits)."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int) and not -(2**63) <= obj < 2**64:
        return msgspec.msgpack.Ext(_BIG_INT, str(obj).encode())
    if isinstance(obj, list):
        return [_big_ints(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _big_ints(v) for k, v in obj.items()}
    return obj


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == _BIG_INT:
        return int(bytes(data).decode())
    raise SnapshotError(f"unknown msgpack extension {code} in the snapshot header")


def _collect(core: "EngineCore") -> tuple[dict[str, Any], list[np.ndarray]]:
    """The header (rules, layout, array table, each part's state) and the arrays to write."""
    lay, rules = core.compiled.layout, core.rules
    arrays, specs, offset = [], [], 0
    for name, arr, capacity in core.store.saved_arrays(len(core.viewers), len(core.rooms)):
        specs.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape), "capacity": capacity,
                      "offset": offset, "nbytes": arr.nbytes})
        arrays.append(arr)
        offset += arr.nbytes + _align(arr.nbytes)
    from .. import __version__

    header = {
        "segengine": __version__,
        "rules": {"text": rules.text, "filename": rules.filename, "fingerprint": rules.fingerprint},
        "layout": {"vi": lay.vi, "vf": lay.vf, "vn": lay.vn, "ri": lay.ri},
        "arrays": specs,
        **core.save_parts(),  # viewers, rooms, strings, rejected, retention, firings
    }
    return header, arrays


def _encode_header(header: dict[str, Any]) -> bytes:
    """The header as msgpack; anything that does not encode is a :class:`SnapshotError`
    (ingest rejects strings that cannot be encoded, so this is a safety net, never a crash)."""
    try:
        try:
            return msgspec.msgpack.encode(header)
        except OverflowError:
            return msgspec.msgpack.encode(_big_ints(header))
    except (TypeError, ValueError, OverflowError) as err:  # UnicodeEncodeError is a ValueError
        raise SnapshotError(f"cannot write a snapshot: the state holds a value that does not encode ({err})") from err


def save(core: "EngineCore", path: str | os.PathLike) -> int:
    """Write the engine's whole state to ``path`` atomically; returns the file size in bytes.

    Cost: O(state size): about one second per GB here (hashing and writing), plus the
    fsync. The engine must not be used from another thread meanwhile (it never is:
    engines are single-threaded).
    """
    target = Path(path)
    directory = target.parent.resolve()
    header, arrays = _collect(core)
    hbytes = _encode_header(header)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(hbytes), hashlib.sha256(hbytes).digest()) + hbytes
    prefix += bytes(_align(len(prefix)))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            hasher = hashlib.sha256()
            _write(f, hasher, prefix)
            for arr in arrays:
                _write(f, hasher, _raw(arr))
                pad = _align(arr.nbytes)
                if pad:
                    _write(f, hasher, bytes(pad))
            f.write(hasher.digest())
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return size


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --- reading ------------------------------------------------------------------------------

def _read_exact(f: BinaryIO, view: memoryview, hasher: Any, where: str) -> None:
    for start in range(0, len(view), _CHUNK):
        part = view[start:start + _CHUNK]
        got = f.readinto(part)
        if got != len(part):
            raise SnapshotError(f"{where}: truncated file")
        hasher.update(part)


def _fail(path: Path, message: str) -> SnapshotError:
    return SnapshotError(f"{path}: {message}")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of a verified snapshot file.

    Each array is allocated at its full capacity and the stored rows are read straight
    into it (no copy); the rows past them are left uninitialized for :func:`load`.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise _fail(path, "no such snapshot file") from None
    except OSError as err:
        raise _fail(path, f"cannot open the snapshot: {err.strerror or err}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(_PREFIX.size)
        if raw[: len(MAGIC)] != MAGIC[: len(raw)]:
            raise _fail(path, "not a segengine snapshot (unknown magic bytes)")
        version = struct.unpack_from("<I", raw, len(MAGIC))[0] if len(raw) >= len(MAGIC) + 4 else None
        if version is not None and version != FORMAT_VERSION:
            raise _fail(path, f"snapshot format version {version}; this segengine reads version {FORMAT_VERSION}")
        if len(raw) < _PREFIX.size:
            raise _fail(path, f"truncated snapshot: {size} bytes, too short for the file header")
        _, _, hlen, hsum = _PREFIX.unpack(raw)
        if _PREFIX.size + hlen + _DIGEST > size:
            raise _fail(path, f"truncated snapshot: {size} bytes, the header alone needs {_PREFIX.size + hlen + _DIGEST}")
        hbytes = f.read(hlen)
        if hashlib.sha256(hbytes).digest() != hsum:
            raise _fail(path, "corrupt snapshot: header checksum mismatch")
        try:
            header = msgspec.msgpack.decode(hbytes, ext_hook=_ext_hook)
        except Exception as err:  # a header that passed its checksum but does not decode: a bad writer
            raise _fail(path, f"corrupt snapshot: the header does not decode ({err})") from None
        specs = _check_specs(path, header)
        start = _PREFIX.size + hlen
        start += _align(start)
        end = start + (specs[-1]["offset"] + specs[-1]["nbytes"] + _align(specs[-1]["nbytes"]) if specs else 0)
        if size < end + _DIGEST:
            raise _fail(path, f"truncated snapshot: {size} bytes, expected {end + _DIGEST}")
        if size > end + _DIGEST:
            raise _fail(path, f"corrupt snapshot: {size - end - _DIGEST} unexpected bytes at the end")
        hasher = hashlib.sha256()
        hasher.update(raw)
        hasher.update(hbytes)
        hasher.update(f.read(start - _PREFIX.size - hlen))
        arrays: dict[str, np.ndarray] = {}
        for spec in specs:
            rows, cols = spec["shape"]
            full = np.empty((spec["capacity"], cols), np.dtype(spec["dtype"]))  # rows past `rows`: filled by load()
            arr = full[:rows]
            _read_exact(f, _raw(arr), hasher, str(path))
            pad = _align(spec["nbytes"])
            if pad:
                hasher.update(f.read(pad))
            arrays[spec["name"]] = full
        digest = f.read(_DIGEST)
        if digest != hasher.digest():
            raise _fail(path, "corrupt snapshot: checksum mismatch (the file was damaged after it was written)")
    return header, arrays


def _check_specs(path: Path, header: Any) -> list[dict[str, Any]]:
    """The array table of a decoded header, every entry checked (shapes, dtypes, offsets)."""
    try:
        specs = header["arrays"]
        offset = 0
        names = []
        for spec in specs:
            dtype = np.dtype(spec["dtype"])
            shape = [int(x) for x in spec["shape"]]
            if spec["dtype"] not in _DTYPES or len(shape) != 2 or min(shape) < 0:
                raise ValueError(f"bad array {spec['name']!r}")
            if spec["offset"] != offset or spec["nbytes"] != shape[0] * shape[1] * dtype.itemsize:
                raise ValueError(f"bad extent of array {spec['name']!r}")
            if not shape[0] <= spec["capacity"] < 2**40:
                raise ValueError(f"bad capacity of array {spec['name']!r}")
            offset += spec["nbytes"] + _align(spec["nbytes"])
            names.append(spec["name"])
        if names != [name for name, _ in SAVED]:
            raise ValueError(f"unexpected arrays {names}")
        return specs
    except (KeyError, TypeError, ValueError) as err:
        raise _fail(path, f"corrupt snapshot: bad header ({err})") from None


def load(path: str | os.PathLike) -> "EngineCore":
    """An engine core built from a snapshot file (see the module docstring for the checks)."""
    from ..rules.load import load_rules
    from ..runtime.core import EngineCore

    path = Path(path)
    header, arrays = _read(path)
    try:
        rules_info = header["rules"]
        rules = load_rules(rules_info["text"], rules_info["filename"])
    except RulesError as err:
        raise _fail(path, f"the snapshot's rules no longer load in this segengine:\n{err}") from None
    except (KeyError, TypeError) as err:
        raise _fail(path, f"corrupt snapshot: bad header ({err!r})") from None
    if rules.fingerprint != rules_info.get("fingerprint"):
        raise _fail(path, "corrupt snapshot: the rules text does not match its fingerprint")
    core = EngineCore(rules, capacity=1)
    lay = core.compiled.layout
    stored = header.get("layout", {})
    for matrix in ("vi", "vf", "vn", "ri"):
        if stored.get(matrix) != getattr(lay, matrix):
            raise _fail(path, f"the snapshot's state layout ({matrix.upper()} columns) differs from what this "
                              f"segengine builds for its rules (written by segengine {header.get('segengine')})")
    try:
        rows = {spec["name"]: spec["shape"][0] for spec in header["arrays"]}
        core.load_parts(header, arrays, rows)
    except (KeyError, TypeError, ValueError) as err:
        raise _fail(path, f"corrupt snapshot: {err}") from None
    return core
