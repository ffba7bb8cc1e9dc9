"""State layout: which per-viewer and per-room columns a rules file needs.

Pure Python, no Numba. Only what the rules reference gets a column: a window the
rules never read costs nothing. Three row-major matrices hold a viewer's state so
that one viewer's columns share cache lines:

* ``VI`` int64 -- times (microseconds), counters, flags, tag bits, edge bits, and the
  next deadline of each group of state rules that the same event types can change (a
  pass skips the group while no event could have changed its inputs and that deadline
  has not come);
* ``VF`` float64 -- money, interests, window sums, numeric profile values;
* ``VN`` uint16 -- window count buckets, per-session counts, cart units, category codes
  (counters saturate at 65,535: far beyond one viewer's events in a bucket or session).

Rooms get one int64 matrix ``RI`` (stream start, audience, budget rings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import features
from ..guards import add_columns as add_guard_columns
from ..features.base import FLAG_FOLLOWS, FLAG_PAID, FLAG_PRESENT, FLAG_SEEN, us
from ..features.windows import WindowFeature
from ..rules import ast

if TYPE_CHECKING:
    from ..rules.load import RuleSet

__all__ = ["Layout", "WindowFeature", "build_layout", "const_name", "FLAG_PRESENT", "FLAG_PAID", "FLAG_FOLLOWS",
           "FLAG_SEEN", "us"]


def const_name(prefix: str, name: str) -> str:
    """The generated module's constant for a column or event type: ``VI_FLAGS``, ``T_PAY``,
    ``VN_COUNT_LIKE_60000000US`` (the first of a window's 12 columns)."""
    base = re.sub(r"[^0-9A-Za-z]+", "_", re.sub(r"\[0\]$", "", name)).strip("_").upper()
    return f"{prefix}_{base}" if base else prefix


@dataclass
class Layout:
    vi: list[str] = field(default_factory=list)
    vf: list[str] = field(default_factory=list)
    vn: list[str] = field(default_factory=list)
    ri: list[str] = field(default_factory=list)
    windows: dict[tuple, WindowFeature] = field(default_factory=dict)  # (types, w_us[, field]) -> window
    heads: dict[int, int] = field(default_factory=dict)  # w_us -> VI head column
    since: dict[tuple[str, ...], int] = field(default_factory=dict)  # types -> VI column
    session_counts: dict[tuple[str, ...], int] = field(default_factory=dict)  # types -> VN column
    keyed: dict[tuple, Any] = field(default_factory=dict)  # keyed counters (features/keyed.py)
    tags: list[str] = field(default_factory=list)
    state_rules: list[str] = field(default_factory=list)  # rule names with an edge bit, in order
    cooldown_cols: dict[str, int] = field(default_factory=dict)
    # rule -> (VI column, bit) of its once mark: "session" marks are cleared when a session
    # starts (session_once_cols), "lifetime" marks never
    once_bits: dict[str, tuple[int, int]] = field(default_factory=dict)
    session_once_cols: list[int] = field(default_factory=list)
    budget_cols: dict[str, int] = field(default_factory=dict)  # rule -> RI column of its ring head
    profile_cols: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> ("vf"|"vn", column)
    interest_cols: dict[str, int] = field(default_factory=dict)  # category -> VF column
    # the category code space (see category_names): code i + 1 is category_names[i], 0 is ""
    # (absent), -1 any other string; the declared categories come first, so interest() and
    # top_interest read codes 1..len(rs.categories) only
    category_names: tuple[str, ...] = ()
    has_cart: bool = False
    # state rules evaluated only when their inputs may have changed (see rule_inputs):
    # rule -> VI column of its group's next deadline (one per distinct input set), and the
    # event types that can change its inputs
    deadline_cols: dict[str, int] = field(default_factory=dict)
    input_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # state rules whose condition reads a tag (through segments too), in evaluation order, and
    # the tags they read: a pass that changes one of these tags evaluates them again at its end
    tag_readers: list[str] = field(default_factory=list)
    read_tags: set[str] = field(default_factory=set)
    # output rows a call may add besides its pass's: the room rules (compiler/roomgen.py)
    extra_rows: int = 0
    # per matrix ("vi", "vf", "vn"): the columns before the tail (Feature.tail_columns), which
    # only events of tail_types read; no tail: every column
    tail_from: dict[str, int] = field(default_factory=dict)
    tail_types: frozenset[str] = frozenset()
    _names: dict[str, tuple[int, dict[int, str]]] = field(default_factory=dict, repr=False, compare=False)

    def col(self, matrix: str, name: str) -> int:
        return getattr(self, matrix).index(name)

    def const(self, matrix: str, col: int | str) -> str:
        """The generated module's name for column ``col`` (an index or a name) of ``matrix``."""
        if isinstance(col, str):
            col = getattr(self, matrix).index(col)
        return self.constants(matrix)[col]

    def constants(self, matrix: str) -> dict[int, str]:
        """Column index -> constant name, for the columns of ``matrix`` code can name (the first
        of a group of columns; names made unique with the index when two columns would share one)."""
        cols = getattr(self, matrix)
        cached = self._names.get(matrix)
        if cached is None or cached[0] != len(cols):
            out: dict[int, str] = {}
            taken: set[str] = set()
            for i, name in enumerate(cols):
                if re.search(r"\[[1-9][0-9]*\]$", name):
                    continue
                const = const_name(matrix.upper(), name)
                if const in taken or const == matrix.upper():
                    const = f"{const}_{i}"
                taken.add(const)
                out[i] = const
            cached = self._names[matrix] = (len(cols), out)
        return cached[1]

    def add(self, matrix: str, name: str, width: int = 1) -> int:
        cols = getattr(self, matrix)
        start = len(cols)
        cols.extend([name] if width == 1 else [f"{name}[{i}]" for i in range(width)])
        return start

    @property
    def bytes_per_viewer(self) -> int:
        """The state arrays' bytes per viewer slot: its VI, VF and VN rows, and its cell of the
        store's present-room column (PRES, runtime/store.py)."""
        return 8 * len(self.vi) + 8 * len(self.vf) + 2 * len(self.vn) + 8

    def category_code(self, name: str) -> int:
        """The kernel's code for category ``name``: i + 1 for ``category_names[i]``, 0 for "", else -1."""
        if name == "":
            return 0
        return self.category_names.index(name) + 1 if name in self.category_names else -1

    def rows_per_pass(self, n_rules: int) -> int:
        """Most output rows one pass can write: each rule once, then each tag reader once per
        re-evaluation round (at most ``len(tag_readers)`` rounds)."""
        return max(1, n_rules + len(self.tag_readers) ** 2) + self.extra_rows

    def tag_bit(self, tag: str) -> tuple[int, int]:
        """(VI column, bit mask) of a tag."""
        i = self.tags.index(tag)
        return self.vi.index(f"tags{i // 63}"), 1 << (i % 63)

    def once_bit(self, rule: str) -> tuple[int, int]:
        return self.once_bits[rule]

    def edge_bit(self, rule: str) -> tuple[int, int]:
        i = self.state_rules.index(rule)
        return self.vi.index(f"edges{i // 63}"), 1 << (i % 63)


# arrival: the viewer's arrival number (META_ARRIVALS at its first accepted event; -1 before),
# the tie-break of timers due at one instant (docs/semantics.md, Order of actions)
VI_CORE = ("clock", "last_ts", "sess_start", "sess_end", "closed_dwell", "due", "queued", "room", "sessions", "flags",
           "arrival")
RI_CORE = ("start", "audience", "live_end")


def _category_side(node: ast.Node) -> bool:
    """A string whose value is coded in the category space: ``event.category``, ``top_interest``."""
    return ((isinstance(node, ast.EventField) and node.field_name == "category")
            or (isinstance(node, ast.Name) and node.kind == "builtin" and node.name in features.category_names()))


def category_names(rs: RuleSet, nodes: list[ast.Node]) -> tuple[str, ...]:
    """The strings that get a category code: the declared categories (codes 1..K, which
    ``interest()`` and ``top_interest`` use), then the values of category profile attributes
    (so ``event.category == level`` compares values), then every other string literal the
    rules compare ``event.category`` with (``event.category == 'beauty'`` for an undeclared
    ``beauty``). Any other category string is coded -1 and equals none of them: a category
    compares as its own value, declared or not, with no per-event interning.
    """
    names = dict.fromkeys(rs.categories)
    for attr in rs.profile.values():
        if attr.kind != "num":
            names.update(dict.fromkeys(attr.values))
    for n in nodes:
        if isinstance(n, ast.Binary) and n.op in ("==", "!="):
            pairs = ((n.left, n.right), (n.right, n.left))
        elif isinstance(n, ast.In):
            pairs = tuple((n.operand, item) for item in n.items)
        else:
            continue
        for subject, value in pairs:
            if isinstance(value, ast.Str) and _category_side(subject):
                names[value.value] = None
    names.pop("", None)  # "" is code 0: an absent category
    return tuple(names)


def _referenced(rs: RuleSet) -> list[ast.Node]:
    nodes: list[ast.Node] = []
    roots = [*rs.segments.values()]
    for rule in rs.rules:
        roots.append(rule.when)
        roots.extend(rule.placeholders.values())
    for root in roots:
        nodes.extend(ast.walk(root))
    return nodes


def rule_inputs(rs: RuleSet, node: ast.Node) -> tuple[str, ...] | None:
    """The event types whose events can change the value of condition ``node`` (besides a
    session starting or ending, and time, whose effect its next-change time already gives).

    None when something else can change it: tags (an earlier rule of the same pass may tag),
    profile attributes (``set_profile``), event fields, and the features that say so (the room:
    ``audience``, ``stream_time``; interest, kept simple: it counts as changing with any event).
    """
    types: set[str] = set()
    for n in ast.walk(node):
        feature = features.feature_of(n)
        if feature is not None:
            inputs = feature.node_inputs(n)
            if inputs is None:
                return None
            types.update(inputs)
        elif isinstance(n, ast.Name) and n.kind == "segment":
            inner = rule_inputs(rs, rs.segments[n.name])
            if inner is None:
                return None
            types.update(inner)
        elif isinstance(n, (ast.Name, ast.Tag, ast.EventField)):  # a profile attribute, a tag, a field
            return None
    return tuple(sorted(types))


def tags_read(rs: RuleSet, node: ast.Node) -> set[str]:
    """The tags condition ``node`` reads, through the segments it names."""
    tags: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Tag):
            tags.add(n.name)
        elif isinstance(n, ast.Name) and n.kind == "segment":
            tags |= tags_read(rs, rs.segments[n.name])
    return tags


