"""``--profiles FILE`` of ``replay`` and ``explain``: viewer profiles (JSON lines) set before the replay.

One JSON object per line, ``{"viewer": ID, ATTRIBUTE: VALUE, ...}`` (what ``segengine simulate
--profiles-out`` writes). Each line becomes one ``engine.set_profile(ID, **attributes)`` call,
before the first event is replayed. Attributes the rules file does not declare in ``[profile]``
are skipped and counted (reported once); a ``null`` value is left unset. A line that is not such
an object, or a value the attribute does not take, is a :class:`~segengine.cli.output.DataError`
naming ``FILE:LINE`` and the attribute (exit code 1); with ``--skip-errors`` the line is skipped,
counted, and the command goes on (and exits 1 at the end).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import msgspec

from ..engine import Engine
from ..errors import EventError
from ..rules.suggest import did_you_mean
from .inputs import iter_chunks
from .output import DataError, UsageError

MAX_REPORTED = 10   # bad profile lines printed on stderr (all are counted)
MAX_LINES = 1_000   # line numbers of skipped profile lines kept for --json

_decode = msgspec.json.Decoder()


class Profiles:
    """What reading a profiles file did: lines set, attributes skipped, bad lines."""

    def __init__(self, path: str):
        self.path = path
        self.set = 0
        self.viewers: set[Any] = set()
        self.skipped_attributes: Counter = Counter()   # attribute not in [profile] -> values skipped
        self.rejected = 0
        self.rejected_lines: list[int] = []
        self.errors: list[dict[str, Any]] = []
        self.unseen = 0                                # viewers with a profile but no event (see finish)

    def finish(self, seen: set[Any] | dict[Any, Any]) -> None:
        """Count the profiles of viewers that sent no event (``seen``: the viewers of the replay)."""
        self.unseen = sum(1 for v in self.viewers if v not in seen)

    def summary(self) -> dict[str, Any]:
        return {"file": self.path, "set": self.set, "viewers": len(self.viewers), "without_events": self.unseen,
                "skipped_attributes": dict(sorted(self.skipped_attributes.items())),
                "rejected": self.rejected, "rejected_lines": self.rejected_lines}


def load_profiles(engine: Engine, path: str, *, skip_errors: bool = False, quiet: bool = False) -> Profiles:
    """Set the profiles of ``path`` on ``engine``; see the module docstring. ``path`` ``-`` is stdin."""
    if path == "-":
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(path, "rb")
        except OSError as err:
            raise UsageError(f"cannot read profiles file {path!r}: {err.strerror}") from None
    source = path if path != "-" else "<stdin>"
    declared = engine.rules.profile
    result = Profiles(source)
    try:
        for lines, nos in iter_chunks(stream, 4096):
            for line, no in zip(lines, nos):
                try:
                    viewer, attrs = _parse(line, declared, result.skipped_attributes)
                    engine.set_profile(viewer, **attrs)
                except (ValueError, EventError, msgspec.DecodeError) as err:
                    _reject(result, source, line, no, err, skip_errors, quiet)
                    continue
                result.set += 1
                result.viewers.add(viewer)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return result


class _BadLine(ValueError):
    def __init__(self, message: str, attribute: str | None = None):
        super().__init__(message)
        self.attribute = attribute


def _parse(line: bytes, declared, skipped: Counter) -> tuple[str | int, dict[str, Any]]:
    obj = _decode.decode(line)
    if not isinstance(obj, dict):
        raise _BadLine(f"expected a JSON object {{\"viewer\": ID, ATTRIBUTE: VALUE, ...}}, got {type(obj).__name__}")
    if "viewer" not in obj:
        raise _BadLine("no \"viewer\" key", "viewer")
    viewer = obj.pop("viewer")
    if isinstance(viewer, bool) or not isinstance(viewer, (str, int)):
        raise _BadLine(f"\"viewer\" is a string or an integer, got {_kind(viewer)}", "viewer")
    attrs: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in declared:
            skipped[name] += 1
        elif value is not None:
            attrs[name] = value
    for name, value in attrs.items():  # name the attribute of a wrong value (set_profile checks the rest)
        kind = declared[name].kind
        if kind == "num" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _BadLine(f"attribute {name!r} takes a number, got {_kind(value)} {_short(value)}", name)
        if kind != "num" and not isinstance(value, str):
            raise _BadLine(f"attribute {name!r} takes a string, got {_kind(value)} {_short(value)}", name)
        try:
            _check_one(declared, name, value)
        except ValueError as err:
            raise _BadLine(str(err), name) from None
    return viewer, attrs


def _check_one(declared, name: str, value: Any) -> None:
    attr = declared[name]
    if attr.kind != "num" and value != "" and value not in attr.values:
        raise ValueError(f"{value!r} is not a value of {name!r}{did_you_mean(value, attr.values)}"
                         f" (values: {', '.join(attr.values)})")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def _reject(result: Profiles, source: str, line: bytes, no: int, err: Exception, skip: bool, quiet: bool) -> None:
    result.rejected += 1
    attribute = getattr(err, "attribute", None)
    reason = str(err) if not isinstance(err, msgspec.DecodeError) else f"not JSON: {err}"
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    message = f"{source}:{no}: bad profile: {reason}"
    info = {"kind": "profile", "message": reason, "file": source, "line": no, "attribute": attribute,
            "source_line": text[:300]}
    if not skip:
        result.errors.append(info)
        raise DataError(f"{message}\n    {text[:300]}\nno event was replayed; with --skip-errors bad profile "
                        "lines are reported and skipped", info)
    if len(result.rejected_lines) < MAX_LINES:
        result.rejected_lines.append(no)
    if len(result.errors) < MAX_REPORTED:
        result.errors.append(info)
        if not quiet:
            print(message, file=sys.stderr)
