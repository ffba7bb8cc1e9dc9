"""Action params: parsed once per rule, rendered per firing.

A rule's ``params`` may hold ``{event.FIELD}`` and ``{FEATURE}`` placeholders. They are
parsed when the rules load (not per firing): constants are copied, a lone placeholder keeps
its value's type (``item = "{event.item}"`` gives the item id itself), placeholders inside
text are formatted. A firing reads the event's field straight from its batch (or event
list) by row index: no per-firing event object is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..schema.batch import BatchView
from ..rules.load import PLACEHOLDER_RE

__all__ = ["ParamsTemplate", "event_field", "format_value"]

#: How a params value is filled per firing: copied, one event field or one feature (keeping the
#: value's type), or placeholders inside text or nested values (formatted).
CONSTANT, EVENT_FIELD, FEATURE, TEXT, NESTED = range(5)


def event_field(events: Sequence[Any], index: int, name: str) -> Any:
    """Field ``name`` of the event at ``index`` ("" where absent or with no event: a timer)."""
    if index < 0:
        return ""
    if type(events) is BatchView:
        value = events.field(index, name)
    else:
        event = events[index]
        value = event.get(name) if type(event) is dict else getattr(event, name, None)
    return "" if value is None else value


class ParamsTemplate:
    """A rule's ``params`` parsed once, rendered per firing: constants are copied, a lone
    placeholder keeps its value's type, placeholders inside text are formatted."""

    __slots__ = ("steps", "index")

    def __init__(self, params: dict[str, Any], kinds: list[tuple[str, str]]):
        self.index = {text: i for i, (text, _) in enumerate(kinds)}  # feature placeholder -> OUTF column
        self.steps: list[tuple[str, int, Any]] = []  # (key, mode, arg)
        for key, value in params.items():
            if isinstance(value, (dict, list)):
                self.steps.append((key, NESTED, value))
            elif isinstance(value, str) and (m := PLACEHOLDER_RE.fullmatch(value)):
                text = m.group(1)
                if text.startswith("event."):
                    self.steps.append((key, EVENT_FIELD, text[6:]))
                else:  # a feature: its OUTF column (absent from kinds: shows "")
                    self.steps.append((key, FEATURE, self.index.get(text, -1)))
            elif isinstance(value, str) and PLACEHOLDER_RE.search(value):
                self.steps.append((key, TEXT, value))
            else:
                self.steps.append((key, CONSTANT, value))

    @property
    def dynamic(self) -> bool:
        return any(mode != CONSTANT for _, mode, _ in self.steps)

    def render(self, decode: Callable[[str, float], Any], kinds: list[tuple[str, str]], vals: list[float],
               events: Sequence[Any], index: int) -> dict[str, Any]:
        """The params of one firing; ``events[index]`` is its event (``index`` -1: a timer).

        ``decode(kind, value)`` turns a feature's kernel value into Python
        (:meth:`segengine.runtime.core.EngineCore.decode`)."""
        out: dict[str, Any] = {}
        for key, mode, arg in self.steps:
            if mode == CONSTANT:
                out[key] = arg
            elif mode == EVENT_FIELD:
                out[key] = event_field(events, index, arg)
            elif mode == FEATURE:
                out[key] = "" if arg < 0 else decode(kinds[arg][1], vals[arg])
            else:
                def lookup(text: str) -> Any:
                    if text.startswith("event."):
                        return event_field(events, index, text[6:])
                    i = self.index.get(text)
                    return "" if i is None else decode(kinds[i][1], vals[i])

                if mode == TEXT:
                    out[key] = PLACEHOLDER_RE.sub(lambda m: format_value(lookup(m.group(1))), arg)
                else:
                    out[key] = _fill(arg, lookup)
        return out


def _fill(value: Any, lookup) -> Any:
    """Placeholders inside nested params (dicts and lists), as at the top level."""
    if isinstance(value, dict):
        return {k: _fill(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, lookup) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    m = PLACEHOLDER_RE.fullmatch(value)
    if m:
        return lookup(m.group(1))
    return PLACEHOLDER_RE.sub(lambda m: format_value(lookup(m.group(1))), value)


def format_value(value: Any) -> str:
    """A value as placeholders inside text show it (and the CLI prints params): 3.5, true, text."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
