"""Snapshots: a restored engine continues exactly as the original; bad files are refused whole.

1. Property: cut a random stream at a random point, snapshot, restore into a new engine,
   feed the rest to both: identical actions, stats, viewers, segments and final state
   (the two engines' final snapshots are byte-identical).
2. Atomic writes: a write that fails part-way leaves the previous file as it was.
3. Truncated, corrupt, foreign and other-version files raise ``SnapshotError``.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segengine import Engine, SnapshotError
from segengine.ops import snapshot as snap
from segengine.runtime.interning import Interner
from segengine.rules.load import load_rules

from conftest import ev
from test_properties import SETTINGS, streams


def _short(rules):
    """The same rules with a 10-minute retention: same kernels (retention is not compiled in)."""
    text = rules.text.replace("[engine]\n", '[engine]\nretention = "10m"\n', 1)
    assert text != rules.text
    return load_rules(text, rules.filename)


@pytest.fixture(params=["golden", "example", "example-10m"])
def rules(request, golden_rules, example_rules):
    return {"golden": golden_rules, "example": example_rules, "example-10m": _short(example_rules)}[request.param]


def _observe(engine: Engine, viewers, segments) -> tuple:
    known = [engine.viewer(v) if engine._viewers.get(v) >= 0 else None for v in viewers]
    sizes = {(s, r): engine.segment_size(s, room=r) for s in segments for r in (None, "r1", "r2")}
    return engine.stats(), known, sizes


@SETTINGS
@given(events=streams(max_events=50), data=st.data())
def test_restored_engine_continues_exactly(rules, events, data):
    cut = data.draw(st.integers(0, len(events)))
    original = Engine(rules)
    before = [a for e in events[:cut] for a in original.ingest(e)]
    if data.draw(st.booleans()) and cut:
        before += original.advance(events[cut - 1]["ts"] + data.draw(st.sampled_from([0.0, 30.0, 700.0])))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.seg"
        original.snapshot(path)
        restored = Engine.restore(path)
        viewers = sorted({e["viewer"] for e in events}, key=str)
        assert _observe(restored, viewers, rules.segments) == _observe(original, viewers, rules.segments)
        rest = events[cut:]
        end = events[-1]["ts"] + 3600
        expected = [a for e in rest for a in original.ingest(e)] + original.advance(end)
        got = [a for e in rest for a in restored.ingest(e)] + restored.advance(end)
        assert got == expected
        assert _observe(restored, viewers, rules.segments) == _observe(original, viewers, rules.segments)
        original.snapshot(Path(tmp) / "a.seg")
        restored.snapshot(Path(tmp) / "b.seg")
        assert (Path(tmp) / "a.seg").read_bytes() == (Path(tmp) / "b.seg").read_bytes()


# --- contents --------------------------------------------------------------------------

def test_everything_round_trips(example_rules, tmp_path):
    engine = Engine(example_rules)
    engine.ingest(ev("enter", 42, 1000.0))
    engine.ingest(ev("enter", "42", 1001.0, room="r2"))
    engine.ingest(ev("enter", 2**70, 1002.0))  # beyond msgpack's 64-bit ints
    engine.ingest(ev("cart", 42, 1003.0, item="tv", price=1500.0))
    engine.ingest({"type": "live_start", "room": "r1", "ts": 900.0})
    engine.set_profile("42", level="high", age=30)
    with pytest.raises(ValueError):
        engine.ingest({"type": "like", "viewer": "x", "ts": 5.0})  # rejected: counted
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    assert restored.rules.text == example_rules.text
    assert restored.rules.filename == example_rules.filename
    assert restored.rules.fingerprint == example_rules.fingerprint
    assert restored.stats() == engine.stats() and restored.stats()["rejected"] == 1
    for viewer in (42, "42", 2**70):
        assert restored.viewer(viewer) == engine.viewer(viewer)
    assert [type(k) for k in restored._viewers.keys] == [type(k) for k in engine._viewers.keys]
    assert restored._viewers.get(42) != restored._viewers.get("42")
    assert restored.viewer(42)["features"]["cart_value"] == 1500.0
    # a timer pending at the snapshot fires after the restore: the idle timeout at 1093 s
    assert restored.advance(1200.0) == engine.advance(1200.0)
    assert not restored.viewer(42)["features"]["present"]


def test_explain_history_round_trips(golden_rules, tmp_path):
    engine = Engine(golden_rules)
    for t in (1000.0, 1001.0, 1002.0):
        engine.ingest(ev("like", "u1", t))
    fired = engine.explain("u1", "like3").last_fired
    assert fired == 1002.0
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    assert restored.explain("u1", "like3").last_fired == fired
    assert str(restored.explain("u1", "like3")) == str(engine.explain("u1", "like3"))


def _sizes(engine: Engine) -> dict:
    return {k: a.shape for k, a in engine._store.matrices().items()}


def test_restored_engine_has_the_same_memory(golden_rules, tmp_path, monkeypatch):
    """Every array, the int viewer-id index included, comes back at the saved size: stats()
    are equal, "memory" too (the index used to be rebuilt at another size: 6000 rows, not 4108)."""
    engine = Engine(golden_rules)
    for i in range(3000):  # int ids grow the viewer-id index in steps: 1024, 2050, 4108 rows
        engine.ingest(ev("enter", i if i % 2 else f"s{i}", 1000.0 + i, room=f"r{i % 7}"))
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    assert len(engine._viewers.index) == 4108
    assert _sizes(restored) == _sizes(engine)
    assert restored.stats()["memory"] == engine.stats()["memory"]
    assert restored.stats() == engine.stats()
    assert restored.ingest(ev("like", 2999, 5000.0)) == engine.ingest(ev("like", 2999, 5000.0))
    # a file written before the index size was saved still loads (at the size its ids need)
    real = Interner.to_state
    monkeypatch.setattr(Interner, "to_state", lambda *a, **k: {x: v for x, v in real(*a, **k).items() if x != "index"})
    engine.snapshot(tmp_path / "old.seg")
    assert Engine.restore(tmp_path / "old.seg").viewer(2999) == engine.viewer(2999)


def test_snapshot_returns_its_size_and_overwrites(golden_rules, tmp_path):
    engine = Engine(golden_rules)
    path = tmp_path / "s.seg"
    first = engine.snapshot(path)
    assert first == path.stat().st_size
    engine.ingest(ev("like", "u1", 1000.0))
    engine.snapshot(str(path))  # str paths too
    assert Engine.restore(str(path)).stats()["events"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.seg"]  # no temp files left


# --- atomic writes -----------------------------------------------------------------------

def _crash_after(monkeypatch, n_bytes: int) -> None:
    """Make the snapshot writer fail once ``n_bytes`` have been written (a crash mid-write)."""
    written = [0]
    real = snap._write_chunk

    def failing(f, hasher, data):
        if written[0] + len(data) > n_bytes:
            real(f, hasher, data[: n_bytes - written[0]])
            f.flush()
            raise OSError(28, "No space left on device")
        written[0] += len(data)
        real(f, hasher, data)

    monkeypatch.setattr(snap, "_write_chunk", failing)


@pytest.mark.parametrize("at", [0.0, 0.0001, 0.05, 0.9])
def test_crash_mid_write_keeps_previous_file(golden_rules, tmp_path, monkeypatch, at):
    """``at``: where the write fails, as a fraction of the new file's size (header, arrays, checksum)."""
    engine = Engine(golden_rules)
    engine.ingest(ev("like", "u1", 1000.0))
    path = tmp_path / "state.seg"
    engine.snapshot(path)
    previous = path.read_bytes()
    for i in range(300):
        engine.ingest(ev("like", f"v{i}", 1001.0 + i))
    size = engine.snapshot(tmp_path / "probe.seg")
    (tmp_path / "probe.seg").unlink()
    _crash_after(monkeypatch, int(at * size))
    with pytest.raises(OSError, match="No space"):
        engine.snapshot(path)
    assert path.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["state.seg"]  # the partial temp file is gone
    assert Engine.restore(path).stats()["events"] == 1
    monkeypatch.undo()
    engine.snapshot(path)  # and the next snapshot works
    assert Engine.restore(path).stats()["events"] == 301


