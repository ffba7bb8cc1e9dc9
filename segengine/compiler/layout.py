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

from dataclasses import dataclass, field

from ..rules import ast
from ..rules.load import RuleSet

__all__ = ["Layout", "WindowFeature", "build_layout", "FLAG_PRESENT", "FLAG_PAID", "FLAG_FOLLOWS", "FLAG_SEEN"]

FLAG_PRESENT = 1
FLAG_PAID = 2
FLAG_FOLLOWS = 4
FLAG_SEEN = 8  # has sent an accepted event (segment_size counts these)

CART_FEATURES = frozenset({"carted", "cart_items", "cart_value"})
INTEREST_FEATURES = frozenset({"top_interest"})


def us(seconds: float) -> int:
    """Seconds -> integer microseconds, as the kernels keep time."""
    return int(round(seconds * 1_000_000))


@dataclass
class WindowFeature:
    """A sliding window of 12 buckets: counts in VN (and sums in VF for ``sum``/``avg``)."""

    types: tuple[str, ...]
    window_us: int
    count_col: int  # first of 12 VN columns
    sum_col: int = -1  # first of 12 VF columns (sum/avg of `field`)
    field_name: str = ""
    head_col: int = -1  # VI column shared by all windows of this length


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

    def col(self, matrix: str, name: str) -> int:
        return getattr(self, matrix).index(name)

    def add(self, matrix: str, name: str, width: int = 1) -> int:
        cols = getattr(self, matrix)
        start = len(cols)
        cols.extend([name] if width == 1 else [f"{name}[{i}]" for i in range(width)])
        return start

    @property
    def bytes_per_viewer(self) -> int:
        return 8 * len(self.vi) + 8 * len(self.vf) + 2 * len(self.vn)

    def category_code(self, name: str) -> int:
        """The kernel's code for category ``name``: i + 1 for ``category_names[i]``, 0 for "", else -1."""
        if name == "":
            return 0
        return self.category_names.index(name) + 1 if name in self.category_names else -1

    def rows_per_pass(self, n_rules: int) -> int:
        """Most output rows one pass can write: each rule once, then each tag reader once per
        re-evaluation round (at most ``len(tag_readers)`` rounds)."""
        return max(1, n_rules + len(self.tag_readers) ** 2)

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
           "orders", "arrival")
RI_CORE = ("start", "audience", "live_end")


def _category_side(node: ast.Node) -> bool:
    """A string whose value is coded in the category space: ``event.category``, ``top_interest``."""
    return ((isinstance(node, ast.EventField) and node.field_name == "category")
            or (isinstance(node, ast.Name) and node.kind == "builtin" and node.name == "top_interest"))


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


#: Which event types can change a built-in feature, besides a session starting or ending and
#: time passing. None: something other than this viewer's events can (the room, other viewers).
FEATURE_INPUTS: dict[str, tuple[str, ...] | None] = {
    "present": (), "dwell": (), "total_dwell": (), "sessions": (), "now": (),
    "carted": ("cart", "uncart", "pay"), "cart_items": ("cart", "uncart", "pay"),
    "cart_value": ("cart", "uncart", "pay"), "paid": ("pay",),
    "orders": ("pay",), "spend": ("pay", "refund"), "aov": ("pay", "refund"), "follows": ("follow",),
    "top_interest": None, "stream_time": None, "audience": None,
}


def rule_inputs(rs: RuleSet, node: ast.Node) -> tuple[str, ...] | None:
    """The event types whose events can change the value of condition ``node`` (besides a
    session starting or ending, and time, whose effect its next-change time already gives).

    None when something else can change it: tags (an earlier rule of the same pass may tag),
    profile attributes (``set_profile``), the room (``audience``, ``stream_time``) and
    interest (kept simple: every interest feature counts as changing with any event).
    """
    types: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            if n.kind == "segment":
                inner = rule_inputs(rs, rs.segments[n.name])
                if inner is None:
                    return None
                types.update(inner)
            elif n.kind == "builtin" and n.name in FEATURE_INPUTS:
                inputs = FEATURE_INPUTS[n.name]
                if inputs is None:
                    return None
                types.update(inputs)
            else:  # a profile attribute, or a name this table does not know: always evaluate
                return None
        elif isinstance(n, (ast.Count, ast.Agg, ast.Since)):
            types.update(n.types)
        elif isinstance(n, (ast.Tag, ast.Interest, ast.EventField)):
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
    lay.add("vf", "spend")
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
    from ..guards import add_columns as add_guard_columns  # here: the guards import this module's helpers

    add_guard_columns(lay, rs)  # once, cooldown, budget (segengine/guards/)

    for n in nodes:
        if isinstance(n, ast.Since):
            key = tuple(sorted(n.types))
            if key not in lay.since:
                lay.since[key] = lay.add("vi", f"since({'|'.join(key)})")
        elif isinstance(n, ast.Count) and n.window is None:
            key = tuple(sorted(n.types))
            if key not in lay.session_counts:
                lay.session_counts[key] = lay.add("vn", f"count({'|'.join(key)})")
        elif isinstance(n, (ast.Count, ast.Agg)):
            w = us(n.window)
            types = tuple(sorted(n.types))
            if w not in lay.heads:
                lay.heads[w] = lay.add("vi", f"head:{w}")
            ckey = (types, w)
            if isinstance(n, ast.Count) and ckey not in lay.windows:
                col = lay.add("vn", f"count({'|'.join(types)},{w}us)", 12)
                lay.windows[ckey] = WindowFeature(types, w, col, head_col=lay.heads[w])
            if isinstance(n, ast.Agg):
                # sum/avg count only the events that carry the field: their own count buckets
                skey = (types, w, n.field_name)
                if skey not in lay.windows:
                    label = f"{n.field_name},{'|'.join(types)},{w}us"
                    ncol = lay.add("vn", f"n({label})", 12)
                    scol = lay.add("vf", f"sum({label})", 12)
                    lay.windows[skey] = WindowFeature(types, w, ncol, scol, n.field_name, lay.heads[w])

    lay.category_names = category_names(rs, nodes)
    if any(isinstance(n, ast.Interest) for n in nodes) or names & INTEREST_FEATURES:
        lay.add("vi", "interest_ts")
        for cat in rs.categories:
            lay.interest_cols[cat] = lay.add("vf", f"interest({cat})")
    if names & CART_FEATURES:
        lay.has_cart = True
        lay.add("vf", "cart_value")
        lay.add("vn", "cart_items")
        lay.add("vn", "cart_epoch")
    for attr in rs.profile.values():
        if attr.kind == "num":
            lay.profile_cols[attr.name] = ("vf", lay.add("vf", f"profile:{attr.name}"))
        else:
            lay.profile_cols[attr.name] = ("vn", lay.add("vn", f"profile:{attr.name}"))
    return lay
