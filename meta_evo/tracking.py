"""Experiment tracking behind one small interface: TensorBoard (``log.tensorboard``, event
files under ``RUN_DIR/tb/``, through tensorboardX) and Weights & Biases (``log.wandb``).

:func:`open_trackers` returns a :class:`Tracker`: ``scalars(values, step)``, ``table(name,
columns, rows)``, ``image(name, png_path)``, ``text(name, text)``, ``flush()``, ``close()``;
with both backends off it does nothing. wandb is not a dependency of meta-evo: it is imported
only when ``log.wandb`` is true, and a config that asks for it where it is not installed is
refused (:func:`check_wandb`, one-line :class:`~meta_evo.config.ConfigError`). The W&B
project is ``$WANDB_PROJECT`` (default ``meta-evo``), the W&B run's name the run directory's
name, and the mode (online, offline, disabled) wandb's own ``$WANDB_MODE``.

What is tracked: for a single run every numeric column of ``metrics.jsonl`` per generation
(:mod:`meta_evo.single_run`); for a sweep the fitness curves of every grid point and arm per chunk
(:func:`point_tag`), then the report's metric table, its PNG figures, the resolved config
and the provenance (:func:`track_sweep_report`).
"""

from __future__ import annotations

import html
import os
import struct
from pathlib import Path

from meta_evo.config import Config, check_wandb

STEP = "generation"  # the x axis of every curve


class Tracker:
    """The interface; this base class tracks nothing (both backends off)."""

    def scalars(self, values: dict, step: int) -> None:
        """Numbers by tag at ``step`` (a generation)."""

    def table(self, name: str, columns: list[str], rows: list[list]) -> None:
        """A table of ``rows`` (each one value per column)."""

    def image(self, name: str, png_path: str | Path) -> None:
        """A PNG file."""

    def text(self, name: str, text: str) -> None:
        """Preformatted text (a config, provenance)."""

    def flush(self) -> None:
        """Make what was tracked so far durable."""

    def close(self) -> None:
        """Flush and end tracking."""


def png_size(data: bytes) -> tuple[int, int]:
    """``(height, width)`` of PNG bytes (from the IHDR chunk); ValueError if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """``| a | b |`` rows with a header separator (TensorBoard renders text as markdown)."""
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


class TensorBoard(Tracker):
    """Event files under ``log_dir`` (tensorboardX); ``purge_step``: a resumed run drops the
    events it will write again."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: dict, step: int) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, step)

    def table(self, name: str, columns: list[str], rows: list[list]) -> None:
        self.writer.add_text(name, markdown_table(columns, rows))

    def image(self, name: str, png_path: str | Path) -> None:
        from tensorboardX.proto.summary_pb2 import Summary

        data = Path(png_path).read_bytes()
        h, w = png_size(data)
        img = Summary.Image(height=h, width=w, colorspace=4, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag=name, image=img)])
        self.writer._get_file_writer().add_summary(summary, 0)  # the PNG as it is, no decode

    def text(self, name: str, text: str) -> None:
        self.writer.add_text(name, "\n".join("    " + t for t in text.splitlines()))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def require_wandb():
    """The wandb module; ConfigError (one line) when it is not installed."""
    check_wandb()
    import wandb

    return wandb


