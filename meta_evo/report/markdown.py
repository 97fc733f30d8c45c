"""``markdown(report)``: the human summary of a report dict (``report.md``)."""

from __future__ import annotations

from meta_evo.report.common import KEY_METRICS, PHASE_METRICS, diversity_label, p_text
from meta_evo.report.findings import findings_markdown
from meta_evo.report.regimes import regime_markdown
from meta_evo.report.which_objective import verdict_markdown


def _fmt(cell: dict | None, digits: int = 3) -> str:
    if not cell or cell.get("mean") is None:
        return "—"
    m, (lo, hi) = cell["mean"], cell["ci"]
    if lo is None or hi is None or lo == hi:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def _role(o: dict) -> str:
    if o["role"] == "primary":
        return f"primary (alpha {o['alpha']:.2g})"
    return f"exploratory (alpha {o['alpha']:.2g})"


def _mid(o: dict) -> str:
    """The logistic midpoint where an onset passes (elsewhere the fit locates noise)."""
    if o["midpoint"] is None or not o["found"]:
        return "—"
    lo, hi = o["midpoint_ci"]
    return f"{o['midpoint']:.2f}" + (f" ({lo:.2f} to {hi:.2f})" if lo is not None else "")


def _trend(o: dict) -> str:
    t = o["trend"]
    if t["rho"] is None:
        return "—"
    return f"{t['rho']:+.2f} (p {p_text(t['p'], t.get('p_se'))})"


def _has_data(rep: dict, key: str) -> bool:
    return any(isinstance(r.get(key), dict) and r[key].get("mean") is not None
               for r in rep["levels"])


def _tests_section(rep: dict) -> list[str]:
    t = rep["tests"]
    ax = rep["axes"]
    seeds = ax["seeds"]
    alpha = t["alpha"]
    lines = [
        "## Onsets",
        "",
        f"Each level is tested with an exact paired sign-flip test over the {seeds} seeds, "
        "one-sided (H1: learner minus control > 0); the onset is the smallest intensity from "
        "which that level and every higher one pass (fixed sequence from the top; its p is the "
        "largest per-level p from the onset up). "
        f"The primary metric `{t['primary_metric']}` is tested once per diversity level; "
        + (f"those {t['primary_tests']} tests are one family, Holm-adjusted at alpha "
           f"{alpha:g}" + (f" (each at {t['primary_alpha']:.2g} until one passes everywhere)"
                           if t.get("primary_alpha") else "")
           if (t.get("primary_tests") or 1) > 1 else f"at alpha {alpha:g}")
        + ". The "
        f"{t['exploratory_tests']} other tests (other metrics, contrasts) are **exploratory**: "
        "one family, Holm-adjusted (graphical Holm with the fixed sequence inside each test), "
        + (f"each at alpha {t['exploratory_alpha']:.2g}; " if t["exploratory_alpha"] else "")
        + "p (adj.) is the smallest family level at which a test claims an onset.",
        "",
    ]
    if t["min_p"] is not None:
        if t.get("exact", True):
            lines.append(f"With {seeds} seeds the smallest achievable p is 2^-{seeds} = "
                         f"{t['min_p']:.2g}.")
        else:
            lines.append(f"With {seeds} seeds the p-values are Monte Carlo estimates over "
                         "random sign patterns (± their standard error); the smallest "
                         f"achievable p is {t['min_p']:.2g}.")
        if t["min_p"] > alpha:
            lines.append(f"**That is above alpha {alpha:g}: too few seeds to test at alpha; no "
                         "onset is claimed. Use 8 or more seeds.**")
        elif t["exploratory_alpha"] and t["min_p"] > t["exploratory_alpha"]:
            lines.append(f"It is above the exploratory level {t['exploratory_alpha']:.2g}: no "
                         "exploratory test can pass at this seed count.")
        lines.append("")
    lines += [
        "The onset is a detection threshold, not an effect size: with more seeds the same "
        "effect is detected at lower intensities, so it moves with the number of seeds. The "
        "effect sizes are the per-level differences below (learner minus control, mean over "
        f"seeds with a {t['ci_level']:.0%} t-interval). The resampling stability of the onset "
        f"(the \"stability\" column) reruns the whole procedure on {t['num_bootstrap']} "
        "resamples of the seeds; a resample that finds no onset counts as \"none\"; "
        "P(onset) is the share that find one. The trend column is the mean within-seed "
        "Spearman rho of (learner minus control) with intensity and its sign-flip p (each "
        "seed's whole difference vector flipped). The logistic midpoint is fitted to the "
        "per-level differences; it means something only where the difference clearly rises.",
        "",
        f"All p-values are conditional on {t['conditional_on']}.",
        "",
    ]
    for nt in rep.get("not_tested", []):
        lines += [f"Not tested at d = {nt['diversity']}: {nt['reason']}.", ""]
    lines += _difference_table(rep)
    return lines


