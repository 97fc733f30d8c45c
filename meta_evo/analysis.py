"""Checkpoint analysis: rerun the measurement kernels on a run's saved generations (the run is
read by :mod:`meta_evo.run_reader`, the figures drawn by :mod:`meta_evo.report.run_plots`).

>>> res = meta_evo.analyze("runs/demo")   # writes analysis.json, analysis.md, analysis/*.png

Analysis reads checkpoints, not live objects: for each chosen generation it restores the
strategy mean ``theta [D_theta]`` and measures them with the engine's measurement program, the
one ``meta-evo sweep`` uses (:func:`meta_evo.engine.make_grid_measure`: the chosen generations
are grid points, in groups under ``sweep.memory_budget_mb``) with a fixed key, so every generation
is scored on the same held-out tasks and reset keys: differences between generations come from
``theta``.

Each checkpoint is also classified as the sweep report classifies its grid points, by the same
functions (:mod:`meta_evo.report.checkpoints`): its regime (memorization, identification, general
learning; ``kernels.regime``) from the pool and held-out matrices, and, when
``task.train_region`` is set, its outcome in and out of distribution (goal generalizes,
pseudo-aligned, capability only, no optimization; ``kernels.generalization``). A single run is
one grid point with no seeds to take shares over: each checkpoint gets the kernels' per-seed
classification (S = 1 per checkpoint), in ``analysis.json`` (``regimes``,
``which_objective``) and in the tables of ``analysis.md``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from meta_evo.errors import RunDirError
from meta_evo.report.run_plots import plot_analysis
from meta_evo.run_reader import Run, load_run
from meta_evo.rundir.io import to_py, write_json

TRAIN_FIELDS = ("fitness_mean", "fitness_best", "nan_members", "nan_inner")


def _warn(msg: str) -> None:
    sys.stderr.write(f"meta-evo: warning: {msg}\n")


def reference_comparison(run: Run, theta: np.ndarray, reference: str | Path, key) -> dict:
    """This run's out-of-region statistics (proxy pull, margin, share of answers leaving the
    region, OOD sensitivity and accuracy) beside a reference run's, both measured by this
    run's program (the same held-out tasks and proxy columns). A description: one seed per
    arm cannot be tested (the exact sign-flip test needs 2^-S <= alpha, S >= 5 seeds), which
    is what a sweep with ``sweep.reference: unrestricted`` gives."""
    import jax

    from meta_evo.measure import make_measure
    from meta_evo.report.which_objective import SHOWN

    ref = load_run(reference)
    cfg, rcfg = run.config, ref.config
    if rcfg.task.train_region != "none":
        raise RunDirError(f"{ref.path}: a reference run is evolved without a training region "
                          f"(task.train_region: none), this one has {rcfg.task.train_region!r}")
    if (rcfg.learner.kind, ref.meta.theta_size) != (cfg.learner.kind, run.meta.theta_size):
        raise RunDirError(f"{ref.path}: the reference must be the same learner "
                          f"({cfg.learner.kind}, {run.meta.theta_size} weights); it is "
                          f"{rcfg.learner.kind} with {ref.meta.theta_size}")
    measure = jax.jit(make_measure(run.meta))
    got = {name: measure(np.asarray(th), key, cfg.task.diversity)
           for name, th in (("run", theta), ("reference", ref.mean_theta()))}
    rows = {m: {"run": to_py(got["run"][m]), "reference": to_py(got["reference"][m])}
            for m in SHOWN if m in got["run"]}
    for r in rows.values():
        ok = r["run"] is not None and r["reference"] is not None
        r["excess"] = to_py(r["run"] - r["reference"]) if ok else None
    return {"reference_dir": str(ref.path), "reference_generation": ref.steps[-1],
            "rows": rows, "verdict": None,
            "why_no_verdict": "one seed per arm: the verdict is an exact sign-flip test over "
                              ">= 5 seeds; run `meta-evo sweep` on this config (its reference "
                              "arm is this comparison, once per seed)"}


def reference_markdown(comp: dict | None, region: str) -> str:
    """The comparison's table, or what the verdict needs when no reference run was given."""
    if comp is None:
        return ("\n## Which objective\n\nNo verdict: it compares this run with a reference "
                "evolved without the training region, over seeds. Pass `--reference "
                "REF_RUN_DIR` (the same config with `task.train_region=none`) to see this "
                "run's proxy pull and margin beside the reference's, or run `meta-evo sweep` on "
                f"this config (region `{region}`: its reference arm is evolved automatically).\n")
    lines = ["", "## Which objective (description, not a verdict)", "",
             f"Reference: `{comp['reference_dir']}` (generation "
             f"{comp['reference_generation']}), measured by this run's program. "
             f"No verdict: {comp['why_no_verdict']}.", "",
             "| statistic (out of the region) | this run | reference | excess |",
             "|---|---|---|---|"]

    def f(x):
        return "—" if x is None else f"{x:+.3f}"

    for m, r in comp["rows"].items():
        lines.append(f"| {m} | {f(r['run'])} | {f(r['reference'])} | {f(r['excess'])} |")
    return "\n".join(lines) + "\n"


