"""Axes of child sweeps: one sweep per training region (``sweep.train_regions``) or per coverage
share (``sweep.outside_shares``).

A training region (``task.train_region``) and the share of training tasks drawn outside it
(``task.outside_share``) fix the training pool and the task samplers, which are static parts of
the compiled program, so neither is a traced grid axis: each value is a sweep of its own over
the same intensities, seeds and diversities, run in a subdirectory of the run directory
(``region-<name>/`` or ``coverage-<q>/``: its own config, checkpoints, report and plots). The
parent directory gets ``report.json`` and ``report.md`` that put the children side by side:

- regions: each region's "which objective" section and primary onsets;
- coverage (Langosco et al. 2022: how much training outside the region removes the proxy?):
  per share q, the verdict, the excess proxy pull and margin over the reference arm with their
  intervals, the share of answers that leave the region, and ``coverage.png``.

``meta-evo resume RUN_DIR`` on the parent continues the child that was running and runs the
ones not started; finished children are read from their reports.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from meta_evo.config import Config


@dataclasses.dataclass(frozen=True)
class Child:
    """One child sweep: ``label`` for people, ``dirname`` under the parent, its ``cfg``, and
    the axis value (a region string or a share)."""

    label: str
    dirname: str
    cfg: Config
    value: object


def region_dir(parent: Path, region: str) -> Path:
    """``parent/region-<name>``, with the region's parameters kept readable."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", region.replace(":", "-"))
    return Path(parent) / f"region-{slug}"


def region_config(cfg: Config, region: str) -> Config:
    """The sweep of one region: ``task.train_region = region``, no region axis."""
    return cfg.replace(task=dataclasses.replace(cfg.task, train_region=region),
                       sweep=dataclasses.replace(cfg.sweep, train_regions=()))


def coverage_config(cfg: Config, share: float) -> Config:
    """The sweep of one coverage share: ``task.outside_share = share``, no coverage axis."""
    return cfg.replace(task=dataclasses.replace(cfg.task, outside_share=float(share)),
                       sweep=dataclasses.replace(cfg.sweep, outside_shares=()))


def children(cfg: Config) -> list[Child]:
    """The child sweeps of a config's axis, in order; [] without one."""
    sw = cfg.sweep
    if sw.train_regions:
        return [Child(f"region {r}", region_dir(Path("."), r).name, region_config(cfg, r), r)
                for r in sw.train_regions]
    return [Child(f"q = {q:g}", f"coverage-{q:g}", coverage_config(cfg, q), float(q))
            for q in sw.outside_shares]


def has_children(cfg: Config) -> bool:
    return bool(cfg.sweep.train_regions or cfg.sweep.outside_shares)


def _section(md: str, title: str) -> str:
    """The markdown section ``## title`` (up to the next ``## ``), or ''."""
    start = md.find(f"## {title}")
    if start < 0:
        return ""
    end = md.find("\n## ", start + 3)
    return md[start:end if end >= 0 else len(md)].strip()


def _summary(child: Child, sub: Path) -> dict:
    rep = json.loads((sub / "report.json").read_text())
    return {"label": child.label, "value": child.value, "dir": sub.name,
            "onsets": [o for o in rep.get("onsets", []) if o.get("role") == "primary"],
            "which_objective": rep.get("which_objective") or {}}


def write_region_report(parent: Path, cfg: Config) -> dict:
    """``parent/report.json`` and ``report.md`` from the regions' own reports."""
    kids = children(cfg)
    regions = [{"region": k.value, **_summary(k, parent / k.dirname)} for k in kids]
    out = {"kind": "meta-evo region sweep", "train_regions": list(cfg.sweep.train_regions),
           "regions": regions}
    (parent / "report.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"# Region sweep: {cfg.task.family}, learner `{cfg.learner.kind}`", "",
             "One sweep per training region (the region fixes the training pool and samplers), "
             "each in its own directory with its full report. Out of each region, what does "
             "the evolved learner pursue?", ""]
    for k, s in zip(kids, regions, strict=True):
        md = (parent / k.dirname / "report.md").read_text()
        lines += [f"## Region `{k.value}` ([{k.dirname}/report.md]({k.dirname}/report.md))", ""]
        for o in s["onsets"]:
            lines.append(f"- primary `{o['metric']}`, d={o['diversity']}: {o['summary']}")
        wo = _section(md, "Which objective")
        if wo:
            lines += ["", wo.replace("## Which objective", "### Which objective", 1)
                      .replace("\n### ", "\n#### ")]
        lines.append("")
    (parent / "report.md").write_text("\n".join(lines) + "\n")
    return out


