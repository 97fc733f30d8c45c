"""The sweep report: ``report.json``, ``report.md`` and PNG plots in the run directory.

Shared ground:

- :mod:`meta_evo.report.common`: metric names and labels, the tested metrics, alpha and the
  interval level, the names of diversity levels, JSON-ready values, small text formats;
- :mod:`meta_evo.report.stats`: the statistics on plain ``[L, S]`` arrays (onset tests and
  the multiplicity rule, plain Holm, t-intervals); the calibration tests run exactly this code;
- :mod:`meta_evo.report.result_arrays`: a sweep result read as arrays (arms, labels,
  ``[L, S]`` per diversity level, the grid points of each level).

From a sweep result to the report dict:

- :mod:`meta_evo.report.build`: ``build_report(result)``, a sweep result as a JSON-ready
  dict, and ``write_report(out_dir, report)``;
- :mod:`meta_evo.report.onsets`: which comparisons are tested, and each test as an item;
- :mod:`meta_evo.report.selection`: what selection did per intensity (rank weights, N_eff,
  neutral drift).

The sections, each from plain arrays, with its sentences and its markdown:

- :mod:`meta_evo.report.findings`: the three findings (in-context adaptation, general
  learning, optimizer-like updates) and the claim they support;
- :mod:`meta_evo.report.classify`: per-seed regimes and outcomes from measured arrays (the
  kernels' classes and thresholds), shared by the next three;
- :mod:`meta_evo.report.regimes`: the regimes over the task count;
- :mod:`meta_evo.report.outcomes`: the per-seed outcomes under a distribution shift (a
  description under the verdict);
- :mod:`meta_evo.report.checkpoints`: the same classes for the checkpoints of one run
  (``meta-evo analyze``);
- :mod:`meta_evo.report.which_objective`: the verdict out of a training region, from tests
  against the control and the reference arm;
- :mod:`meta_evo.report.algorithm`: "which algorithm" (pool-Bayes against prior-Bayes over
  the task count).

Text and figures, from the dict alone (so they can be redrawn from a saved ``report.json``):

- :mod:`meta_evo.report.markdown`: ``report.md``;
- :mod:`meta_evo.report.figure`: how every figure is drawn (also into a notebook's axes) and
  the pieces several share;
- :mod:`meta_evo.report.plots`: the figures of every sweep and ``plot_all``;
  :mod:`meta_evo.report.regime_plots`, :mod:`meta_evo.report.verdict_plots` and
  :mod:`meta_evo.report.algorithm_plots`: those of the sections.

Imports run one way, up from common and stats: the sections need only those, classify and
result_arrays; onsets, selection and build read the sweep result; markdown and the figures
read the dict (plots use ``stats.mean_ci``) and are imported by ``write_report`` only when it
runs. Nothing here imports the meta-optimizer, the strategies, the engine, the sweep, the API
or the command line (``tests/test_report_layering.py``).
"""

from meta_evo.report.build import build_report, write_report
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
from meta_evo.report.onsets import compute_onsets
from meta_evo.report.selection import selection_summary
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