def analyze(run_dir: str | Path, steps: list[int] | None = None, *, progress: bool = True,
            key_seed: int | None = None, warn=None, echo: bool | None = None,
            reference: str | Path | None = None) -> dict:
    """Rerun the measurement kernels at checkpoint generations ``steps`` (default: all kept).

    Writes ``RUN_DIR/analysis.json`` (per generation: the kernel scalars, the mean lifetime
    curve ``[K+1]``, the cross-task matrix ``[n, n + n_proxy]`` and the training row of that
    generation; per checkpoint the regime and, with a training region, the which-objective
    outcome), ``RUN_DIR/analysis.md`` (those classifications as tables; printed to stdout when
    ``echo``, default ``progress``) and PNG plots under ``RUN_DIR/analysis/``. Damaged
    checkpoints are reported
    (one ``warn`` line each) and skipped. Returns the written dict plus ``path`` and
    ``plots_dir``. Raises RunDirError (one line) for a missing run, unknown ``steps`` or no
    readable checkpoint.
    """
    warn = warn or _warn
    t0 = time.perf_counter()
    run = load_run(run_dir)
    chosen = _choose_steps(run, steps)
    gens, thetas, train = _read_checkpoints(run, chosen, warn)
    cfg = run.config
    if progress:
        sys.stderr.write(f"meta-evo: measuring {len(gens)} checkpoints (generations "
                         f"{', '.join(map(str, gens))}) on {cfg.measure.heldout_tasks} held-out "
                         "tasks...\n")
        sys.stderr.flush()
    seed = cfg.measure.seed if key_seed is None else key_seed
    key, out = _measure_checkpoints(run, thetas, seed)
    scalars = [k for k, v in out.items() if v.ndim == 1]  # [n_steps]
    regimes, outcomes, proxies = classify_checkpoints(run.meta, gens, out)
    result = {
        "run_dir": str(run.path),
        "generations": gens,
        "scalars": scalars,
        "heldout_tasks": cfg.measure.heldout_tasks,
        "proxy_names": proxies,
        "train_region": cfg.task.train_region,
        "diversity": int(cfg.task.diversity),
        "regimes": regimes,
        "which_objective": outcomes,
        "key_seed": seed,
        "theta_names": list(run.meta.learner.describe(np.asarray(thetas[-1])).keys()),
        "steps": _step_records(gens, out, scalars, train),
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    region = cfg.task.train_region
    if reference is not None and region == "none":
        raise RunDirError(f"{run.path}: --reference compares a run with a training region "
                          "against one without; this run has none")
    if region != "none":
        result["reference"] = (None if reference is None else
                               reference_comparison(run, thetas[-1], reference, key))
    _write_analysis(run, result, progress if echo is None else echo)
    plots = run.path / "analysis"
    plots.mkdir(exist_ok=True)
    plot_analysis(result, plots)
    return {**result, "path": str(run.path / "analysis.json"), "plots_dir": str(plots)}


def _choose_steps(run: Run, steps: list[int] | None) -> list[int]:
    """The checkpoint generations to analyze: ``steps`` (sorted, each kept), default all kept."""
    kept = run.steps
    if not kept:
        raise RunDirError(f"{run.path}: no checkpoints to analyze")
    chosen = sorted(set(steps)) if steps else kept
    unknown = [s for s in chosen if s not in kept]
    if unknown:
        raise RunDirError(f"{run.path}: no checkpoint at generation "
                          f"{', '.join(map(str, unknown))} (kept: {', '.join(map(str, kept))})")
    return chosen


def _read_checkpoints(run: Run, chosen: list[int], warn) -> tuple[list, list, list]:
    """``(generations, mean thetas [D_theta], training rows)`` of the readable checkpoints
    among ``chosen``; a damaged one is reported through ``warn`` and skipped."""
    from meta_evo.rundir.store import CheckpointError

    meta = run.meta
    gens, thetas, train = [], [], []
    for s in chosen:
        try:
            state, lines = run.read(s)
        except CheckpointError as e:
            warn(f"checkpoint at generation {s} is damaged ({e}); skipped")
            continue
        gens.append(s)
        thetas.append(np.asarray(meta.mean_theta(state)))
        last = json.loads(lines[-1]) if lines else {}
        train.append({k: last.get(k) for k in TRAIN_FIELDS if k in last})
    if not gens:
        raise RunDirError(f"{run.path}: no readable checkpoint among generations "
                          f"{', '.join(map(str, chosen))}")
    return gens, thetas, train


def _measure_checkpoints(run: Run, thetas: list, seed: int) -> tuple:
    """``(key, outputs)``: the measurement outputs ``[N, ...]`` (numpy), one row per theta."""
    import jax

    from meta_evo.engine import grid_devices, group_size, make_grid_measure, run_in_groups

    meta, cfg = run.meta, run.config
    # the engine's measurement program, the one `meta-evo sweep` measures with: the checkpoints
    # are a grid of points, run in groups sized to sweep.memory_budget_mb (the last padded)
    measure = make_grid_measure(meta)
    size = group_size(meta, len(thetas), grid_devices(measure.mesh))
    key = jax.random.PRNGKey(seed)
    divs = np.full(len(thetas), cfg.task.diversity, np.int32)
    out = run_in_groups(lambda ts, ds: measure(ts, key, ds), (np.stack(thetas), divs), size)
    return key, {k: np.asarray(v) for k, v in jax.device_get(out).items()}


def _step_records(gens: list[int], out: dict, scalars: list[str], train: list[dict]) -> list:
    """Per generation: its scalars, lifetime curve and matrix (when measured), training row."""
    records = []
    for i, g in enumerate(gens):
        rec = {"generation": g, "metrics": {k: to_py(out[k][i]) for k in scalars}}
        for k in ("curve", "matrix"):
            if k in out:
                rec[k] = to_py(out[k][i])
        rec["train"] = train[i]
        records.append(rec)
    return records


def _write_analysis(run: Run, result: dict, echo: bool) -> None:
    """``analysis.json`` and ``analysis.md`` (printed to stdout when ``echo``)."""
    write_json(run.path / "analysis.json", result)
    from meta_evo.report.checkpoints import checkpoint_markdown

    region = run.config.task.train_region
    md = checkpoint_markdown(result["regimes"], result["which_objective"], str(run.path))
    if region != "none":
        md += reference_markdown(result["reference"], region)
    (run.path / "analysis.md").write_text(md)
    if echo:
        sys.stdout.write(md + "\n")
        sys.stdout.flush()


def classify_checkpoints(meta, gens: list[int], out: dict):
    """Per checkpoint: the regime (when the pool was measured) and the which-objective outcome
    (when the run has a training region), through the report's functions; and the proxy
    column names. ``out``: the measurement outputs ``[N, ...]``, one row per checkpoint."""
    from meta_evo.measure import proxy_names
    from meta_evo.report.checkpoints import checkpoint_outcomes, checkpoint_regimes
    from meta_evo.report.classify import has_objective_inputs, has_regime_inputs

    try:
        names = list(proxy_names(meta))
    except Exception:  # noqa: BLE001 - labels only
        names = list(getattr(meta.family, "proxy_names", ()))
    if "matrix" in out:
        extra = out["matrix"].shape[-1] - out["matrix"].shape[-2]
        names = names[:extra] + [f"proxy {k}" for k in range(len(names), extra)]
    regimes = checkpoint_regimes(gens, out) if has_regime_inputs(out) else None
    region = meta.cfg.task.train_region
    outcomes = (checkpoint_outcomes(gens, out, names)
                if region != "none" and has_objective_inputs(out) else None)
    return regimes, outcomes, names
