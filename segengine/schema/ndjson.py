"""NDJSON bytes straight to numpy columns: one Numba pass, no per-event Python work.

Why: ``decode_ndjson`` + ``Batch.from_events`` cost about 2.5 us per event, most of it
building one ``Event`` per line and then walking the list once per field. The scanner
here reads the fixed event schema directly from the bytes into preallocated columns.

Contract: :func:`scan_ndjson` returns a :class:`Scanned` only when
``decode_ndjson(data, fallback=False)`` succeeds *and* ``check_decoded`` accepts every
decoded event, and then every column holds exactly what those events hold (strings equal
once decoded, floats bit-identical to msgspec's, viewer ints kept apart from viewer
strings). On anything it does not handle, or anything invalid, it returns ``None``; the
caller then takes the msgspec path, which produces the exact error. Returning ``None``
is always safe; returning a wrong ``Scanned`` never is.

Division of work:

* The kernel (:func:`_scan`) validates the JSON grammar of every line, dispatches keys,
  parses numbers, finds string spans and interns them (open addressing over the raw byte
  spans, per field, in order of first appearance) and matches ``type``/``category``
  against the encoded names. It never decodes a string.
* Python then decodes each *distinct* raw string span once, with msgspec (one
  ``list[str]`` decode of all of them, so escapes and UTF-8 are judged by msgspec itself),
  and re-parses the few numbers outside the exact fast path with ``float(bytes)``
  (correctly rounded, like msgspec). A float is parsed in the kernel only in Clinger's
  exact case: decimal mantissa <= 2**53 and |power of ten| <= 22, one exact multiply or
  divide.

Mirrors of ``decode_ndjson`` (which joins the lines into one JSON array): leading and
trailing whitespace of the whole input (``bytes.strip``: space, \\t, \\n, \\r, \\x0b, \\x0c) is
ignored, but a blank line *between* events makes that decode fail, so the scanner returns
``None`` for it too. Empty (or whitespace-only) input gives a ``Scanned`` with ``n == 0``.
A UTF-8 byte order mark at the very start is ignored (as ``decode_ndjson`` ignores it).
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import msgspec
import numpy as np
from llvmlite import ir as llvmir
from numba import njit, types
from numba.extending import intrinsic

from ..config import BATCH_FLAGS
from ..kernels.primitives import PURE_PYTHON
from .fields import ALWAYS, FIELDS, NUM_MAX, TS_MAX, TS_MIN

__all__ = ["Scanned", "scan_ndjson"]


@dataclass
class Scanned:
    """The columns of a batch of events scanned from NDJSON (see :func:`scan_ndjson`)."""

    n: int                      # number of events (non-blank lines)
    type: np.ndarray            # int64[n], index into the type_names passed in
    ts: np.ndarray              # float64[n]
    viewer: np.ndarray          # int64[n]: int ids when viewer_uniques is None, else codes into
    #                             viewer_uniques; -1 where absent in both cases
    viewer_absent: np.ndarray   # bool[n], rows with no viewer (or JSON null)
    viewer_uniques: list[str] | None  # None: every present viewer id was a JSON integer
    room: np.ndarray            # int64[n] codes into room_uniques (room is always present)
    room_uniques: list[str]
    item: np.ndarray            # int64[n] codes into item_uniques, -1 absent
    item_uniques: list[str]
    text: np.ndarray            # int64[n] codes into text_uniques, -1 absent
    text_uniques: list[str]
    category: np.ndarray        # int64[n]: 0 absent, i + 1 for categories[i], -1 any other string
    price: np.ndarray           # float64[n], NaN absent
    amount: np.ndarray          # float64[n], NaN absent


_FLAGS = {**BATCH_FLAGS}

# Keys: the event schema's fields (schema/fields.py), in bit order of the kernel's `seen` mask.
_KEYS = tuple(f.name for f in FIELDS)
K_TYPE, K_TS, K_VIEWER, K_ROOM, K_ITEM, K_CATEGORY, K_PRICE, K_AMOUNT, K_TEXT = (
    _KEYS.index(k) for k in ("type", "ts", "viewer", "room", "item", "category", "price", "amount", "text"))
# Keys are matched without hashing: candidates by first byte, then one 8-byte compare.
_KEY_WORD = np.array([int.from_bytes(k.encode().ljust(8, b"\0"), "little", signed=True) for k in _KEYS], np.int64)
_KEY_LEN = np.array([len(k) for k in _KEYS], np.int64)
_KEY_FIRST = np.full(256, -1, np.int64)  # first byte -> first candidate key, then _KEY_NEXT[key]
_KEY_NEXT = np.full(len(_KEYS), -1, np.int64)
for _k in reversed(range(len(_KEYS))):
    _KEY_NEXT[_k] = _KEY_FIRST[ord(_KEYS[_k][0])]
    _KEY_FIRST[ord(_KEYS[_k][0])] = _k
# Rows of the int column block; string values are hashed and interned under these field ids.
C_TYPE, C_VIEWER, C_ROOM, C_ITEM, C_TEXT, C_CATEGORY, C_ABSENT = range(7)
# Key -> int column of a string value (-1: not a string field), key -> float column (-1: none),
# by each field's kind; the float columns are the time, then the numbers, in the table's order.
_SCOL = np.array([{"type": C_TYPE, "id": C_VIEWER, "room": C_ROOM, "str": C_ITEM, "category": C_CATEGORY,
                   "text": C_TEXT}.get(f.kind, -1) for f in FIELDS], np.int64)
_FLOATS = [k for k, f in enumerate(FIELDS) if f.kind in ("time", "num")]
_FCOL = np.array([_FLOATS.index(k) if k in _FLOATS else -1 for k in range(len(FIELDS))], np.int64)
_REQUIRED = sum(1 << k for k, f in enumerate(FIELDS) if f.required == ALWAYS)
# the scanner's columns are one per field: a schema this file does not know stops the import
assert len(_KEYS) <= 63 and all(len(k) <= 8 for k in _KEYS), "scanner keys: at most 63, of at most 8 bytes"
assert sorted(c for c in _SCOL.tolist() if c >= 0) == [C_TYPE, C_VIEWER, C_ROOM, C_ITEM, C_TEXT, C_CATEGORY]
assert [FIELDS[k].kind for k in _FLOATS] == ["time", "num", "num"] and _KEYS[K_PRICE] == "price"
_POW10 = np.array([10.0 ** k for k in range(23)])  # all exact
_LITS = np.frombuffer(b"nulltruefalse", np.uint8).copy()
_TWO53 = 2 ** 53
_BIG = 922337203685477580  # w * 10 + 9 still fits int64 below this
_FIX_VIEWER = 3  # fix-up column tag for a viewer int outside the fast range

# Hashing: 8 bytes at a time, multiply and fold (int64 arithmetic wraps), then mixed with the field.
_M1 = -49064778989728563  # 0xff51afd7ed558ccd as int64
_M2 = -4265267296055464877  # 0xc4ceb9fe1a85ec53 as int64
_MASK64 = (1 << 64) - 1
# Byte-parallel tests on 8 bytes (SWAR): a byte repeated 8 times (0x80... as int64).
_B01, _B20, _B22, _B5C = 0x0101010101010101, 0x2020202020202020, 0x2222222222222222, 0x5C5C5C5C5C5C5C5C
_B80 = 0x8080808080808080 - (1 << 64)

# Kernel state slots (int64 array `st`).
W = 8  # width of a row of the interned-span table and of the name table
S_NENT, S_NFIX, S_VMODE, S_COUNT = 0, 1, 2, 3  # S_COUNT + column: next code of that field
_VMODE_INT, _VMODE_STR = 1, 2


# --- kernel --------------------------------------------------------------------------------------
# Helpers take raw pointers (CPointer), not arrays: an array passed to a function or rebound in
# a loop is reference-counted (atomic operations), which costs more than the work done here;
# the arrays stay alive in _scan, which owns them. Hot helpers are forceinline (LLVM
# alwaysinline): compiled and typed once each, unlike inline="always" (Numba IR inlining,
# typed again at every call site, about twice the compile time). Byte tricks assume a
# little-endian machine (scan_ndjson returns None elsewhere).
if PURE_PYTHON:
    # NUMBA_DISABLE_JIT=1: the scanner runs as plain Python. A pointer is a ctypes pointer (its
    # items are Python ints and floats); the int64 hash arithmetic, which wraps in the kernel,
    # uses the Python twins (_hash and _mix are replaced below, after the kernel).
    def _u8p(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_uint8))

    def _i64p(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_int64))

    def _f64p(addr):
        return ctypes.cast(int(addr), ctypes.POINTER(ctypes.c_double))

    def _ld64(p, a):
        """The 8 bytes at p + a as a little-endian int64 (unaligned load)."""
        return ctypes.c_int64.from_address(ctypes.cast(p, ctypes.c_void_p).value + int(a)).value

    def _ctz(x):
        """Number of trailing zero bits of a nonzero int64."""
        x = int(x)
        return (x & -x).bit_length() - 1

else:
    @intrinsic
    def _u8p(typingctx, addr):
        sig = types.CPointer(types.uint8)(addr)
        return sig, lambda context, builder, sig, args: builder.inttoptr(
            args[0], context.get_value_type(sig.return_type))

    @intrinsic
    def _i64p(typingctx, addr):
        sig = types.CPointer(types.int64)(addr)
        return sig, lambda context, builder, sig, args: builder.inttoptr(
            args[0], context.get_value_type(sig.return_type))

    @intrinsic
    def _f64p(typingctx, addr):
        sig = types.CPointer(types.float64)(addr)
        return sig, lambda context, builder, sig, args: builder.inttoptr(
            args[0], context.get_value_type(sig.return_type))

    @intrinsic
    def _ld64(typingctx, p, a):
        """The 8 bytes at p + a as a little-endian int64 (unaligned load)."""
        sig = types.int64(p, a)

        def codegen(context, builder, sig, args):
            ptr = builder.bitcast(builder.gep(args[0], [args[1]]), llvmir.IntType(64).as_pointer())
            return builder.load(ptr, align=1)

        return sig, codegen

    @intrinsic
    def _ctz(typingctx, x):
        """Number of trailing zero bits of a nonzero int64."""
        sig = types.int64(types.int64)

        def codegen(context, builder, sig, args):
            return builder.cttz(args[0], llvmir.Constant(llvmir.IntType(1), 1))

        return sig, codegen


@njit(forceinline=True, **_FLAGS)
def _word(p, a, n, size):
    """Bytes p[a:a + n] (1 <= n <= 8) as a little-endian int64, zero-padded; never reads p[size:]."""
    if a + 8 <= size:
        x = _ld64(p, a)
    else:
        x = 0
        for k in range(n):
            x |= np.int64(p[a + k]) << (8 * k)
    if n < 8:
        x &= (1 << (8 * n)) - 1
    return x


@njit(forceinline=True, **_FLAGS)
def _hash(p, s, e, size):
    """Hash of the bytes p[s:e], a word at a time (Python twin: _hash_py)."""
    h = e - s
    while s < e:
        h = (h ^ _word(p, s, e - s if e - s < 8 else 8, size)) * _M1
        h ^= (h >> 32) & 0xFFFFFFFF
        s += 8
    return h


@njit(forceinline=True, **_FLAGS)
def _ws(p, i, hi):
    """First index >= i that is not JSON whitespace inside a line (space, tab, CR)."""
    while i < hi:
        c = p[i]
        if c != 32 and c != 9 and c != 13:
            break
        i += 1
    return i


@njit(forceinline=True, **_FLAGS)
def _mix(h, f):
    """Slot hash of a string hash ``h`` in field ``f``."""
    m = (h ^ f) * _M2
    return m ^ ((m >> 32) & 0xFFFFFFFF)


@njit(forceinline=True, **_FLAGS)
def _hex4(p, k, hi):
    """Value of the 4 hex digits p[k:k + 4], or -1."""
    if k + 4 > hi:
        return -1
    v = 0
    for m in range(k, k + 4):
        c = p[m]
        if 48 <= c <= 57:
            v = v * 16 + (c - 48)
        elif 97 <= (c | 32) <= 102:
            v = v * 16 + ((c | 32) - 87)
        else:
            return -1
    return v


@njit(forceinline=True, **_FLAGS)
def _str(p, i, hi):
    """The JSON string whose quote is p[i]: (index after it or -1, flags: 1 escapes, 2 non-ASCII).

    -1 where msgspec fails: a control character, an invalid escape, a lone surrogate
    escape. UTF-8 is not checked here (see _utf8)."""
    j = i + 1
    fl = 0
    while j + 8 <= hi:  # 8 bytes at a time up to the first quote, backslash, control or non-ASCII byte
        x = _ld64(p, j)
        t = x ^ _B22
        u = x ^ _B5C
        sp = ((t - _B01) & ~t) | ((u - _B01) & ~u) | ((x - _B20) & ~x) | x
        sp &= _B80
        if sp == 0:
            j += 8
            continue
        j += _ctz(sp) >> 3
        if p[j] == 34:
            return j + 1, fl
        break
    while j < hi:  # one byte at a time
        c = p[j]
        if c == 34:
            return j + 1, fl
        if c < 32:
            break
        if c >= 128:
            fl |= 2
        elif c == 92:
            fl |= 1
            d = p[j + 1] if j + 1 < hi else 0
            if d == 117:  # \uXXXX; a surrogate must be the first of a pair
                v = _hex4(p, j + 2, hi)
                if 0xD800 <= v <= 0xDBFF and j + 8 < hi and p[j + 6] == 92 and p[j + 7] == 117 \
                        and 0xDC00 <= _hex4(p, j + 8, hi) <= 0xDFFF:
                    j += 6
                elif v < 0 or 0xD800 <= v <= 0xDFFF:
                    break
                j += 5
            elif d == 34 or d == 92 or d == 47 or d == 98 or d == 102 or d == 110 or d == 114 or d == 116:
                j += 1
            else:
                break
        j += 1
    return -1, fl


@njit(**_FLAGS)
def _utf8(p, s, e):
    """Whether p[s:e] is valid UTF-8 (as Python decodes it: no overlong forms, no surrogates)."""
    k = s
    while k < e:
        c = p[k]
        if c < 128:
            k += 1
            continue
        lo, up, n = 128, 191, 3
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
            lo = 160 if c == 0xE0 else 128
            up = 159 if c == 0xED else 191
        elif 0xF0 <= c <= 0xF4:
            lo = 144 if c == 0xF0 else 128
            up = 143 if c == 0xF4 else 191
        else:
            return False
        if k + n >= e or not lo <= p[k + 1] <= up:
            return False
        for m in range(k + 2, k + n + 1):
            if not 128 <= p[m] <= 191:
                return False
        k += n + 1
    return True


@njit(forceinline=True, **_FLAGS)
def _find(p, s, e, size, m, f, tab, mask, meta, mp, msize):
    """Row of ``meta`` (rows of W: hash, start, end, field, code, first word, ...) holding the
    bytes p[s:e] of field ``f`` (``m``: their slot hash; a row's bytes are in mp[:msize]), else
    -1 - the free slot. The first 8 bytes are compared in the row itself: the bytes of the
    first occurrence, far back in the data, are read only for longer strings."""
    slot = m & mask
    n = e - s
    w0 = _word(p, s, n if n < 8 else 8, size) if n > 0 else 0
    while True:
        x = tab[slot] - 1
        if x < 0:
            return -1 - slot
        r = x * W
        if meta[r] == m and meta[r + 5] == w0 and meta[r + 3] == f and meta[r + 2] - meta[r + 1] == n:
            a = meta[r + 1]
            k = 8
            while k < n and _word(mp, a + k, n - k if n - k < 8 else 8, msize) == _word(p, s + k, n - k if n - k < 8 else 8, size):
                k += 8
            if k >= n:
                return x
        slot = (slot + 1) & mask


@njit(forceinline=True, **_FLAGS)
def _num(p, i, hi):
    """The JSON number at p[i]: (end or -1, decimal mantissa, power of ten, flags).

    flags: 1 negative, 2 integer syntax (no fraction, no exponent), 4 mantissa too long to
    be held exactly (then only the syntax was checked)."""
    flags = 2
    if p[i] == 45:
        flags = 3
        i += 1
    w = 0
    e10 = 0
    if i < hi and p[i] == 48:
        i += 1
    elif i < hi and 49 <= p[i] <= 57:
        while i < hi and 48 <= p[i] <= 57:
            if w < _BIG:
                w = w * 10 + (p[i] - 48)
            else:
                flags |= 4
            i += 1
    else:
        return -1, w, e10, flags
    if i < hi and p[i] == 46:  # fraction
        flags &= ~2
        i += 1
        if i >= hi or not 48 <= p[i] <= 57:
            return -1, w, e10, flags
        while i < hi and 48 <= p[i] <= 57:
            if w < _BIG:
                w = w * 10 + (p[i] - 48)
                e10 -= 1
            else:
                flags |= 4
            i += 1
    if i < hi and (p[i] | 32) == 101:  # exponent
        flags &= ~2
        i += 1
        sign = 1
        if i < hi and (p[i] == 43 or p[i] == 45):
            sign = 44 - p[i]
            i += 1
        if i >= hi or not 48 <= p[i] <= 57:
            return -1, w, e10, flags
        ex = 0
        while i < hi and 48 <= p[i] <= 57:
            if ex < 100000:
                ex = ex * 10 + (p[i] - 48)
            i += 1
        e10 += sign * ex
    return i, w, e10, flags


@njit(forceinline=True, **_FLAGS)
def _lit(p, i, hi):
    """End of the literal null, true or false at p[i], or -1."""
    c = p[i]
    a = 0 if c == 110 else (4 if c == 116 else 8)
    n = 5 if c == 102 else 4
    if i + n > hi:
        return -1
    for k in range(n):
        if p[i + k] != _LITS[a + k]:
            return -1
    return i + n


@njit(**_FLAGS)
def _skip(p, i, hi):
    """End of the JSON value at p[i] (the value of a key that is not a field), or -1.

    Checked like msgspec checks a skipped value, and stricter: -1 also on invalid UTF-8 in a
    string (msgspec does not check it there) and on nesting deeper than 32."""
    kinds = 0  # one bit per open container: 1 object, 0 array
    depth = 0
    key = False
    while True:
        i = _ws(p, i, hi)
        if i >= hi:
            return -1
        c = p[i]
        if key:
            if c != 34:
                return -1
            s = i + 1
            i, fl = _str(p, i, hi)
            if i < 0 or (fl & 2 and not _utf8(p, s, i - 1)):
                return -1
            i = _ws(p, i, hi)
            if i >= hi or p[i] != 58:
                return -1
            i += 1
            key = False
            continue
        if c == 123 or c == 91:
            if depth == 32:
                return -1
            kinds = kinds * 2 + (1 if c == 123 else 0)
            depth += 1
            i = _ws(p, i + 1, hi)
            if i < hi and p[i] == c + 2:  # {} or []: a complete value
                kinds >>= 1
                depth -= 1
                i += 1
            else:
                key = c == 123
                continue
        elif c == 34:
            s = i + 1
            i, fl = _str(p, i, hi)
            if i >= 0 and fl & 2 and not _utf8(p, s, i - 1):
                return -1
        elif c == 45 or 48 <= c <= 57:
            i = _num(p, i, hi)[0]
        else:
            i = _lit(p, i, hi)
        if i < 0:
            return -1
        while depth > 0:  # after a value: a comma, or closing brackets
            i = _ws(p, i, hi)
            if i >= hi:
                return -1
            c = p[i]
            i += 1
            if c == 44:
                key = (kinds & 1) == 1
                break
            if c != (125 if kinds & 1 else 93):
                return -1
            kinds >>= 1
            depth -= 1
        if depth == 0:
            return i


@njit(forceinline=True, **_FLAGS)
def _line(p, i, hi, size, row, n, icol, fcol, ent, tab, tmask, fix, st, q, qsize, nmeta, ntab, nmask):
    """Parse the event line at p[i]; returns the index after it and its trailing blanks, or -1.

    Columns are rows of ``n`` values: icol[c * n + row], fcol[c * n + row]."""
    icol[C_VIEWER * n + row] = -1
    icol[C_ITEM * n + row] = -1
    icol[C_TEXT * n + row] = -1
    icol[C_CATEGORY * n + row] = 0
    fcol[n + row] = np.nan
    fcol[2 * n + row] = np.nan
    icol[C_ABSENT * n + row] = 1
    i = _ws(p, i, hi)
    if i >= hi or p[i] != 123:
        return -1
    i = _ws(p, i + 1, hi)
    seen = 0
    need_viewer = True
    while True:
        if i >= hi or p[i] != 34:
            return -1
        s = i + 1
        k = _KEY_FIRST[p[s]] if s < hi else -1
        while k >= 0:  # an exact field name, unescaped
            e = s + _KEY_LEN[k]
            if e < hi and p[e] == 34 and _word(p, s, _KEY_LEN[k], size) == _KEY_WORD[k]:
                i = e + 1
                break
            k = _KEY_NEXT[k]
        if k < 0:  # some other key: msgspec ignores it and its value
            i, fl = _str(p, i, hi)
            if i < 0 or fl & 1 or (fl & 2 and not _utf8(p, s, i - 1)):  # escaped: may spell a field name
                return -1
        i = _ws(p, i, hi)
        if i >= hi or p[i] != 58:
            return -1
        i = _ws(p, i + 1, hi)
        if i >= hi:
            return -1
        c = p[i]
        if k < 0:  # not a field: msgspec skips the value, after checking it
            i = _skip(p, i, hi)
        else:
            bit = 1 << k
            if seen & bit:  # duplicate key (msgspec keeps the last one)
                return -1
            seen |= bit
            if c == 34:  # a string
                col = _SCOL[k]
                if col < 0:
                    return -1
                s = i + 1
                i, fl = _str(p, i, hi)
                if i < 0:
                    return -1
                e = i - 1
                m = _mix(_hash(p, s, e, size), col)
                x = -1
                if col == C_TYPE or (col == C_CATEGORY and (fl & 1) == 0):  # a known name?
                    x = _find(p, s, e, size, m, col, ntab, nmask, nmeta, q, qsize)
                    if x >= 0:
                        icol[col * n + row] = nmeta[x * W + 4]
                        if nmeta[x * W + 6]:
                            need_viewer = False
                    elif col == C_TYPE:
                        return -1
                if x < 0:  # intern the raw span; Python decodes each distinct one once
                    if col == C_VIEWER:
                        if st[S_VMODE] == _VMODE_INT:
                            return -1
                        st[S_VMODE] = _VMODE_STR
                        icol[C_ABSENT * n + row] = 0
                    x = _find(p, s, e, size, m, col, tab, tmask, ent, p, size)
                    if x < 0:
                        tab[-1 - x] = st[S_NENT] + 1
                        x = st[S_NENT]
                        st[S_NENT] = x + 1
                        ent[x * W] = m
                        ent[x * W + 1] = s
                        ent[x * W + 2] = e
                        ent[x * W + 3] = col
                        ent[x * W + 4] = st[S_COUNT + col]
                        ent[x * W + 5] = _word(p, s, e - s if e - s < 8 else 8, size) if e > s else 0
                        st[S_COUNT + col] += 1
                    # categories matched only after decoding: -2 - code, mapped in Python
                    code = ent[x * W + 4]
                    icol[col * n + row] = code if col != C_CATEGORY else -2 - code
            elif c == 110:  # null: absent
                i = _lit(p, i, hi)
                if bit & _REQUIRED:
                    return -1
            elif c == 45 or 48 <= c <= 57:
                j, w, e10, flags = _num(p, i, hi)
                if j < 0:
                    return -1
                fc = _FCOL[k]
                slow = (flags & 4) != 0
                if k == K_VIEWER:
                    if (flags & 2) == 0 or st[S_VMODE] == _VMODE_STR:
                        return -1
                    st[S_VMODE] = _VMODE_INT
                    icol[C_ABSENT * n + row] = 0
                    icol[C_VIEWER * n + row] = -w if flags & 1 else w
                    fc = _FIX_VIEWER
                elif fc < 0:
                    return -1
                elif slow or w > _TWO53 or e10 < -22 or e10 > 22:
                    slow = True
                elif flags & 2:  # an int: msgspec converts the int, so -0 is +0.0
                    fcol[fc * n + row] = float(-w if flags & 1 else w)
                else:  # Clinger's exact case: one correctly rounded operation
                    v = float(w) * _POW10[e10] if e10 >= 0 else float(w) / _POW10[-e10]
                    fcol[fc * n + row] = -v if flags & 1 else v
                if slow:  # re-parsed in Python
                    x = st[S_NFIX]
                    st[S_NFIX] = x + 1
                    fix[4 * x] = row
                    fix[4 * x + 1] = fc
                    fix[4 * x + 2] = i
                    fix[4 * x + 3] = j
                i = j
            else:  # true, false, arrays, objects: never valid for a field
                return -1
        if i < 0:
            return -1
        i = _ws(p, i, hi)
        if i >= hi:
            return -1
        c = p[i]
        i = _ws(p, i + 1, hi)
        if c == 125:
            break
        if c != 44:
            return -1
    if (seen & _REQUIRED) != _REQUIRED or (need_viewer and icol[C_ABSENT * n + row]):
        return -1
    return i


@njit(**_FLAGS)
def _zeros(n):
    a = np.empty(n, np.int64)
    for k in range(n):
        a[k] = 0
    return a


@njit(**_FLAGS)
def _grow(a):
    """``a`` (int64, 1-d) twice as long, the old values first."""
    b = np.empty(2 * a.size, np.int64)
    for k in range(a.size):
        b[k] = a[k]
    return b


@njit(**_FLAGS)
def _scan(buf, nbuf, nmeta, ntab):
    """Scan NDJSON bytes into columns.

    Returns (status, rows, icol, fcol, ent, fix, st): status -1 when every line was taken, else
    the 0-based line where the scan gave up. icol: 7 rows of nmax (type, viewer, room, item, text,
    category, viewer absent); fcol: 3 rows of nmax float64 bits (ts, price, amount); ent:
    interned spans, rows of W (hash, start, end, field, code, first 8 bytes, -, -); fix: numbers
    to re-parse in Python, rows of 4 (row, column, start, end); st: counters (S_*)."""
    p = _u8p(buf.ctypes.data)
    lo = 0
    hi = buf.size
    while lo < hi and (p[lo] == 32 or 9 <= p[lo] <= 13):  # bytes.strip()'s whitespace
        lo += 1
    while hi > lo and (p[hi - 1] == 32 or 9 <= p[hi - 1] <= 13):
        hi -= 1
    nmax = np.int64(1)  # lines (np.int64: no literal type, one compiled _line)
    for k in range(lo, hi):
        nmax += p[k] == 10
    # every array is int64 and 1-d (one allocation routine to compile); fcol holds float64 bits
    icol = np.empty(7 * nmax, np.int64)
    fcol = np.empty(3 * nmax, np.int64)
    ent = np.empty(128 * W, np.int64)  # rows: half the slots of tab
    tab = _zeros(np.int64(256))  # np.int64: no literal type, one compiled _zeros
    fix = np.empty(64 * 4, np.int64)
    st = _zeros(np.int64(S_COUNT + 6))
    pi, pf, pt, pe, px, ps = (_i64p(icol.ctypes.data), _f64p(fcol.ctypes.data), _i64p(tab.ctypes.data),
                              _i64p(ent.ctypes.data), _i64p(fix.ctypes.data), _i64p(st.ctypes.data))
    q, pm, pn = _u8p(nbuf.ctypes.data), _i64p(nmeta.ctypes.data), _i64p(ntab.ctypes.data)
    row = np.int64(0)
    i = lo
    ok = True
    size, qsize, nmask = buf.size, nbuf.size, ntab.size - 1
    while ok and i < hi:
        if 2 * (st[S_NENT] + 5) > tab.size:  # room for the 5 spans a line may add, load <= 1/2
            ent = _grow(ent)
            pe = _i64p(ent.ctypes.data)
            tab = _zeros(2 * tab.size)
            pt = _i64p(tab.ctypes.data)
            for x in range(st[S_NENT]):
                slot = ent[x * W] & (tab.size - 1)
                while tab[slot] != 0:
                    slot = (slot + 1) & (tab.size - 1)
                tab[slot] = x + 1
        if 4 * (st[S_NFIX] + 4) > fix.size:
            fix = _grow(fix)
            px = _i64p(fix.ctypes.data)
        # lines until a table may fill up; no array (so no reference counting) in this loop
        tmask, nent_max, nfix_max = tab.size - 1, tab.size // 2 - 5, fix.size // 4 - 4
        while i < hi and st[S_NENT] <= nent_max and st[S_NFIX] <= nfix_max:
            i = _line(p, i, hi, size, row, nmax, pi, pf, pe, pt, tmask, px, ps, q, qsize, pm, pn, nmask)
            if i < 0 or (i < hi and p[i] != 10):
                ok = False
                break
            row += 1
            i += 1
    return -1 if ok else row, row, icol, fcol, ent, fix, st


if PURE_PYTHON:
    def _hash(p, s, e, size):
        """Hash of the bytes p[s:e] (plain Python: the twin, whose int64 arithmetic wraps)."""
        return _hash_py(bytes(p[s:e]))

    def _mix(h, f):
        """Slot hash of a string hash ``h`` in field ``f`` (plain Python: the twin)."""
        return _mix_py(int(h), int(f))


# --- Python side ---------------------------------------------------------------------------------
def _i64(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >> 63 else x


def _hash_py(b: bytes) -> int:
    """Python twin of the kernel's _hash."""
    h = len(b)
    for k in range(0, len(b), 8):
        h = _i64((h ^ int.from_bytes(b[k:k + 8].ljust(8, b"\0"), "little", signed=True)) * _M1)
        h ^= (h >> 32) & 0xFFFFFFFF
    return h


def _mix_py(h: int, f: int) -> int:
    """Python twin of the kernel's _mix."""
    m = _i64((h ^ f) * _M2)
    return m ^ ((m >> 32) & 0xFFFFFFFF)


def _seedable(name: str) -> bytes | None:
    """UTF-8 of a name a raw (unescaped) JSON string can equal byte for byte, else None."""
    try:
        b = name.encode()
    except UnicodeEncodeError:  # lone surrogates
        return None
    if any(c < 32 or c == 34 or c == 92 for c in b):
        return None
    return b


@lru_cache(maxsize=32)
def _name_tables(type_names: tuple[str, ...], room_types: frozenset[str], categories: tuple[str, ...]):
    """(nbuf, nmeta, ntab, category codes): the names the kernel matches raw spans against.

    nmeta rows of W: (mixed hash, start in nbuf, end, kind, code, first 8 bytes, is a room type,
    0); kinds: C_TYPE (code: index in type_names) and C_CATEGORY (code: i + 1).
    First occurrence wins. ntab: open-addressing slots holding row + 1."""
    rows, parts, seen, off = [], [], set(), 0
    for kind, names, base in ((C_TYPE, type_names, 0), (C_CATEGORY, categories, 1)):
        for idx, name in enumerate(names):
            b = _seedable(name)
            if b is None or (kind, b) in seen:
                continue
            seen.add((kind, b))
            rows.append((_mix_py(_hash_py(b), kind), off, off + len(b), kind, idx + base,
                         int.from_bytes(b[:8].ljust(8, b"\0"), "little", signed=True),
                         int(kind == C_TYPE and name in room_types), 0))
            parts.append(b)
            off += len(b)
    nbuf = np.frombuffer(b"".join(parts), np.uint8)  # read-only, like the data: one compiled type
    nmeta = np.array(rows, np.int64).reshape(len(rows), W)
    size = 16
    while size < 2 * len(rows) + 2:
        size *= 2
    ntab = np.zeros(size, np.int64)
    for x, row in enumerate(rows):
        slot = row[0] & (size - 1)
        while ntab[slot]:
            slot = (slot + 1) & (size - 1)
        ntab[slot] = x + 1
    cat_code: dict[str, int] = {}
    for idx, name in enumerate(categories):
        cat_code.setdefault(name, idx + 1)
    nmeta.setflags(write=False)  # shared by every call (and thread)
    ntab.setflags(write=False)
    return nbuf, nmeta, ntab, cat_code


_str_list = msgspec.json.Decoder(list[str])
_LITTLE_ENDIAN = sys.byteorder == "little"
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_BOM = b"\xef\xbb\xbf"


def scan_ndjson(data: bytes, type_names: Sequence[str], room_types: Collection[str],
                categories: Sequence[str], check_ranges: bool = True) -> Scanned | None:
    """Columns of the events in NDJSON ``data``, or ``None`` to take the msgspec path.

    ``type`` becomes its index in ``type_names``; ``category`` 0 when absent, ``i + 1`` for
    ``categories[i]``, -1 for any other string; other strings become codes into per-field
    lists of distinct values (in order of first appearance; a string spelled two ways, e.g.
    with and without escapes, may appear twice). Floats are bit-identical to msgspec's.

    ``None`` whenever some line is invalid (JSON, schema or
    :func:`segengine.schema.events.check_decoded`), and also for valid but unusual input that is
    left to msgspec: a duplicate key, an escaped key, invalid UTF-8 in an ignored key or
    value, ignored values nested deeper than 32, viewer ids mixing JSON ints and strings,
    viewer ints outside int64, an escaped ``type`` or one not spellable raw, a blank line
    between events (that batch decode fails too), two objects on one line or a raw newline
    inside a string (``decode_ndjson`` reads those as commas), a big-endian machine.
    Empty or whitespace-only ``data`` gives ``n == 0``.

    ``check_ranges=False`` skips the number ranges of ``check_decoded`` (``ts`` in
    ``[TS_MIN, TS_MAX)``, ``|price|``, ``|amount| < NUM_MAX``): for tests of the number parser.
    """
    if not _LITTLE_ENDIAN:
        return None
    if not isinstance(data, bytes):
        data = bytes(data)
    if data[:3] == _BOM:  # a UTF-8 byte order mark opening the input is ignored, as decode_ndjson does
        data = data[3:]
    buf = np.frombuffer(data, np.uint8)
    nbuf, nmeta, ntab, cat_code = _name_tables(tuple(type_names), frozenset(room_types), tuple(categories))
    status, n, icol, fcol, ent, fix, st = _scan(buf, nbuf, nmeta, ntab)
    if status >= 0:
        return None
    n = int(n)
    icol = icol.reshape(7, -1)
    fcol = fcol.view(np.float64).reshape(3, -1)
    # every distinct raw string span, decoded once by msgspec (escapes, UTF-8 judged by it)
    n_ent = int(st[S_NENT])
    uniques: list[list[str]] = [[] for _ in range(6)]
    if n_ent:
        ent = ent.reshape(-1, W)[:n_ent]
        spans = [data[a - 1:b + 1] for a, b in zip(ent[:, 1].tolist(), ent[:, 2].tolist())]
        try:
            strs = _str_list.decode(b"[" + b",".join(spans) + b"]")
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
            return None
        for f, s in zip(ent[:, 3].tolist(), strs):
            uniques[f].append(s)
    # numbers outside the exact fast path
    n_fix = int(st[S_NFIX])
    if n_fix:
        for row, col, a, b in fix.reshape(-1, 4)[:n_fix].tolist():
            if col == _FIX_VIEWER:
                v = int(data[a:b])
                if not _INT64_MIN <= v <= _INT64_MAX:
                    return None
                icol[C_VIEWER, row] = v
            else:
                v = float(data[a:b])
                if not math.isfinite(v):  # msgspec: "Number out of range"
                    return None
                fcol[col, row] = v
    # the ranges check_decoded() enforces (ts in [TS_MIN, TS_MAX), |price|, |amount| < NUM_MAX):
    # outside them, the msgspec path names the row (NaN fails the ts test; absent numbers are NaN)
    if check_ranges and n:
        ts = fcol[0, :n]
        if not (ts.min() >= TS_MIN and ts.max() < TS_MAX) or (np.abs(fcol[1:, :n]) >= NUM_MAX).any():
            return None
    category = icol[C_CATEGORY, :n]
    if uniques[C_CATEGORY]:  # strings not matched in the kernel (unknown, escaped): by value
        lut = np.array([cat_code.get(s, -1) for s in uniques[C_CATEGORY]], np.int64)
        other = category <= -2
        category[other] = lut[-2 - category[other]]
    return Scanned(
        n=n,
        type=icol[C_TYPE, :n],
        ts=fcol[0, :n],
        viewer=icol[C_VIEWER, :n],
        viewer_absent=icol[C_ABSENT, :n].astype(np.bool_),
        viewer_uniques=uniques[C_VIEWER] if st[S_VMODE] == _VMODE_STR else None,
        room=icol[C_ROOM, :n],
        room_uniques=uniques[C_ROOM],
        item=icol[C_ITEM, :n],
        item_uniques=uniques[C_ITEM],
        text=icol[C_TEXT, :n],
        text_uniques=uniques[C_TEXT],
        category=category,
        price=fcol[1, :n],
        amount=fcol[2, :n],
    )
