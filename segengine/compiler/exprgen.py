"""Expressions -> straight-line Numba source.

Every numeric sub-expression becomes a value ``v`` and a slope ``s`` (its rate
of change per second while nothing else happens) plus a *kind* that says how
it evolves with time alone:

* ``CONST``  -- changes only with events (counts, money, flags);
* ``LINEAR`` -- moves at a constant rate (dwell, since, stream_time, now);
* ``DECAY``  -- an affine mix of interests, which all halve every half-life;
* ``MIXED``  -- anything else (products of time-varying terms).

Slopes give strict comparisons their right-limit meaning (``dwell > 5m`` is true
from the 300 s instant on, so an event at that instant agrees with the timer that
fired there), and, in state rules, the instant the comparison next changes: the
timer the viewer needs. Window features add a *horizon*: when their oldest
bucket expires. Boolean nodes combine next-change times (see ``nc_and``).
"""

from __future__ import annotations

from .. import features
from ..features.base import CONST, DECAY, LINEAR, MIXED, NEVER
from ..rules import ast
from ..rules.expr import chain
from ..rules.load import RuleSet
from ..text.predicates import ID_MASK
from ..text.predicates import bit_name as text_bit
from ..text.predicates import predicates as text_predicates
from .layout import Layout, tags_read

__all__ = ["CONST", "LINEAR", "DECAY", "MIXED", "NEVER", "VIEW_LINES", "ExprGen", "Literals", "desugar"]

#: The state matrices as local arrays, from the pointer table ``tab`` (one list for every
#: generated function, so a dtype change is made in one place).
VIEW_LINES = (
    "VI = mat_i64(tab, M_VI)", "VF = mat_f64(tab, M_VF)", "VN = mat_u16(tab, M_VN)", "RI = mat_i64(tab, M_RI)",
    "H = mat_i64(tab, M_HEAP)", "meta = mat_i64(tab, M_META)", "OI = mat_i64(tab, M_OUTI)",
    "OF = mat_f64(tab, M_OUTF)", "LITS = mat_i64(tab, M_LITS)", "CK = mat_i64(tab, M_CARTK)",
    "CV = mat_f64(tab, M_CARTV)", "ZONES = mat_i64(tab, M_ZONES)", "PRES = mat_i64(tab, M_PRES)",
)


def _join_add(a: int, b: int) -> int:
    if a == CONST:
        return b
    if b == CONST or a == b:
        return a
    return MIXED


def desugar(node: ast.Node) -> ast.Node:
    """``x in [a, b]`` -> ``x == a or x == b`` (and ``not in``), recursively."""
    if isinstance(node, ast.In):
        operand = desugar(node.operand)
        eqs: list[ast.Node] = [ast.Binary("==", operand, desugar(item), type="bool", span=node.span) for item in node.items]
        result = chain("or", eqs, "bool") if eqs else ast.Bool(False, type="bool", span=node.span)  # long lists: balanced
        return ast.Unary("not", result, type="bool", span=node.span) if node.negated else result
    if isinstance(node, ast.Unary):
        return ast.Unary(node.op, desugar(node.operand), type=node.type, span=node.span)
    if isinstance(node, ast.Binary):
        return ast.Binary(node.op, desugar(node.left), desugar(node.right), type=node.type, span=node.span)
    return node


def _named(space: str) -> bool:
    """Spaces whose values are all known when the rules compile: categories and profile values."""
    return space == "category" or space.startswith("profile:")


#: An ``and``/``or`` chain of more operands than this is evaluated without short-circuits
#: (see ExprGen.eager_chain); shorter ones, as people write them, keep their short-circuits.
LONG_CHAIN = 8


def _chain_operands(node: ast.Binary) -> list[ast.Node]:
    """The operands of the ``and``/``or`` chain rooted at ``node``, in order (iteratively)."""
    out: list[ast.Node] = []
    stack: list[ast.Node] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, ast.Binary) and cur.op == node.op:
            stack.append(cur.right)
            stack.append(cur.left)
        else:
            out.append(cur)
    return out


