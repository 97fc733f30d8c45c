"""The training-region axis of a sweep (``sweep.train_regions``): one sweep per region.

A training region (``task.train_region``) fixes the training pool and the task samplers, which
are static parts of the compiled program, so regions are not a traced grid axis: each region is
a sweep of its own over the same intensities, seeds and diversities, run in the subdirectory
``RUN_DIR/region-<name>/`` (its own config, checkpoints, report and plots). The parent
directory gets ``report.json`` and ``report.md`` that put the regions side by side: the
"which objective" table of each (in and out of its region), its primary onsets, and a line per
region on what the learner pursues out of distribution.

``meta-evo resume RUN_DIR`` on the parent continues the region that was running and runs the
ones not started; finished regions are read from their reports.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from meta_evo.config import Config


def region_dir(parent: Path, region: str) -> Path:
    """``parent/region-<name>``, with the region's parameters kept readable."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", region.replace(":", "-"))
    return Path(parent) / f"region-{slug}"


def region_config(cfg: Config, region: str) -> Config:
    """The sweep of one region: ``task.train_region = region``, no region axis."""
    return cfg.replace(task=dataclasses.replace(cfg.task, train_region=region),
                       sweep=dataclasses.replace(cfg.sweep, train_regions=()))


def _section(md: str, title: str) -> str:
    """The markdown section ``## title`` (up to the next ``## ``), or ''."""
    start = md.find(f"## {title}")
    if start < 0:
        return ""
    end = md.find("\n## ", start + 3)
    return md[start:end if end >= 0 else len(md)].strip()


def _summary(region: str, sub: Path) -> dict:
    rep = json.loads((sub / "report.json").read_text())
    wo = rep.get("which_objective") or {}
    return {"region": region, "dir": sub.name,
            "onsets": [o for o in rep.get("onsets", []) if o.get("role") == "primary"],
            "which_objective": wo}


def write_region_report(parent: Path, cfg: Config) -> dict:
    """``parent/report.json`` and ``report.md`` from the regions' own reports."""
    regions = [_summary(r, region_dir(parent, r)) for r in cfg.sweep.train_regions]
    out = {"kind": "meta-evo region sweep", "train_regions": list(cfg.sweep.train_regions),
           "regions": regions}
    (parent / "report.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"# Region sweep: {cfg.task.family}, learner `{cfg.learner.kind}`", "",
             "One sweep per training region (the region fixes the training pool and samplers), "
             "each in its own directory with its full report. Out of each region, what does "
             "the evolved learner pursue?", ""]
    for r, s in zip(cfg.sweep.train_regions, regions, strict=True):
        sub = region_dir(parent, r)
        md = (sub / "report.md").read_text()
        lines += [f"## Region `{r}` ([{sub.name}/report.md]({sub.name}/report.md))", ""]
        for o in s["onsets"]:
            lines.append(f"- primary `{o['metric']}`, d={o['diversity']}: {o['summary']}")
        wo = _section(md, "Which objective")
        if wo:
            lines += ["", wo.replace("## Which objective", "### Which objective", 1)]
        lines.append("")
    (parent / "report.md").write_text("\n".join(lines) + "\n")
    return out


def sweep_regions(cfg: Config, out: str | Path, *, progress: bool | None = None,
                  resume: bool = False) -> tuple[Path, dict]:
    """Run (or with ``resume``, continue) one sweep per region of ``cfg.sweep.train_regions``
    under ``out``; returns ``(parent, report)``."""
    from meta_evo.distributed import barrier, is_writer
    from meta_evo.lock import acquire
    from meta_evo.runs import create_run_dir, write_config
    from meta_evo.sweep import resume_sweep, sweep

    parent = Path(out)
    if is_writer():  # in a multi-host job process 0 alone writes; every process computes
        if resume:
            acquire(parent)
        else:
            create_run_dir(out)
            write_config(parent, cfg)
    for region in cfg.sweep.train_regions:
        barrier(f"meta-evo region {region}")  # every process sees the same directory state
        sub = region_dir(parent, region)
        if (sub / "report.json").is_file():
            continue  # finished
        if sub.exists():
            resume_sweep(sub, progress=progress)
        else:
            sweep(region_config(cfg, region), sub, progress=progress)
    barrier("meta-evo region reports")
    if not is_writer():
        return parent, {}
    return parent, write_region_report(parent, cfg)