def _difference_table(rep: dict) -> list[str]:
    """Per level, the primary metric's effect size: learner minus control with its interval
    and the level's p."""
    prim = [o for o in rep["onsets"] if o["role"] == "primary" and o.get("levels")]
    if not prim:
        return []
    lines = [f"### Effect sizes: `{rep['tests']['primary_metric']}`, learner minus control", "",
             "| d | i | difference [95 % CI] | p (level) |", "|---|---|---|---|"]
    for o in prim:
        for lv in o["levels"]:
            lo, hi = lv["ci"]
            ci = "—" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"
            d = "—" if lv["difference"] is None else f"{lv['difference']:+.3f}"
            lines.append(f"| {o['diversity']} | {lv['intensity']:g} | {d} {ci} | "
                         f"{p_text(lv['p'])} |")
    return lines + [""]


def _onset_rows(onsets: list[dict], label: dict, with_control: bool) -> list[str]:
    rows = []
    for o in onsets:  # every tested row, passing or not
        name = label.get(o["metric"], o["metric"])
        ctrl = f" | {o['control']}" if with_control else ""
        rows.append(f"| {name} | {diversity_label(o['diversity'])}{ctrl} | {_role(o)} | "
                    f"{o['summary'].split(' (p ')[0]} | {p_text(o['p'], o.get('p_se'))} | "
                    f"{p_text(o['p_adjusted'])} | "
                    f"{o['interval']} | {_trend(o)} | {_mid(o)} |")
    return rows


