"""The sweep report: ``report.json``, ``report.md`` and PNG plots in the run directory.

- :mod:`meta_evo.report.common`: what the others share: metric names and labels, the tested
  metrics, alpha and the interval level, JSON helpers;
- :mod:`meta_evo.report.stats`: the statistics on plain ``[L, S]`` arrays (onset tests and
  the multiplicity rule, t-intervals); the calibration tests run exactly this code;
- :mod:`meta_evo.report.build`: ``build_report(result)``, a sweep result as a JSON-ready
  dict, and ``write_report(out_dir, report)``;
- :mod:`meta_evo.report.findings`: the three findings (in-context adaptation, general
  learning, optimizer-like updates) and the claim they support;
- :mod:`meta_evo.report.objective`: the regimes over the task count and the per-seed outcome
  labels of the distribution-shift experiment (also used by ``meta-evo analyze``);
- :mod:`meta_evo.report.which_objective`: the verdict out of a training region, from tests
  against the control and the reference arm;
- :mod:`meta_evo.report.algorithm`: the "which algorithm" section (pool-Bayes against
  prior-Bayes over the task count) and ``algorithm.png``;
- :mod:`meta_evo.report.markdown`: ``report.md`` from the dict;
- :mod:`meta_evo.report.plots` and :mod:`meta_evo.report.objective_plots`: the PNG figures,
  drawn from the dict alone so they can be redrawn from a saved ``report.json``, through the
  figure functions of :mod:`meta_evo.report.figure` (which also draw into a notebook's axes).

Imports run one way: common <- stats <- build (which calls findings, objective,
which_objective and algorithm); markdown and the plots read the dict (plots use
``stats.mean_ci``) and are imported by ``write_report`` only when it runs.
"""

from meta_evo.report.build import build_report, compute_onsets, selection_summary, write_report
from meta_evo.report.common import (
    ALPHA,
    CI_LEVEL,
    KEY_METRICS,
    NUM_BOOTSTRAP,
    PHASE_METRICS,
    interval_text,
    onset_text,
)
from meta_evo.report.markdown import markdown
from meta_evo.report.stats import holm_fixed_sequence, mean_ci, onset_batch, onset_tests

__all__ = [
    "ALPHA",
    "CI_LEVEL",
    "KEY_METRICS",
    "NUM_BOOTSTRAP",
    "PHASE_METRICS",
    "build_report",
    "compute_onsets",
    "holm_fixed_sequence",
    "interval_text",
    "markdown",
    "mean_ci",
    "onset_batch",
    "onset_tests",
    "onset_text",
    "selection_summary",
    "write_report",
]
