"""The state layout's rule analysis (which events can change a state rule's inputs) and the
one-pass column kernels of batch preparation."""

from __future__ import annotations

import numpy as np
import pytest

from segengine.kernels.columns import category_codes, dense_slots
from segengine.rules.load import load_rules
from segengine.compiler.layout import build_layout, rule_inputs

RULES = """
[engine]
categories = ["snacks", "digital"]

[profile]
level = ["low", "high"]

[segments]
hesitant = "carted and not paid"

[[rules]]
name = "abandon"
when = "count(checkout, 10m) >= 1 and not paid and since(checkout) > 2m"
then = "remind"

[[rules]]
name = "hesitant_viewer"
when = "hesitant and count(view|click, 1m) >= 3 and dwell > 1m"
then = "nudge"

[[rules]]
name = "tagged"
when = "tag(vip) and count(like, 1m) >= 2"
then = "vip_likes"

[[rules]]
name = "profiled"
when = "level == 'high' and count(view, 10m) >= 2"
then = "high_views"

[[rules]]
name = "crowded"
when = "audience > 10 and count(like, 1m) >= 1"
then = "crowd"

[[rules]]
name = "no_window"
when = "present and dwell > 5m"
then = "long_stay"

[[rules]]
name = "longer_stay"
when = "present and dwell > 20m"
then = "long_stay"

[[rules]]
name = "on_like"
on = ["like"]
when = "count(like, 1m) >= 5"
then = "coupon"
"""


@pytest.fixture(scope="module")
def rs():
    return load_rules(RULES)


def _rule(rs, name):
    return next(r for r in rs.rules if r.name == name)


def test_inputs_are_the_event_types_that_can_change_a_condition(rs):
    assert rule_inputs(rs, _rule(rs, "abandon").when) == ("checkout", "pay")
    # a segment is read through its condition: carted and paid move with cart, uncart and pay
    assert rule_inputs(rs, _rule(rs, "hesitant_viewer").when) == ("cart", "click", "pay", "uncart", "view")
    assert rule_inputs(rs, _rule(rs, "no_window").when) == ()  # sessions and time only


@pytest.mark.parametrize("name", ["tagged", "profiled", "crowded"])
def test_inputs_changed_from_outside_the_viewers_events_mean_always_evaluate(rs, name):
    """Tags (an earlier rule of the pass), profile attributes (set_profile), the room (other viewers)."""
    assert rule_inputs(rs, _rule(rs, name).when) is None


def test_state_rules_with_known_inputs_share_a_deadline_per_input_set(rs):
    lay = build_layout(rs)
    assert set(lay.deadline_cols) == {name for name in lay.state_rules if rule_inputs(rs, _rule(rs, name).when) is not None}
    assert {"abandon", "hesitant_viewer", "no_window", "longer_stay"} <= set(lay.deadline_cols)
    assert "tagged" not in lay.deadline_cols and "profiled" not in lay.deadline_cols
    assert lay.input_types["abandon"] == ("checkout", "pay")
    assert lay.input_types["longer_stay"] == lay.input_types["no_window"] == ()
    assert lay.deadline_cols["longer_stay"] == lay.deadline_cols["no_window"] != lay.deadline_cols["abandon"]
    # one column per distinct input set, named after it
    groups = {lay.input_types[name]: col for name, col in lay.deadline_cols.items()}
    assert len(set(lay.deadline_cols.values())) == len(groups)
    assert all(lay.vi[col] == f"deadline:{'|'.join(inputs)}" for inputs, col in groups.items())


def test_dense_slots_maps_through_the_index_and_reports_unseen_ids():
    index = np.array([5, -1, 7, 9], np.int64)
    out = np.empty(4, np.int64)
    assert dense_slots(np.array([0, 2, -1, 3], np.int64), index, np.int64(42), out)
    assert out.tolist() == [5, 7, 42, 9]  # negative: absent, the blank item's slot
    assert not dense_slots(np.array([0, 1], np.int64), index, np.int64(42), np.empty(2, np.int64))  # 1: not interned
    assert not dense_slots(np.array([4], np.int64), index, np.int64(42), np.empty(1, np.int64))  # beyond the index


def test_category_codes_turn_batch_codes_into_kernel_codes():
    out = np.empty(5, np.int64)
    category_codes(np.array([-1, 0, 1, 2, 7], np.int64), 2, out)
    assert out.tolist() == [0, 1, 2, -1, -1]  # absent 0, declared i + 1, out of range -1


def test_once_marks_are_bits_one_column_per_kind():
    rules = "".join(f'\n[[rules]]\nname = "s{i}"\non = ["like"]\nwhen = "true"\nthen = "a"\nonce = "session"\n'
                    for i in range(64))
    rules += '\n[[rules]]\nname = "life"\non = ["like"]\nwhen = "true"\nthen = "a"\nonce = "lifetime"\n'
    lay = build_layout(load_rules(rules))
    assert [lay.vi[c] for c in lay.session_once_cols] == ["once_session0", "once_session1"]  # 63 rules a column
    assert lay.once_bit("s0") == (lay.session_once_cols[0], 1) and lay.once_bit("s62") == (lay.session_once_cols[0], 1 << 62)
    assert lay.once_bit("s63") == (lay.session_once_cols[1], 1)
    assert lay.vi[lay.once_bit("life")[0]] == "once_lifetime0"  # never cleared: not a session column