def test_crash_before_rename_keeps_previous_file(golden_rules, tmp_path, monkeypatch):
    engine = Engine(golden_rules)
    path = tmp_path / "state.seg"
    engine.snapshot(path)
    previous = path.read_bytes()
    engine.ingest(ev("like", "u1", 1000.0))

    def no_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="Input/output"):
        engine.snapshot(path)
    assert path.read_bytes() == previous


def test_leftover_temp_file_is_harmless(golden_rules, tmp_path):
    """A process killed mid-write leaves a temp file next to the snapshot; the snapshot still loads."""
    engine = Engine(golden_rules)
    path = tmp_path / "state.seg"
    engine.snapshot(path)
    (tmp_path / ".state.seg.abc123.tmp").write_bytes(path.read_bytes()[:100])
    assert Engine.restore(path).stats() == engine.stats()


# --- bad files -------------------------------------------------------------------------------

@pytest.fixture
def saved(golden_rules, tmp_path) -> Path:
    engine = Engine(golden_rules)
    for i in range(50):
        engine.ingest(ev("like", f"u{i}", 1000.0 + i))
    path = tmp_path / "good.seg"
    engine.snapshot(path)
    return path


P = snap._PREFIX.size  # magic, version, header length, header checksum


def _header_len(data: bytes) -> int:
    return struct.unpack_from("<I", data, 12)[0]


