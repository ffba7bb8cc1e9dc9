"""Action params: parsed once per rule, rendered per firing.

A rule's ``params`` may hold ``{event.FIELD}`` and ``{FEATURE}`` placeholders. They are
parsed when the rules load (not per firing): constants are copied, a lone placeholder keeps
its value's type (``item = "{event.item}"`` gives the item id itself), placeholders inside
text are formatted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import BatchRow
from .rules.load import PLACEHOLDER_RE

if TYPE_CHECKING:
    from .engine import Engine
    from .events import Event

__all__ = ["ParamsTemplate", "render", "format_value"]


class ParamsTemplate:
    """A rule's ``params`` parsed once, rendered per firing: constants are copied, a lone
    placeholder keeps its value's type, placeholders inside text are formatted."""

    __slots__ = ("steps", "index")

    def __init__(self, params: dict[str, Any], kinds: list[tuple[str, str]]):
        self.index = {text: i for i, (text, _) in enumerate(kinds)}  # feature placeholder -> OUTF column
        self.steps: list[tuple[str, int, Any]] = []  # (key, mode, arg): 0 constant, 1 lone, 2 text, 3 nested
        for key, value in params.items():
            if isinstance(value, (dict, list)):
                self.steps.append((key, 3, value))
            elif isinstance(value, str) and (m := PLACEHOLDER_RE.fullmatch(value)):
                self.steps.append((key, 1, m.group(1)))
            elif isinstance(value, str) and PLACEHOLDER_RE.search(value):
                self.steps.append((key, 2, value))
            else:
                self.steps.append((key, 0, value))

    @property
    def dynamic(self) -> bool:
        return any(mode for _, mode, _ in self.steps)

    def render(self, engine: Engine, kinds: list[tuple[str, str]], vals: list[float], event: Any) -> dict[str, Any]:
        def lookup(text: str) -> Any:
            if text.startswith("event."):
                if event is None:
                    return ""
                kind = type(event)
                if kind is BatchRow:
                    value = event.field(text[6:])
                else:
                    value = event.get(text[6:]) if kind is dict else getattr(event, text[6:], None)
                return "" if value is None else value
            i = self.index.get(text)
            return "" if i is None else engine._decode(kinds[i][1], vals[i])

        out: dict[str, Any] = {}
        for key, mode, arg in self.steps:
            if mode == 0:
                out[key] = arg
            elif mode == 1:
                out[key] = lookup(arg)
            elif mode == 2:
                out[key] = PLACEHOLDER_RE.sub(lambda m: format_value(lookup(m.group(1))), arg)
            else:
                values = {text: lookup(text) for text in self.index}
                out[key] = render({key: arg}, values, event)[key]
        return out


def render(params: dict[str, Any], values: dict[str, Any], event: Event | dict | None) -> dict[str, Any]:
    """Fill ``{event.FIELD}`` and ``{FEATURE}`` placeholders; a lone placeholder keeps its type."""

    def lookup(text: str) -> Any:
        if text.startswith("event."):
            if event is None:
                return ""
            value = event.get(text[6:]) if isinstance(event, dict) else getattr(event, text[6:], None)
            return "" if value is None else value
        return values.get(text, "")

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        if not isinstance(value, str) or "{" not in value:
            return value
        m = PLACEHOLDER_RE.fullmatch(value)
        if m:
            return lookup(m.group(1))
        return PLACEHOLDER_RE.sub(lambda m: format_value(lookup(m.group(1))), value)

    return {k: fill(v) for k, v in params.items()}


def format_value(value: Any) -> str:
    """A value as placeholders inside text show it (and the CLI prints params): 3.5, true, text."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
