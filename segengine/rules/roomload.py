"""The room parts of a rules file: ``[engine] room_types``, ``[targets.NAME]`` and ``[[room_rules]]``.

:class:`RoomParts` is a mixin of the rules loader (:mod:`.load`): every problem is reported through
it, at ``FILE:LINE:COL`` with a did-you-mean, along with the rest of the file's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schema.events import BUILTIN_TYPES, ROOM_TYPES
from . import ast
from .check import BUILTINS, CheckContext, check_expr, fold
from .expr import ExprError, parse_expr
from .suggest import did_you_mean

__all__ = ["RoomRule", "RoomParts", "ROOM_RULE_KEYS", "TARGET_KEYS"]

ROOM_RULE_KEYS = ("name", "when", "then", "params", "cooldown", "enabled")
TARGET_KEYS = ("match",)
#: What a target's condition may contain: profile names, literals and operators.
_TARGET_NODES = (ast.Num, ast.Str, ast.Bool, ast.Unary, ast.Binary, ast.In, ast.Name)


@dataclass
class RoomRule:
    """A ``[[room_rules]]`` entry: fires on the rising edge of ``when`` (room names only), per room."""

    name: str
    when: ast.Node
    when_text: str
    then: tuple[str, ...]
    params: dict[str, Any]
    cooldown: float | None
    enabled: bool
    index: int  # file order among the room rules
    placeholders: dict[str, ast.Node] = field(default_factory=dict)

    @property
    def is_event_rule(self) -> bool:
        return False


class RoomParts:
    """The room parts of the rules loader (a mixin of ``rules.load._Loader``: it reports through
    the loader's own error methods)."""

    def room_types(self, value: Any, rs) -> None:
        """``[engine] room_types = [...]``: event types that concern a whole room (no viewer)."""
        types = self._string_list(value, ("engine", "room_types"), "room_types")
        if types is None:
            return
        good = []
        for i, name in enumerate(types):
            path = ("engine", "room_types", i)
            if not self._ident(name, path, "room type"):
                continue
            if name in BUILTIN_TYPES and name not in ROOM_TYPES:
                self.error_value(path, f"{name!r} is a viewer event type; a room type is a new name (e.g. \"last_call\")")
                continue
            if name not in ROOM_TYPES:
                good.append(name)
        rs.room_types = tuple(dict.fromkeys(good))
        rs.event_types = tuple(dict.fromkeys((*rs.event_types, *rs.room_types)))


    def targets(self, raw: Any, rs, ctx: CheckContext) -> None:
        """``[targets.NAME] match = "..."``: audiences over profile attributes only."""
        table = self.table(raw, ("targets",), "[targets]")
        profile = {name: attr for name, attr in rs.profile.items()}
        for name, spec in table.items():
            path = ("targets", name)
            if not self._ident(name, path, "target"):
                continue
            if name in ctx.segments:
                self.error_key(path, f"target {name!r} has the name of a segment")
                continue
            spec = self.table(spec, path, f"[targets.{name}]")
            self.unknown_keys(spec, path, TARGET_KEYS, f"[targets.{name}]")
            if "match" not in spec:
                self.error_key(path, f"target {name!r} has no 'match'")
                continue
            text = spec["match"]
            mpath = (*path, "match")
            if not isinstance(text, str):
                self.error_value(mpath, "'match' is an expression string over profile attributes")
                continue
            try:
                node = parse_expr(text)
            except ExprError as err:
                self.error_expr(mpath, err)
                continue
            errors: list[ExprError] = []
            for n in ast.walk(node):
                if not isinstance(n, _TARGET_NODES):
                    errors.append(ExprError(f"a target reads only profile attributes, not {ast.to_source(n)!r}", n.span))
                elif isinstance(n, ast.Name) and n.name not in profile and (n.name in BUILTINS or n.name in ctx.segments):
                    errors.append(ExprError(f"a target reads only profile attributes, not {n.name!r}", n.span))
                elif isinstance(n, ast.Name) and n.name not in profile:
                    hint = did_you_mean(n.name, profile) if profile else " (declare attributes in [profile])"
                    errors.append(ExprError(f"unknown profile attribute {n.name!r}{hint}", n.span))
            if not errors:
                sub = CheckContext(ctx.event_types, ctx.categories, ctx.profile, room_names=False)
                check_expr(node, sub, errors)
            for err in errors:
                self.error_expr(mpath, err)
            if not errors:
                rs.targets[name] = fold(node)
                rs.target_texts[name] = text
        ctx.targets = dict(rs.targets)


    def room_rules(self, raw: Any, rs, ctx: CheckContext, taken: set[str]) -> None:
        """``[[room_rules]]``: name, when (room names only), then, params, cooldown, enabled."""
        if not isinstance(raw, list):
            self.error_key(("room_rules",), "room rules must be an array of tables: [[room_rules]]")
            return
        seen = set(taken)
        for i, t in enumerate(raw):
            p = ("room_rules", i)
            if not isinstance(t, dict):
                self.error_value(p, "a room rule must be a table")
                continue
            name, ok = self._head(t, p, ROOM_RULE_KEYS, "room rule")
            if isinstance(name, str) and name in seen:
                self.error_value((*p, "name"), f"duplicate rule name {name!r}")
                ok = False
            then = self._then(t["then"], (*p, "then")) if "then" in t else None
            if then is not None and any(a.startswith(("tag:", "untag:")) for a in then):
                self.error_value((*p, "then"), "a room rule has no viewer to tag: tag:/untag: actions are for [[rules]]")
                then = None
            ok = ok and then is not None
            when = None
            text = t.get("when", "")
            if "when" in t:
                if not isinstance(text, str):
                    self.error_value((*p, "when"), "'when' is an expression string")
                else:
                    when = self._room_expr((*p, "when"), text, ctx, "bool")
            params = t.get("params", {})
            placeholders: dict[str, ast.Node] = {}
            if not isinstance(params, dict):
                self.error_value((*p, "params"), "'params' must be a table")
                ok = False
            else:
                ok = self._room_placeholders(params, (*p, "params"), ctx, placeholders) and ok
            cooldown = self._duration(t["cooldown"], (*p, "cooldown")) if "cooldown" in t else None
            ok = ok and ("cooldown" not in t or cooldown is not None)
            enabled = t.get("enabled", True)
            if not isinstance(enabled, bool):
                self.error_value((*p, "enabled"), "'enabled' must be true or false")
                ok = False
            if ok and when is not None and then is not None:
                seen.add(name)
                rs.room_rules.append(RoomRule(name, when, text, then, params, cooldown, enabled, i, placeholders))


    def _room_expr(self, path: tuple, text: str, ctx: CheckContext, want: str | None, offset: int = 0) -> ast.Node | None:
        try:
            node = parse_expr(text)
        except ExprError as err:
            self.error_expr(path, ExprError(err.message, (err.span[0] + offset, err.span[1] + offset)))
            return None
        errors: list[ExprError] = []
        ctx.in_room_rule, ctx.in_event_rule = True, False
        try:
            check_expr(node, ctx, errors, want)
        finally:
            ctx.in_room_rule = False
        for err in errors:
            self.error_expr(path, ExprError(err.message, (err.span[0] + offset, err.span[1] + offset)))
        return None if errors else fold(node)


    def _room_placeholders(self, params: dict | list, path: tuple, ctx: CheckContext, out: dict[str, ast.Node]) -> bool:
        """``{room.audience}``-style placeholders of a room rule's params (room names only)."""
        from .load import PLACEHOLDER_RE

        ok = True
        items = params.items() if isinstance(params, dict) else enumerate(params)
        for key, value in items:
            vpath = (*path, key)
            if isinstance(value, (dict, list)):
                ok = self._room_placeholders(value, vpath, ctx, out) and ok
            elif isinstance(value, str):
                for m in PLACEHOLDER_RE.finditer(value):
                    if m.group(1) in out:
                        continue
                    node = self._room_expr(vpath, m.group(1), ctx, None, m.start(1))
                    if node is None:
                        ok = False
                    else:
                        out[m.group(1)] = node
        return ok