def _selection_section(rep: dict) -> list[str]:
    s = rep.get("selection")
    if not s:
        return []
    lines = ["## What selection did", "",
             f"{s['strategy']} with {s['population']} members, {s['selection']} selection, "
             f"search scale sigma = {s['sigma']:g}"
             + (" (mirrored pairs)" if s["antithetic"] and s["strategy"] == "Open_ES" else "")
             + f", {s['generations']} generations. N_eff = 1 / sum(w^2) is the effective "
             "number of parents of the rank weights. On noise alone (fitness unrelated to "
             "theta) the mean moves sigma / sqrt(N_eff) per coordinate per generation with iid "
             "members, so sqrt(sum of sigma^2 over generations / N_eff) after all of them "
             "(neutral drift).", ""]
    head = ["i", "raw pressure", "N_eff"]
    if s["sigma_recorded"]:
        head += ["realized sigma (final)", "realized sigma (mean)"]
    head.append("neutral drift per coordinate")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in s["levels"]:
        cells = [f"{r['intensity']:.2f}", p_text(r["raw_pressure"]), f"{r['n_eff']:.2f}"]
        if s["sigma_recorded"]:
            cells += [p_text(r.get("sigma_final")), p_text(r.get("sigma_mean"))]
        cells.append(p_text(r["neutral_drift"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    at0 = (f"At i = 0 (everyone selected) iid members make the mean drift by about "
           f"sigma / sqrt(M) per coordinate per generation, sigma * sqrt(G / M) = "
           f"{s['drift_i0_iid']:.3g} after G = {s['generations']} generations (M = "
           f"{s['population']}, sigma = {s['sigma']:g})")
    if s["mirrored_cancel_at_i0"]:
        at0 += "; with mirrored pairs the two members of a pair cancel, so the drift is 0 up " \
               "to rounding"
    if not s["sigma_recorded"]:
        at0 += ". The strategy did not record a realized sigma; the table uses the configured one"
    lines += [at0 + ".", ""]
    return lines


def _header(rep: dict) -> list[str]:
    """Title, arms, grid, measurement, cost in one line, and intensity against raw pressure."""
    ax = rep["axes"]
    cfg = rep["config"]
    arms, divs = rep["arms"], ax["diversities"]
    labels = rep.get("arm_labels", {a: a for a in arms})
    learner, control = rep.get("learner", arms[0]), rep.get("control")
    physics = rep["family"] != "analytic"  # analytic has no backend and no episodes
    backend = f" ({rep['backend']})" if physics else ""
    episodes = f", episodes of {cfg['task']['episode_length']} steps" if physics else ""
    return [
        f"# Sweep report: {rep['family']}{backend}, {rep['agent']} agent", "",
        f"Learner arm `{labels[learner]}`" + (f", control arm `{labels[control]}`" if control
                                              else ", no control arm (onsets against the "
                                              "lowest pressure)") + ".",
        f"Grid: {len(ax['intensities'])} selection intensities x {ax['seeds']} seeds x "
        f"{len(divs)} diversity levels ({', '.join(diversity_label(d) for d in divs)}); "
        f"{rep['generations']} meta-generations of {ax['population']} members "
        f"({ax['selection']} selection), lifetimes of {cfg['learner']['lifetime']} x "
        f"{cfg['learner']['candidates']}{episodes}.",
        f"Measured on {cfg['measure']['heldout_tasks']} held-out tasks (chance accuracy "
        f"{rep['chance_accuracy']:.2f}, over the task columns) at generations "
        f"{rep['measure_generations']}.",
        f"Env steps: {rep['env_steps']:,}; wall time {rep['wall_s']:.0f} s"
        + (" in the process that finished it (resumed from its checkpoints: earlier processes "
           "not counted)" if rep.get("resumed") else "") + " "
        f"({rep['platform']['backend']}, {rep['platform']['device']}).",
        "",
        "Selection intensity i and the raw pressure it maps to "
        f"({'elite fraction' if ax['selection'] == 'truncation' else 'Boltzmann beta'}):",
        "",
        "| i | " + " | ".join(f"{i:.2f}" for i in ax["intensities"]) + " |",
        "|---|" + "---|" * len(ax["intensities"]),
        "| raw | " + " | ".join(f"{p:.3f}" for p in ax["raw_pressures"]) + " |",
        "",
    ]


def _onset_tables(rep: dict) -> list[str]:
    """The primary and exploratory tests, and the diversity contrasts, one row each."""
    labels = rep.get("arm_labels", {a: a for a in rep["arms"]})
    learner = rep.get("learner", rep["arms"][0])
    label = dict(PHASE_METRICS)
    head = ("| metric | diversity | control | test | onset | p | p (adj.) | resampling "
            "stability, P(onset) | trend rho (p) | logistic midpoint (difference) |")
    prim = [o for o in rep["onsets"] if o["role"] == "primary"]
    expl = [o for o in rep["onsets"] if o["role"] != "primary"]
    expl += rep.get("reference_tests", [])  # the which-objective pull: the same family
    lines = ["### Primary", "", head, "|" + "---|" * 10]
    lines += _onset_rows(prim, {o["metric"]: o["metric"] for o in prim} | label, True)
    lines += ["", "### Exploratory (Holm-adjusted; every tested row)", "", head,
              "|" + "---|" * 10]
    lines += _onset_rows(expl, label, True)
    if rep.get("contrasts"):
        lines += ["", "### Diversity contrast (exploratory)", "",
                  f"Smallest intensity from which `{labels[learner]}` with varying tasks "
                  f"exceeds `{labels[learner]}` with one fixed task (same seed and level), the "
                  "same test: where online optimization pays more when tasks vary than when "
                  "they can be memorized.", "",
                  "| metric | diversity vs d=1 | test | onset | p | p (adj.) | resampling "
                  "stability, P(onset) | trend rho (p) | logistic midpoint (difference) |",
                  "|" + "---|" * 9]
        lines += _onset_rows(rep["contrasts"], label, False)
    return lines + [""]


def _section_texts(rep: dict) -> list[str]:
    """The sections a sweep has only with several task counts or a training region."""
    lines = []
    if rep.get("regimes"):
        lines += regime_markdown(rep["regimes"])
    if rep.get("which_objective"):
        lines += verdict_markdown(rep["which_objective"])
    if rep.get("algorithm"):  # issue 18: which algorithm (pool-Bayes or prior-Bayes)
        from meta_evo.report.algorithm import algorithm_markdown
        lines += algorithm_markdown(rep["algorithm"])
    return lines


def _level_tables(rep: dict) -> list[str]:
    """One table per key metric: mean ± half-width per intensity, arm and diversity."""
    ax = rep["axes"]
    arms, divs = rep["arms"], ax["diversities"]
    labels = rep.get("arm_labels", {a: a for a in arms})
    lines = ["## Metrics per level (mean ± 95 % t-interval half-width over seeds, final "
             "generation)", ""]
    table = {(r["arm"], r["diversity"], r["intensity"]): r for r in rep["levels"]}
    for key, name in KEY_METRICS + (("final_fitness", "final training fitness"),):
        if not _has_data(rep, key):
            continue
        head_ = ["i"] + [f"{labels[a]} {diversity_label(d)}" for d in divs for a in arms]
        lines += [f"### {name}", "", "| " + " | ".join(head_) + " |",
                  "|" + "---|" * len(head_)]
        for i in ax["intensities"]:
            cells = [f"{i:.2f}"]
            for d in divs:
                for a in arms:
                    r = table.get((a, d, float(i)))
                    cells.append(_fmt(r.get(key) if r else None))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _strongest(rep: dict) -> list[str]:
    s = rep["strongest"]
    labels = rep.get("arm_labels", {a: a for a in rep["arms"]})
    return ["## Strongest grid point", "",
            f"`{labels.get(s['arm'], s['arm'])}` at i = {s['intensity']:.2f}, seed "
            f"{s['seed']}, {diversity_label(s['diversity'])}: objective sensitivity "
            f"{s['objective_sensitivity']:.3f}, behavioral accuracy "
            f"{s['behavioral_accuracy']:.2f} (cross_task_matrix.png).", ""]


def _plots(rep: dict) -> list[str]:
    """What each PNG shows (those the report has)."""
    lines = ["## Plots", "",
             "- `phase_diagram.png`: each metric against selection intensity; dots are seeds, "
             "lines the mean with its 95 % interval, dashed the control arm; a vertical line "
             "marks an onset that passes its test after adjustment, its band the onset "
             "interval.",
             "- `lifetime_curves.png`: held-out return along the lifetime, per intensity.",
             "- `evolution.png`: the training fitness (and the evolved step size and the "
             "realized search scale, where recorded) per meta-generation.",
             "- `cross_task_matrix.png`: the cross-task matrix of the strongest point and of "
             "the control at the same point."]
    if rep.get("regimes"):
        lines.append("- `task_count.png`: pool and held-out accuracy and sensitivity against "
                     "the number of training tasks, and the regime shares per level.")
        if len(rep["axes"]["intensities"]) > 1:
            lines.append("- `phase_2d.png`: intensity x task count; the modal regime by colour, "
                         "the primary metric by shade.")
    if rep.get("which_objective"):
        lines.append("- `which_objective.png`: the proxy pull and margin of the learner, the "
                     "reference and the control per intensity, with the verdicts.")
    return lines + [""]


def _cost(rep: dict) -> list[str]:
    """Per arm: wall time, compile times, env steps, compiles; CPU time and versions."""
    labels = rep.get("arm_labels", {a: a for a in rep["arms"]})
    lines = ["## Cost", "", "| arm | wall s | first chunk s (with compile) | measure s (with "
             "compile) | env steps | compiles (chunk, measure) |", "|---|---|---|---|---|---|"]
    for a, v in rep["timings"].items():
        meas = "shared" if v.get("shared_measure") else v["traces"]["measure"]
        lines.append(f"| {labels.get(a, a)} | {v['wall_s']} | "
                     f"{v['first_chunk_s_incl_compile']} | {v['measure_s_incl_compile']} | "
                     f"{v['env_steps']:,} | {v['traces']['chunk']}, {meas} |")
    if "cpu_s" in rep:
        lines += ["", f"Process CPU time {rep['cpu_s']:.0f} s."]
    vers = rep["versions"]
    return lines + ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), ""]


def markdown(rep: dict) -> str:
    """The human summary: setup, findings, onsets (primary and exploratory), the sections,
    selection, per-metric tables (mean ± 95 % CI over seeds), the strongest point, plots and
    cost."""
    lines = _header(rep)
    if rep.get("findings"):
        lines += findings_markdown(rep["findings"])
    lines += _tests_section(rep)
    lines += _onset_tables(rep)
    lines += _section_texts(rep)
    lines += _selection_section(rep)
    lines += _level_tables(rep)
    lines += _strongest(rep)
    lines += _plots(rep)
    lines += _cost(rep)
    return "\n".join(lines)