def coverage_rows(summaries: list[dict]) -> list[dict]:
    """One row per coverage share, diversity and intensity, from the children's verdicts."""
    rows = []
    for s in summaries:
        for r in (s["which_objective"] or {}).get("rows", []):
            rows.append({"q": s["value"], "dir": s["dir"], "diversity": r["diversity"],
                         "intensity": r["intensity"], "verdict": r["verdict"],
                         "statistic": r["statistic"],
                         "excess_proxy_pull": r.get("excess_proxy_pull"),
                         "excess_proxy_margin": r.get("excess_proxy_margin"),
                         "outside_share": {a: (r.get(a) or {}).get("ood_outside_share")
                                           for a in ("learner", "reference", "control")},
                         "tests": r["tests"]})
    return rows


def write_coverage_report(parent: Path, cfg: Config) -> dict:
    """``parent/report.json``, ``report.md`` and ``coverage.png`` from the shares' reports."""
    from meta_evo.report.which_objective import VERDICT_LABELS, fmt_cell

    kids = children(cfg)
    summaries = [_summary(k, parent / k.dirname) for k in kids]
    rows = coverage_rows(summaries)
    out = {"kind": "meta-evo coverage sweep", "train_region": cfg.task.train_region,
           "outside_shares": [float(q) for q in cfg.sweep.outside_shares], "rows": rows,
           "children": [{k: s[k] for k in ("label", "value", "dir", "onsets")}
                        for s in summaries]}
    (parent / "report.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"# Coverage sweep: {cfg.task.family}, learner `{cfg.learner.kind}`, region "
             f"`{cfg.task.train_region}`", "",
             "Each share q is a sweep of its own (its directory holds the full report): a "
             "training task is drawn outside the region with probability q (exact conditional "
             "draws), inside it otherwise. The reference arm is evolved without the region in "
             "every child (the same program and keys). Excess = learner minus reference, "
             "paired by seed, mean [95 % t-interval]; p: the per-level p of the pull test "
             "(the verdict uses its fixed sequence and the Holm family of that child's report).",
             "", "| q | d | i | verdict | excess pull | pull p | excess margin | answers "
             "leaving the region: learner / reference |", "|---|---|---|---|---|---|---|---|"]

    def share(c):
        return "—" if not c or c.get("mean") is None else f"{c['mean']:.2f}"

    for r in rows:
        t = r["tests"]["pull"] or {}
        p = "—" if t.get("p_level") is None else f"{t['p_level']:.3g}"
        lines.append(f"| {r['q']:g} | {r['diversity']} | {r['intensity']:g} | "
                     f"**{VERDICT_LABELS.get(r['verdict'], '—')}** | "
                     f"{fmt_cell(r['excess_proxy_pull'])} | {p} | "
                     f"{fmt_cell(r['excess_proxy_margin'])} | "
                     f"{share(r['outside_share']['learner'])} / "
                     f"{share(r['outside_share']['reference'])} |")
    lines += ["", "`coverage.png`: the excess proxy pull and margin against q, at each "
              "intensity above 0.", ""]
    (parent / "report.md").write_text("\n".join(lines) + "\n")
    from meta_evo.report.verdict_plots import coverage_figure

    coverage_figure(out, parent / "coverage.png")
    return out


def sweep_children(cfg: Config, out: str | Path, *, progress: bool | None = None,
                   resume: bool = False) -> tuple[Path, dict]:
    """Run (or with ``resume``, continue) one sweep per child of the config's axis under
    ``out``; returns ``(parent, report)``."""
    from meta_evo.config import write_config
    from meta_evo.distributed import barrier, is_writer
    from meta_evo.lock import acquire
    from meta_evo.rundir.layout import create
    from meta_evo.sweep import resume_sweep, sweep

    parent = Path(out)
    if is_writer():  # in a multi-host job process 0 alone writes; every process computes
        if resume:
            acquire(parent)
        else:
            create(out, "regions")
            write_config(parent, cfg)
    for child in children(cfg):
        barrier(f"meta-evo child {child.dirname}")  # every process sees the same state
        sub = parent / child.dirname
        if (sub / "report.json").is_file():
            continue  # finished
        if sub.exists():
            resume_sweep(sub, progress=progress)
        else:
            sweep(child.cfg, sub, progress=progress)
    barrier("meta-evo child reports")
    if not is_writer():
        return parent, {}
    if cfg.sweep.train_regions:
        return parent, write_region_report(parent, cfg)
    return parent, write_coverage_report(parent, cfg)
