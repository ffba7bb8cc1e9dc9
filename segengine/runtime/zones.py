"""Time zones for local time (``tz`` profiles, ``[engine] default_tz``): one table row per zone.

The kernels never call Python for a viewer's local time: each zone a viewer or the rules name
gets a row of its UTC-offset transitions (found once, when the zone is first named, with the
standard library's ``zoneinfo`` and the ``tzdata`` package), and ``zone_offset`` finds the offset
at any time by binary search. Row 0 is UTC. Transitions are found between 1990 and 2100 (outside,
the nearest offset holds): a day scan, then bisection to the second.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

import numpy as np

from ..kernels.primitives import MISSING

__all__ = ["Zones", "transitions", "valid_zone"]

FIRST_YEAR, LAST_YEAR = 1990, 2100
MAX_TRANSITIONS = 240  # 2 a year over 110 years, and a few more
WIDTH = 1 + 2 * (MAX_TRANSITIONS + 1)
_UTC = dt.timezone.utc


@lru_cache(maxsize=None)
def available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name: str) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        return False
    return True


def _offset(zone: zoneinfo.ZoneInfo, t: int) -> int:
    """UTC offset in seconds at unix time ``t``."""
    return int(dt.datetime.fromtimestamp(t, _UTC).astimezone(zone).utcoffset().total_seconds())


@lru_cache(maxsize=512)
def transitions(name: str) -> tuple[tuple[int, int], ...]:
    """(unix second, offset seconds from then) of zone ``name``; the first entry holds before all."""
    zone = zoneinfo.ZoneInfo(name)
    t = int(dt.datetime(FIRST_YEAR, 1, 1, tzinfo=_UTC).timestamp())
    end = int(dt.datetime(LAST_YEAR, 1, 1, tzinfo=_UTC).timestamp())
    current = _offset(zone, t)
    out = [(-(2 ** 40), current)]
    day = 86400
    while t < end:
        nxt = t + day
        off = _offset(zone, nxt)
        if off != current:
            lo, hi = t, nxt  # offset(lo) == current, offset(hi) != current
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(zone, mid) == current:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, _offset(zone, hi)))
            current = _offset(zone, hi)
            if len(out) > MAX_TRANSITIONS:
                break
        t = nxt
    return tuple(out)


class Zones:
    """Zone name -> row of the zone table (``Store.ZONES``); row 0 is UTC."""

    def __init__(self) -> None:
        self.names: list[str] = ["UTC"]
        self.rows: dict[str, int] = {"UTC": 0}
        self.table = np.zeros((1, WIDTH), np.int64)
        self.table[0, :3] = (1, MISSING, 0)

    def row(self, name: str) -> int:
        """The row of zone ``name`` (added when new); ValueError for a name that is not an IANA zone."""
        found = self.rows.get(name)
        if found is not None:
            return found
        if not valid_zone(name):
            from ..rules.suggest import did_you_mean
            raise ValueError(f"unknown time zone {name!r}{did_you_mean(name, sorted(available()))}")
        pairs = transitions(name)
        row = np.zeros(WIDTH, np.int64)
        row[0] = len(pairs)
        for i, (t, off) in enumerate(pairs):
            row[1 + 2 * i] = MISSING if i == 0 else t * 1_000_000
            row[2 + 2 * i] = off * 1_000_000
        self.table = np.concatenate([self.table, row[None, :]])
        self.rows[name] = len(self.names)
        self.names.append(name)
        return self.rows[name]

    def to_state(self) -> list[str]:
        return list(self.names)

    def load_state(self, names: list[str]) -> None:
        for name in names:
            self.row(name)