class WandB(Tracker):
    """A W&B run named after the run directory, with the config; curves are logged against
    :data:`STEP` (not wandb's own step), so curves of grid points run one after another may
    each start at generation 1."""

    def __init__(self, cfg: Config, out_dir: Path, kind: str):
        self.wandb = require_wandb()
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT") or "meta-evo",
                                   name=out_dir.name, dir=str(out_dir), job_type=kind,
                                   config=cfg.to_dict())
        self.run.define_metric(STEP)
        self.run.define_metric("*", step_metric=STEP)

    def scalars(self, values: dict, step: int) -> None:
        self.run.log({STEP: step, **values})

    def table(self, name: str, columns: list[str], rows: list[list]) -> None:
        self.run.log({name: self.wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def image(self, name: str, png_path: str | Path) -> None:
        self.run.log({name: self.wandb.Image(str(png_path))})

    def text(self, name: str, text: str) -> None:
        self.run.log({name: self.wandb.Html(f"<pre>{html.escape(text)}</pre>")})

    def close(self) -> None:
        self.run.finish()


class _All(Tracker):
    """Every tracker of a list, in order."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def scalars(self, values, step):
        for t in self.trackers:
            t.scalars(values, step)

    def table(self, name, columns, rows):
        for t in self.trackers:
            t.table(name, columns, rows)

    def image(self, name, png_path):
        for t in self.trackers:
            t.image(name, png_path)

    def text(self, name, text):
        for t in self.trackers:
            t.text(name, text)

    def flush(self):
        for t in self.trackers:
            t.flush()

    def close(self):
        for t in self.trackers:
            t.close()


def open_trackers(cfg: Config, out_dir: Path | None, kind: str, *,
                  purge_step: int | None = None) -> Tracker:
    """The trackers ``cfg.log`` asks for, writing for the run directory ``out_dir`` (``kind``:
    ``run`` or ``sweep``); a :class:`Tracker` that does nothing when both are off or there is
    no run directory. ConfigError when ``log.wandb`` is on and wandb is not installed."""
    if out_dir is None:
        return Tracker()
    out_dir = Path(out_dir)
    trackers: list[Tracker] = []
    if cfg.log.wandb:
        trackers.append(WandB(cfg, out_dir, kind))
    if cfg.log.tensorboard:
        trackers.append(TensorBoard(out_dir / "tb", purge_step))
    if len(trackers) <= 1:
        return trackers[0] if trackers else Tracker()
    return _All(trackers)


# --- what a sweep tracks ------------------------------------------------------------------------
TRACKED = ("fitness_mean", "fitness_best")  # the per-point curves of a sweep


def point_tag(arm: str, metric: str, intensity: float, diversity: int, seed: int) -> str:
    """``learner/fitness_mean/i0.5_d1_s2``: one curve per arm, metric and grid point."""
    return f"{arm}/{metric}/i{float(intensity):g}_d{int(diversity)}_s{int(seed)}"


def chunk_scalars(arm: str, metrics: dict, start: int, intensity, diversity,
                  seed) -> list[tuple[int, dict]]:
    """``[(generation, {tag: value})]`` of one chunk of a group: ``metrics[name]`` is
    ``[points, n]`` (generations ``start + 1 .. start + n``); the grid axes are ``[points]``."""
    out = []
    names = [k for k in TRACKED if k in metrics]
    n = metrics[names[0]].shape[1] if names else 0
    for j in range(n):
        values = {point_tag(arm, k, intensity[p], diversity[p], seed[p]):
                  float(metrics[k][p, j]) for k in names for p in range(len(intensity))}
        out.append((start + j + 1, values))
    return out


def level_table(report: dict) -> tuple[list[str], list[list]]:
    """The report's metrics per level (``report["levels"]``: arm, diversity, intensity,
    pressure, then each metric's mean over seeds) as columns and rows."""
    rows_in = report.get("levels") or []
    keys = ["arm", "diversity", "intensity", "pressure"]
    metrics = [k for k in (rows_in[0] if rows_in else {}) if k not in keys]
    rows = [[r[k] for k in keys] + [(r[m] or {}).get("mean") for m in metrics]
            for r in rows_in]
    return keys + metrics, rows


def track_sweep_report(tracker: Tracker, report: dict, out_dir: Path | None,
                       config_yaml: str) -> None:
    """A finished sweep's results: the metric table, the primary tests' rows, the PNG
    figures in ``out_dir``, the resolved config and the provenance."""
    import json

    columns, rows = level_table(report)
    tracker.table("report/levels", columns, rows)
    prim = [o for o in report.get("onsets", []) if o.get("role") == "primary"]
    tracker.table("report/primary", ["metric", "diversity", "summary"],
                  [[o.get("metric"), o.get("diversity"), o.get("summary")] for o in prim])
    for png in sorted(Path(out_dir).glob("*.png")) if out_dir is not None else []:
        tracker.image(f"report/{png.stem}", png)
    tracker.text("config", config_yaml)
    prov = {"provenance": report.get("provenance"), "versions": report.get("versions"),
            "platform": report.get("platform")}
    tracker.text("provenance", json.dumps(prov, indent=2))
