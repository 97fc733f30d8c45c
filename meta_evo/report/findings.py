"""What a sweep may claim about the first question, and no more.

Beating the shuffled control on objective sensitivity (in-context adaptation) is necessary for
learned optimization, not sufficient: a lookup that identifies its task among the training
pool adapts to the reward without optimizing it. The report therefore separates three
findings, each its own test of the learner against the control (the tests of
:mod:`meta_evo.report.build`: sign-flip, fixed sequence, Holm within their family):

- **in-context adaptation**: objective sensitivity (the primary metric by default);
- **general learning**: behavioral accuracy on held-out tasks;
- **optimizer-like updates**: update alignment, the cosine of the lifetime's steps with the
  task's improvement direction (defined only for learners with a ``phi``).

"Learned optimization" is said only at the levels where all three pass; otherwise the report
names what passed.
"""

from __future__ import annotations

FINDINGS = (("in-context adaptation", "objective_sensitivity"),
            ("general learning", "behavioral_accuracy"),
            ("optimizer-like updates", "update_alignment"))


def _test(onsets: list[dict], metric: str, d: int) -> dict | None:
    return next((o for o in onsets if o["metric"] == metric and o["diversity"] == d
                 and o["kind"] == "control"), None)


def findings_section(onsets: list[dict], diversities, intensities) -> dict | None:
    """Per diversity level: each finding's test (passed or not, onset, p adjusted, the top
    level's difference with its interval) and the claim those support."""
    if not onsets:
        return None
    rows = []
    for d in diversities:
        d = int(d)
        items = []
        for name, metric in FINDINGS:
            t = _test(onsets, metric, d)
            top = (t.get("levels") or [None])[-1] if t else None
            items.append({"finding": name, "metric": metric, "tested": t is not None,
                          "passed": bool(t and t["found"]),
                          "onset": t["onset"] if t else None,
                          "p_adjusted": t["p_adjusted"] if t else None,
                          "role": t["role"] if t else None, "top_level": top})
        rows.append({"diversity": d, "findings": items, "claim": claim(items)})
    return {"findings": [n for n, _ in FINDINGS], "rows": rows}


def claim(items: list[dict]) -> str:
    """The sentence the three findings support."""
    passed = [x for x in items if x["passed"]]
    if not any(x["tested"] for x in items):
        return "not tested (the learner and its control are the same by construction here)"
    if len(passed) == len(items):
        where = max(x["onset"] for x in items)
        return f"learned optimization (all three findings pass) from i = {where:g}"
    if not passed:
        return "none of the three findings passes against the control"
    names = " and ".join(f"{x['finding']} (from i = {x['onset']:g})" for x in passed)
    failed = [x for x in items if not x["passed"]]
    missing = " and ".join(x["finding"] + ("" if x["tested"] else " (not measured)")
                           for x in failed)
    return (f"{names} {'passes' if len(passed) == 1 else 'pass'}; {missing} "
            f"{'does' if len(failed) == 1 else 'do'} not, so no optimizer is claimed")


def findings_markdown(sec: dict) -> list[str]:
    lines = ["## Findings: what the sweep may claim", "",
             "Three findings, each the learner against its control: in-context adaptation "
             "(objective sensitivity), general learning (held-out accuracy), optimizer-like "
             "updates (update alignment). The learner is called a learned optimizer only where "
             "all three pass. Difference: learner minus control at the top intensity, mean [95 % "
             "t-interval].", "",
             "| d | finding | test | passes | onset | p (adj.) | difference at the top level |",
             "|---|---|---|---|---|---|---|"]
    for r in sec["rows"]:
        for x in r["findings"]:
            top = x["top_level"]
            diff = "—"
            if top and top["difference"] is not None and None not in top["ci"]:
                diff = f"{top['difference']:+.3f} [{top['ci'][0]:+.3f}, {top['ci'][1]:+.3f}]"
            p = "—" if x["p_adjusted"] is None else f"{x['p_adjusted']:.3g}"
            onset = "—" if x["onset"] is None else f"{x['onset']:g}"
            lines.append(f"| {r['diversity']} | {x['finding']} | {x['role'] or 'not tested'} "
                         f"| {'yes' if x['passed'] else 'no'} | {onset} | {p} | {diff} |")
    lines.append("")
    lines += [f"- d = {r['diversity']}: {r['claim']}." for r in sec["rows"]]
    return lines + [""]