#: Skip state rules whose inputs did not change (tests turn it off to compare with an engine
#: that evaluates every rule at every pass).
SKIP_UNCHANGED = True


def build_layout(rs: RuleSet) -> Layout:
    """Derive the columns from the rules: deterministic for a given rules text."""
    lay = Layout()
    for name in VI_CORE:
        lay.add("vi", name)
    for name in RI_CORE:
        lay.add("ri", name)
    nodes = _referenced(rs)
    names = {n.name for n in nodes if isinstance(n, ast.Name)}

    tags: list[str] = []
    for n in nodes:
        if isinstance(n, ast.Tag) and n.name not in tags:
            tags.append(n.name)
    for rule in rs.rules:
        for action in rule.then:
            if action.startswith(("tag:", "untag:")):
                tag = action.split(":", 1)[1]
                if tag not in tags:
                    tags.append(tag)
    lay.tags = tags
    for i in range(max(1, (len(tags) + 62) // 63)):
        lay.add("vi", f"tags{i}")

    lay.state_rules = [r.name for r in rs.rules if not r.is_event_rule and r.enabled]
    for rule in rs.evaluation_order():
        if rule.enabled and not rule.is_event_rule:
            read = tags_read(rs, rule.when)
            if read:
                lay.tag_readers.append(rule.name)
                lay.read_tags |= read
    for i in range(max(1, (len(lay.state_rules) + 62) // 63)):
        lay.add("vi", f"edges{i}")
    # A state rule costs 5-40 ns per evaluation, at every event of its viewer. State rules
    # that the same event types can change share one deadline column (their earliest next
    # change), and a pass skips the group while no event could have changed its inputs and
    # the deadline has not come: 8 bytes a viewer per distinct input set, not per rule.
    groups: dict[tuple[str, ...], int] = {}
    for rule in rs.rules:
        if SKIP_UNCHANGED and rule.enabled and not rule.is_event_rule:
            inputs = rule_inputs(rs, rule.when)
            if inputs is not None:
                if inputs not in groups:
                    groups[inputs] = lay.add("vi", f"deadline:{'|'.join(inputs)}")
                lay.input_types[rule.name] = inputs
                lay.deadline_cols[rule.name] = groups[inputs]
    add_guard_columns(lay, rs)  # once, cooldown, budget (segengine/guards/)

    lay.category_names = category_names(rs, nodes)
    for feature in features.REGISTRY:  # each feature adds the columns the rules need of it
        feature.columns(rs, lay, nodes, names)
    for attr in rs.profile.values():
        if attr.kind == "num":
            lay.profile_cols[attr.name] = ("vf", lay.add("vf", f"profile:{attr.name}"))
        else:
            lay.profile_cols[attr.name] = ("vn", lay.add("vn", f"profile:{attr.name}"))
    from . import roomgen  # room rules and room-wide triggers (here: roomgen imports this module)
    roomgen.add_columns(lay, rs)
    lay.tail_from = {m: len(getattr(lay, m)) for m in ("vi", "vf", "vn")}
    tail_types: set[str] = set()
    for feature in features.REGISTRY:
        read = feature.tail_columns(rs, lay, nodes)
        if read is not None:
            tail_types |= read
    lay.tail_types = frozenset(tail_types)
    if lay.keyed:  # rows of whole 64-byte lines (runtime/store.py aligns them): a key's block stays one line
        pad_to_line(lay)
    return lay


#: Columns per 64-byte cache line of each per-viewer matrix.
PER_LINE = {"vi": 8, "vf": 8, "vn": 32}


def pad_to_line(lay, matrices: tuple[str, ...] = ("vi", "vf", "vn")) -> None:
    """Pad the rows of ``matrices`` to whole 64-byte lines: with the arrays 64-byte aligned
    (runtime/store.py), every row starts a cache line, and a block of 8 VI columns at a
    multiple of 8 is exactly one line."""
    for m in matrices:
        cols = getattr(lay, m)
        while len(cols) % PER_LINE[m]:
            cols.append(f"pad{len(cols)}")