def _restore_bytes(tmp_path: Path, data: bytes) -> SnapshotError:
    bad = tmp_path / "bad.seg"
    bad.write_bytes(data)
    with pytest.raises(SnapshotError) as info:
        Engine.restore(bad)
    assert str(bad) in str(info.value)
    return info.value


def test_truncated_files(saved, tmp_path):
    data = saved.read_bytes()
    hlen = _header_len(data)
    for size in (0, 3, 15, 16, P - 1, P, P + hlen // 2, P + hlen + 10, len(data) // 2, len(data) - 33, len(data) - 1):
        err = _restore_bytes(tmp_path, data[:size])
        assert "truncated" in str(err), (size, str(err))


def test_corrupt_files(saved, tmp_path):
    data = saved.read_bytes()
    hlen = _header_len(data)
    for pos in (len(data) - 40, len(data) // 2, P + hlen + 64, len(data) - 1):
        damaged = bytearray(data)
        damaged[pos] ^= 0x40
        assert "checksum" in str(_restore_bytes(tmp_path, bytes(damaged)))
    for pos in (20, P, P + hlen // 3, P + hlen - 1):  # the header or its checksum
        damaged = bytearray(data)
        damaged[pos] ^= 0xFF
        assert "header checksum" in str(_restore_bytes(tmp_path, bytes(damaged)))
    assert "unexpected bytes" in str(_restore_bytes(tmp_path, data + b"\0"))


def test_foreign_files(tmp_path):
    for data in (b"PK\x03\x04" + bytes(100), b'{"type": "enter"}\n' * 10, b"x", b"SEGSNAP!" + bytes(100)):
        assert "not a segengine snapshot" in str(_restore_bytes(tmp_path, data))
    with pytest.raises(SnapshotError, match="no such snapshot file"):
        Engine.restore(tmp_path / "missing.seg")


def test_other_version(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    struct.pack_into("<I", data, 8, snap.FORMAT_VERSION + 1)
    err = _restore_bytes(tmp_path, bytes(data))
    assert f"format version {snap.FORMAT_VERSION + 1}" in str(err)
    assert f"reads version {snap.FORMAT_VERSION}" in str(err)


def test_rules_that_no_longer_match_the_layout(golden_rules, tmp_path, monkeypatch):
    """A file whose rules build another layout (e.g. written by another segengine) is refused."""
    engine = Engine(golden_rules)
    path = tmp_path / "s.seg"
    engine.snapshot(path)
    header, arrays = snap._read(path)
    header["layout"]["vi"] = header["layout"]["vi"][:-1] + ["renamed"]
    stored = [arrays[spec["name"]][: spec["shape"][0]] for spec in header["arrays"]]
    monkeypatch.setattr(snap, "_collect", lambda e: (header, stored))
    engine.snapshot(path)
    monkeypatch.undo()
    with pytest.raises(SnapshotError, match="state layout"):
        Engine.restore(path)


def test_snapshot_after_reload_keeps_the_new_rules(example_rules, tmp_path):
    engine = Engine(example_rules)
    engine.ingest(ev("enter", "u1", 1000.0))
    engine.ingest(ev("leave", "u1", 1010.0))
    new_text = _short(example_rules).text  # same kernels, a 10-minute retention
    assert engine.reload(new_text)
    engine.snapshot(tmp_path / "s.seg")
    restored = Engine.restore(tmp_path / "s.seg")
    assert restored.rules.text == new_text and restored.rules.retention == 600.0
    assert restored.advance(1010.0 + 700.0) == engine.advance(1010.0 + 700.0)
    assert restored.stats() == engine.stats() and restored.stats()["expired_viewers"] == 1
