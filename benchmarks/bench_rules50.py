"""Single ``ingest`` with a 50-rule file (the standard rules plus generated variants): the cost
must barely grow with the number of rules. Target: median <= 1.5 µs; >= 10x the baseline."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path

from .bench_ingest import baseline_median, latencies
from .common import Result, cli, percentile
from .data import RULES, populated, single_events

#: Variants as a rules author writes them: thresholds of minutes, rules that fire now and then
#: (cooldowns, once per session). Populated viewers all entered within one minute, so dwell
#: thresholds start at 3 minutes: the figure is the cost of an event, not of a timer storm
#: (timers are measured by bench_advance).
VARIANTS = [
    # (name, on, when, then, extra keys)
    ("dwell_{i}", None, "present and dwell > {m}m and count(like, 1m) >= {k}", "dwell_nudge_{i}", 'once = "session"'),
    ("likes_{i}", ["like"], "count(like, 1m) >= {k} and dwell > {s}s", "likes_{i}", 'cooldown = "10m"'),
    ("views_{i}", ["view", "click"], "count(view|click, 10m) >= {k} and not carted", "views_{i}", 'cooldown = "10m"'),
    ("quiet_{i}", None, "present and since(like|comment) > {s}s and dwell > {m}m", "quiet_{i}", 'once = "session"'),
    ("spender_{i}", ["pay"], "spend > {m}0 and orders >= {k}", "spender_{i}", 'once = "lifetime"'),
]


def variants(n_rules: int) -> list[tuple[str, str, str, int, int, int]]:
    """``(shape, rule name, action, k, m, s)`` of each generated rule, in file order: the
    parameters both the rules file and the baseline (``BaselineEngine(variants=...)``) use."""
    out = []
    for i in range(max(0, n_rules - 6)):
        name, _, _, then, _ = VARIANTS[i % len(VARIANTS)]
        out.append((name.split("_")[0], name.format(i=i), then.format(i=i), 2 + i % 4, 3 + i % 5, 30 + 10 * (i % 9)))
    return out


def rules_text(n_rules: int) -> str:
    text = RULES.read_text()
    for i, (_, name, action, k, m, s) in enumerate(variants(n_rules)):
        _, on, when, _, extra = VARIANTS[i % len(VARIANTS)]
        on_line = f"on = {on!r}\n".replace("'", '"') if on else ""
        text += (f'\n[[rules]]\nname = "{name}"\n{on_line}when = "{when.format(k=k, m=m, s=s)}"\n'
                 f'then = "{action}"\n{extra}\n')
    return text


def run(quick: bool) -> list[Result]:
    viewers = 10_000 if quick else 1_000_000
    n_events = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules50.toml"
        path.write_text(rules_text(50))
        events = single_events(viewers, n_events)
        meds = {}
        for label, rules in (("6 rules", RULES), ("50 rules", path)):
            engine = populated(viewers, rules)
            for e in single_events(viewers, 2000, seed=9, start=events[0]["ts"] - 1):
                engine.ingest(e)
            gc.collect()
            gc.disable()
            try:
                meds[label] = percentile(latencies(engine.ingest, events, repeat=1), 50)
            finally:
                gc.enable()
            del engine
    med = meds["50 rules"]
    ours = Result("bench_rules50", f"ingest(dict) median, 50 rules @{viewers:,}", med, "µs", "<= 1.5 µs; >= 10x baseline",
                  med <= 1.5, params={"viewers": viewers, "events": n_events}, note=f"6 rules: {meds['6 rules']:.2f} µs")
    results = [ours, Result("bench_rules50", "cost growth 6 -> 50 rules", med / meds["6 rules"], "x", note="ratio of medians")]
    # the baseline with the same 50 rules (table-driven variants), on the same events
    base50 = baseline_median(viewers, events, variants(50))
    if base50 is not None:
        ours.baseline = base50
        ours.ratio = base50 / med
        ours.met = med <= 1.5 and ours.ratio >= 10
        base6 = baseline_median(viewers, events)
        results.append(Result("bench_rules50", "baseline cost growth 6 -> 50 rules", base50 / base6, "x",
                              note=f"baseline medians {base6:.2f} -> {base50:.2f} µs"))
    return results


if __name__ == "__main__":
    raise SystemExit(cli("bench_rules50", run))