class Literals:
    """String literals compared with interned event strings; their ids live in the LITS matrix."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (table, text): table is "strings" or "rooms"

    def index(self, table: str, text: str) -> int:
        key = (table, text)
        if key not in self.items:
            self.items.append(key)
        return self.items.index(key)


#: ``ExprGen.in_event`` of code that never has a current event (room rules, read-outs, queries).
NO_EVENT = "False"


class ExprGen:
    """Emits the statements of one generated function; caches atoms per function.

    ``in_event``: the generated test "this pass has a current event" (``"not timer"`` in ``_pass``)."""

    def __init__(self, rs: RuleSet, lay: Layout, lits: Literals, with_timers: bool, in_event: str = NO_EVENT):
        self.rs = rs
        self.lay = lay
        self.lits = lits
        self.with_timers = with_timers
        self.in_event = in_event
        self.lines: list[str] = []
        self.cache: dict[str, tuple] = {}
        self.counter = [0]  # shared with child scopes: temporaries never collide
        # window values shared by every scope of the function (see shared()): None = off
        self.memo: dict[tuple, str] | None = None
        self.memo_inits: list[str] = []

    @property
    def event_pass(self) -> bool:
        """Whether the code runs in an event kernel's pass (which may have a current event)."""
        return self.in_event != NO_EVENT

    def share_windows(self) -> None:
        """Compute each window value at most once per call, whichever rule needs it first.

        Rules in their own scopes (event rules, skippable state rules) would each re-derive a
        window they share (50 rules on ``count(like, 1m)``: 18 sums per like). The caller
        puts ``memo_inits`` at the top of the function: window contents and ``now`` do not
        change during a pass.
        """
        self.memo = {}

    def child(self, with_timers: bool | None = None) -> "ExprGen":
        """A nested scope (the body of an ``if``): sees this scope's values; its own stay inside."""
        sub = ExprGen(self.rs, self.lay, self.lits, self.with_timers if with_timers is None else with_timers, self.in_event)
        sub.cache = dict(self.cache)
        sub.counter = self.counter
        sub.memo = self.memo
        sub.memo_inits = self.memo_inits
        return sub

    def shared(self, key: tuple, expr: str, unset: str, unset_test: str) -> str:
        """A variable holding ``expr``: computed here, or (with share_windows) at most once per call."""
        if self.memo is None:
            v = self.tmp("w")
            self.emit(f"{v} = {expr}")
            return v
        var = self.memo.get(key)
        if var is None:
            var = self.memo[key] = self.tmp("m")
            self.memo_inits.append(f"{var} = {unset}")
        self.emit(f"if {unset_test.format(var)}:")
        self.emit(f"    {var} = {expr}")
        return var

    def nest(self, header: str, sub: "ExprGen") -> None:
        self.emit(header)
        self.lines.extend("    " + line for line in sub.lines or ["pass"])

    # helpers -----------------------------------------------------------------------
    def tmp(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}{self.counter[0]}"

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def vi(self, name: str) -> str:
        return f"VI[slot, {self.lay.const('vi', name)}]"

    def col(self, matrix: str, col: int | str) -> str:
        """The named constant of a column (an index or a name) of ``matrix``."""
        return self.lay.const(matrix, col)

    def feature(self, node: ast.Node) -> "features.Feature":
        f = features.feature_of(node)
        if f is None:
            raise TypeError(f"not a built-in feature: {ast.to_source(node)}")  # pragma: no cover
        return f

    # numbers -----------------------------------------------------------------------
    def num(self, node: ast.Node) -> tuple[str, str, int, str]:
        """(value, slope, kind, horizon) of a numeric node; names of emitted temporaries."""
        if isinstance(node, ast.Num):
            return repr(float(node.value)), "0.0", CONST, NEVER
        if isinstance(node, ast.Unary):
            v, s, k, h = self.num(node.operand)
            return f"(-{v})", f"(-{s})", k, h
        if isinstance(node, ast.Binary):
            return self.arith(node)
        key = ast.to_source(node)
        if key not in self.cache:
            self.cache[key] = self.atom(node)
        return self.cache[key]

    def arith(self, node: ast.Binary) -> tuple[str, str, int, str]:
        a, sa, ka, ha = self.num(node.left)
        b, sb, kb, hb = self.num(node.right)
        v, s = self.tmp("v"), self.tmp("s")
        op = node.op
        if op in "+-":
            self.emit(f"{v} = {a} {op} {b}")
            self.emit(f"{s} = {sa} {op} {sb}")
            kind = _join_add(ka, kb)
        elif op == "*":
            self.emit(f"{v} = {a} * {b}")
            self.emit(f"{s} = {sa} * {b} + {a} * {sb}")
            kind = kb if ka == CONST else ka if kb == CONST else MIXED
        else:
            self.emit(f"{v} = {a} / {b}")
            self.emit(f"{s} = ({sa} * {b} - {a} * {sb}) / ({b} * {b}) if {sb} != 0.0 else {sa} / {b}")
            kind = ka if kb == CONST else MIXED
        return v, s, kind, self.min_h(ha, hb)

    def min_h(self, a: str, b: str) -> str:
        if a == NEVER:
            return b
        if b == NEVER:
            return a
        h = self.tmp("h")
        self.emit(f"{h} = min({a}, {b})")
        return h

    def atom(self, node: ast.Node) -> tuple[str, str, int, str]:
        v = self.tmp("v")
        if isinstance(node, ast.Name) and node.kind == "profile":
            matrix, col = self.lay.profile_cols[node.name]
            self.emit(f"{v} = float(VF[slot, {self.col('vf', col)}])")
            return v, "0.0", CONST, NEVER
        if isinstance(node, ast.EventField):
            source = {"ts": "ev_ts", "price": "ev_price", "amount": "ev_amount"}[node.field_name]
            self.emit(f"{v} = ({source} if not np.isnan({source}) else 0.0) if {self.in_event} else 0.0")
            return v, "0.0", CONST, NEVER
        return self.feature(node).number(self, node, v)

    # strings: compared as integer codes in one code space per subject ----------------
    def string(self, node: ast.Node, other: ast.Node) -> str:
        """Integer code of a string-typed node; a literal is coded in the space of ``other``."""
        lay, rs = self.lay, self.rs
        if isinstance(node, ast.Str):
            space = self.space(other)
            if space == "category":  # every literal compared in this space has a code (state.category_names)
                return str(lay.category_code(node.value))
            if space.startswith("profile:"):
                values = rs.profile[space[8:]].values
                return str(values.index(node.value) + 1 if node.value in values else (0 if node.value == "" else -2))
            if space == "type":
                return str(rs.event_types.index(node.value) if node.value in rs.event_types else -2)
            if space in ("rooms", "viewers"):
                return f"LITS[0, {self.lits.index(space, node.value)}]"
            if space == "strings":
                return f"LITS[0, {self.lits.index('strings', node.value)}]"
            return "-3"  # two literals were folded away already; unreachable in practice
        if isinstance(node, ast.Name) and node.kind == "profile":
            return f"VN[slot, {self.col('vn', lay.profile_cols[node.name][1])}]"
        if isinstance(node, ast.Name) and node.kind == "builtin":
            return self.feature(node).string(self, node)
        if isinstance(node, ast.EventField):
            source = {"type": "ev_code", "category": "ev_cat", "item": "ev_item", "text": "ev_text", "room": "ev_room", "viewer": "slot"}
            if node.field_name == "text" and text_predicates(rs):  # packed with predicate bits: the id is below them
                return f"(((ev_text & {ID_MASK}) - 2) if {self.in_event} else -5)"
            return f"({source[node.field_name]} if {self.in_event} else -5)"
        raise TypeError(f"not a string node: {node!r}")  # pragma: no cover

    def as_category(self, code: str, space: str) -> str:
        """A code of ``space`` (a profile attribute's, or the category space) as a category code."""
        if space == "category":
            return code
        values = self.rs.profile[space[8:]].values
        c = self.tmp("pc")
        self.emit(f"{c} = 0")  # unset: "", as an absent category
        for i, value in enumerate(values):
            self.emit(f"{'if' if i == 0 else 'elif'} {code} == {i + 1}:")
            self.emit(f"    {c} = {self.lay.category_code(value)}")
        return c

    @staticmethod
    def space(node: ast.Node) -> str:
        if isinstance(node, ast.Name) and node.kind == "profile":
            return f"profile:{node.name}"
        if isinstance(node, ast.Name) and node.kind == "builtin" and node.name in features.category_names():
            return "category"
        if isinstance(node, ast.EventField):
            return {"category": "category", "type": "type", "room": "rooms", "viewer": "viewers"}.get(node.field_name, "strings")
        return "literal"

    # booleans ------------------------------------------------------------------------
    def boolean(self, node: ast.Node) -> tuple[str, str]:
        """(value, next change) of a boolean node; next change is NEVER without timers."""
        if isinstance(node, ast.Bool):
            return ("True" if node.value else "False"), NEVER
        if isinstance(node, ast.Name) and node.kind == "segment":
            key = f"segment:{node.name}"
            if key not in self.cache:
                value = self.boolean(desugar(self.rs.segments[node.name]))
                if tags_read(self.rs, self.rs.segments[node.name]):
                    return value  # read fresh: rules earlier in the pass may tag
                self.cache[key] = value
            return self.cache[key]
        if isinstance(node, ast.Name):  # the checker only lets boolean built-ins through
            truth = self.feature(node).truth(self, node)
            b = self.tmp("b")
            self.emit(f"{b} = {truth}")
            return b, NEVER
        if isinstance(node, ast.Tag):
            b = self.tmp("b")
            col, mask = self.lay.tag_bit(node.name)
            self.emit(f"{b} = (VI[slot, {self.col('vi', col)}] & {mask}) != 0")  # read fresh: rules earlier in the pass may tag
            return b, NEVER
        if isinstance(node, (ast.TextMatch, ast.Intent)):  # a bit of the event's text value (segengine.text)
            b = self.tmp("b")
            self.emit(f"{b} = {self.in_event} and ev_text > 0 and (ev_text & {text_bit(self.rs, node)}) != 0")
            return b, NEVER
        if isinstance(node, ast.Unary):
            inner, c = self.boolean(node.operand)
            b = self.tmp("b")
            self.emit(f"{b} = not {inner}")
            return b, c
        if isinstance(node, ast.Binary) and node.op in ast.LOGICAL:
            operands = _chain_operands(node)
            if len(operands) > LONG_CHAIN:
                return self.eager_chain(node.op, operands)
            left, cl = self.boolean(node.left)
            if cl == NEVER:
                return self.short_circuit(node, left)
            right, cr = self.boolean(node.right)
            b = self.tmp("b")
            self.emit(f"{b} = {left} {node.op} {right}")
            if not self.with_timers or (cl == NEVER and cr == NEVER):
                return b, NEVER
            c = self.tmp("c")
            self.emit(f"{c} = nc_{node.op}({left}, {cl}, {right}, {cr})")
            return b, c
        if isinstance(node, ast.Binary):
            return self.compare(node)
        raise TypeError(f"not a boolean node: {node!r}")  # pragma: no cover

    def eager_chain(self, op: str, operands: list[ast.Node]) -> tuple[str, str]:
        """A long ``and``/``or`` chain (generated rules: thousands of clauses), every operand
        evaluated, combined branch-free. Short-circuit code gives each clause a nested block and
        a variable assigned twice, which makes Numba's compile time quadratic (minutes for a
        1,000-clause chain); the clauses themselves are cheap to evaluate."""
        sym = "&" if op == "and" else "|"
        acc, c_acc = self.boolean(operands[0])
        for operand in operands[1:]:
            value, c = self.boolean(operand)
            b = self.tmp("b")
            self.emit(f"{b} = {acc} {sym} {value}")
            if self.with_timers and (c_acc != NEVER or c != NEVER):
                nc = self.tmp("c")
                self.emit(f"{nc} = nc_{op}({acc}, {c_acc}, {value}, {c})")
                c_acc = nc
            acc = b
        return acc, c_acc

    def short_circuit(self, node: ast.Binary, left: str) -> tuple[str, str]:
        """``left`` cannot change with time alone: when it decides the result, skip the right side.

        Its next change is then the right side's (``nc_and(True, NEVER, r, cr) == cr``).
        """
        sub = self.child()
        right, cr = sub.boolean(node.right)
        b = self.tmp("b")
        decided = "False" if node.op == "and" else "True"
        self.emit(f"{b} = {decided}")
        sub.emit(f"{b} = {right}")
        c = NEVER
        if self.with_timers and cr != NEVER:
            c = self.tmp("c")
            self.emit(f"{c} = NEVER")
            sub.emit(f"{c} = {cr}")
        self.nest(f"if {left}:" if node.op == "and" else f"if not {left}:", sub)
        return b, c

    def compare(self, node: ast.Binary) -> tuple[str, str]:
        op = node.op
        b = self.tmp("b")
        if node.left.type == "bool":
            left, cl = self.boolean(node.left)
            right, cr = self.boolean(node.right)
            self.emit(f"{b} = {left} {op} {right}")
            if not self.with_timers or (cl == NEVER and cr == NEVER):
                return b, NEVER
            c = self.tmp("c")
            self.emit(f"{c} = min({cl}, {cr})")
            return b, c
        if node.left.type == "str":
            left = self.string(node.left, node.right)
            right = self.string(node.right, node.left)
            spaces = (self.space(node.left), self.space(node.right))
            if spaces[0] != spaces[1] and "literal" not in spaces and all(_named(sp) for sp in spaces):
                # a category and a profile value (or two profile attributes): compared as category codes
                left, right = self.as_category(left, spaces[0]), self.as_category(right, spaces[1])
                spaces = ("category", "category")
            if spaces[0] != spaces[1] and "literal" not in spaces:
                self.emit(f"{b} = {op == '!='}")  # different code spaces never match (docs/rules.md)
            else:
                self.emit(f"{b} = {left} {op} {right}")
            return b, NEVER
        for side in (node.left, node.right):  # a feature may know the comparison's next change better
            f = features.feature_of(side)
            threshold = f.compare(self, node, b) if f else None
            if threshold is not None:
                return b, threshold
        a, sa, ka, ha = self.num(node.left)
        r, sr, kr, hr = self.num(node.right)
        if op == ">":
            self.emit(f"{b} = {a} > {r} or ({a} == {r} and {sa} > {sr})")
        elif op == "<":
            self.emit(f"{b} = {a} < {r} or ({a} == {r} and {sa} < {sr})")
        else:
            self.emit(f"{b} = {a} {op} {r}")
        if not self.with_timers:
            return b, NEVER
        kind = _join_add(ka, kr)
        horizon = self.min_h(ha, hr)
        if kind == CONST:
            return b, horizon
        c = self.tmp("c")
        if kind == DECAY:
            self.emit(f"{c} = cross_decay(now, {a} - {r}, {sa} - {sr}, LAMBDA)")
        else:
            self.emit(f"{c} = cross_linear(now, {a} - {r}, {sa} - {sr})")
        if horizon != NEVER:
            self.emit(f"{c} = min({c}, {horizon})")
        return b, c

    def value(self, node: ast.Node) -> tuple[str, str]:
        """A placeholder or readout value as a float, and its type."""
        if node.type == "bool":
            b, _ = self.boolean(desugar(node))
            return f"(1.0 if {b} else 0.0)", "bool"
        if node.type == "str":
            return f"float({self.string(node, node)})", f"str:{self.space(node)}"
        v, _, _, _ = self.num(node)
        return v, "num"
