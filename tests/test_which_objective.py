"""Which objective, measured so that a weak optimizer and a proxy-pursuer cannot be confused.

Hand-built learners on ``analytic`` (R = -|phi - tau|^2) with the half-space region
(tau_0 >= 0), measured through ``make_measure`` like evolved ones. Each probes its start
``phi_1`` and the D unit steps from it, which tells it its task exactly
(``tau_i = phi_1,i + (r_i - r_0 + 1) / 2``, since ``r_i - r_0 = -2 (phi_1 - tau)_i - 1``), then
answers ``phi_1 + c (target - phi_1)`` with target:

- ``task``: its task (a straight-line optimizer of capability c);
- ``nearest``: the nearest in-region task (a region-clipped optimizer: it pursues the proxy);
- ``mean``: a fixed point, the training mean (a fixed search path: gain without any task).

Arms of a two-level sweep (i = 0: every arm at its start, c = 0; i = 1: the scenario), 8 seeds
(the start jittered per seed), and the verdict of ``meta_evo.report.which_objective``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cfg as make_cfg

from meta_evo import kernels
from meta_evo.cli import main
from meta_evo.learners.base import Learner
from meta_evo.measure import make_measure
from meta_evo.meta import Meta
from meta_evo.report.which_objective import (
    ACCURACY,
    GATE,
    MARGIN,
    PULL,
    verdict_rows,
    verdict_tests,
)
from meta_evo.tasks import Analytic

SHIFT = ["task.family=analytic", "agent.kind=direct", "task.train_region=halfspace",
         "learner.kind=gru", "learner.lifetime=1", "learner.candidates=1", "learner.hidden=2",
         "measure.heldout_tasks=16", "measure.pool_tasks=4", "measure.reference_samples=8",
         "measure.alignment_samples=2", "log.progress=false"]
SEEDS = 8
D = 4
INSIDE, OUTSIDE = (1.8, 1.0, 1.0, 1.0), (-1.5, 1.0, 1.0, 1.0)
TRAIN_MEAN = (float(np.sqrt(2 / np.pi)), 0.0, 0.0, 0.0)  # E[tau | tau_0 >= 0], scale 1
METRICS = (GATE, ACCURACY, PULL, MARGIN, "ood_outside_share")


class _State(NamedTuple):
    phi: jax.Array


class LineLearner(Learner):
    """theta = (phi_1 [D], c, m [D]); see the module docstring."""

    name = "line"

    def __init__(self, agent, family, mode: str):
        super().__init__(agent, lifetime=1)
        self.family, self.mode = family, mode
        self.num_candidates = D + 1
        self.theta_size = 2 * D + 1

    def init(self, theta):
        return _State(theta[:D])

    def ask(self, theta, lstate, key):
        return lstate.phi + jnp.concatenate([jnp.zeros((1, D)), jnp.eye(D)])

    def tell(self, theta, lstate, candidates, returns, key, k):
        tau_hat = lstate.phi + (returns[1:] - returns[0] + 1.0) / 2.0
        target = {"task": tau_hat, "mean": theta[D + 1:],
                  "nearest": self.family.region_project(tau_hat, "halfspace")}[self.mode]
        return _State(lstate.phi + theta[D] * (target - lstate.phi))


@pytest.fixture(scope="module")
def measured():
    """``fn(mode, c, start) -> {metric: [S]}``: a learner of each mode measured on 8 seeds."""
    meta = Meta(make_cfg(SHIFT))
    fns = {}
    for mode in ("task", "nearest", "mean"):
        meta.learner = LineLearner(meta.agent, meta.family, mode)
        fns[mode] = jax.jit(jax.vmap(make_measure(meta), (0, None, None)))
    jitter = 0.05 * jax.random.normal(jax.random.PRNGKey(3), (SEEDS, D))

    def run(mode, c, start):
        thetas = jnp.concatenate([jnp.asarray(start) + jitter, jnp.full((SEEDS, 1), c),
                                  jnp.broadcast_to(jnp.asarray(TRAIN_MEAN), (SEEDS, D))], 1)
        out = fns[mode](thetas, jax.random.PRNGKey(0), 0)
        return {m: np.asarray(out[m], np.float64) for m in METRICS}

    return run


def verdicts(measured, learner, reference, control, start):
    """The verdict at i = 0 and i = 1 of arms given as (mode, c) at i = 1 (c = 0 at i = 0)."""
    values = {}
    for arm, (mode, c) in (("learner", learner), ("reference", reference),
                           ("control", control)):
        levels = [measured(mode, 0.0, start), measured(mode, c, start)]
        values[arm] = {m: np.stack([lv[m] for lv in levels]) for m in METRICS}
    tests = verdict_tests(values, [0.0, 1.0])
    as_d = {a: {m: v[None] for m, v in vals.items()} for a, vals in values.items()}
    rows = verdict_rows(as_d, tests, [0.0, 1.0], [0])
    return [r["verdict"] for r in rows], rows


# --- the kernel ------------------------------------------------------------------------------
def test_pull_is_zero_for_any_straight_optimizer_and_one_for_a_proxy_pursuer():
    fam = Analytic(dim=D)
    taus = fam.heldout_tasks(jax.random.PRNGKey(1), 32, "halfspace", inside=False)
    near = jax.vmap(lambda t: fam.region_project(t, "halfspace"))(taus)
    for start in (jnp.asarray(INSIDE), jnp.asarray(OUTSIDE)):
        for c in (0.3, 0.45, 0.7, 1.0):
            straight = start + c * (taus - start)
            clipped = start + c * (near - start)
            assert abs(float(kernels.proxy_pull(straight, taus, near))) < 1e-4
            assert abs(float(kernels.proxy_pull(clipped, taus, near)) - 1.0) < 1e-4
            np.testing.assert_allclose(kernels.pull_slopes(straight, taus, near), [c, c],
                                       atol=1e-4)
        fixed = jnp.broadcast_to(start, taus.shape)
        assert abs(float(kernels.proxy_pull(fixed, taus, near))) < 1e-4  # float32 rounding


def test_margin_falls_with_capability_which_is_why_it_is_not_the_verdict():
    """R_near(phi) - R_tau(phi) = tau_0 (tau_0 - 2 phi_0) on the half-space: for a straight
    optimizer it falls as c grows (positive while phi_0 > tau_0 / 2), whatever it pursues."""
    fam = Analytic(dim=D)
    taus = fam.heldout_tasks(jax.random.PRNGKey(2), 16, "halfspace", inside=False)
    cols = fam.matrix_columns(taus, "halfspace", fam.train_pool(0, "halfspace"), 0)
    near = list(fam.matrix_proxy_names("halfspace")).index("nearest_in_region") + 16
    margins = []
    for c in (0.3, 0.45, 0.7):
        phi = jnp.asarray(INSIDE) + c * (taus - jnp.asarray(INSIDE))
        mat = jax.vmap(lambda p, cs: jax.vmap(lambda t: -jnp.sum((p - t) ** 2))(cs))(phi, cols)
        raw = mat[:, near] - jnp.diagonal(mat[:, :16])
        np.testing.assert_allclose(raw, taus[:, 0] * (taus[:, 0] - 2 * phi[:, 0]), rtol=1e-4,
                                   atol=1e-4)
        margins.append(float(kernels.proxy_margin(mat, near)))
    assert margins[0] > margins[1] > margins[2]


# --- hand-built learners through make_measure --------------------------------------------------
@pytest.mark.parametrize("start", [INSIDE, OUTSIDE], ids=["start-inside", "start-outside"])
@pytest.mark.parametrize("c", [0.3, 0.45, 0.7])
def test_straight_partial_optimizers_are_never_pseudo_aligned(measured, c, start):
    (v0, v1), rows = verdicts(measured, ("task", c), ("task", c), ("mean", c), start)
    assert v0 == "no_optimization"
    assert v1 in ("goal_generalizes", "capability_only")
    assert rows[1]["tests"]["gate"]["pass"]


@pytest.mark.parametrize("start", [INSIDE, OUTSIDE], ids=["start-inside", "start-outside"])
def test_a_weaker_honest_learner_than_its_reference_is_not_pseudo_aligned(measured, start):
    """Learner c = 0.3 against a reference of c = 0.7. From inside the region the margin alone
    would call it pseudo-aligned (every seed's margin exceeds the reference's: the weaker
    answer stays nearer the region); the pull does not, from either start."""
    (_, v1), rows = verdicts(measured, ("task", 0.3), ("task", 0.7), ("mean", 0.3), start)
    assert v1 != "pseudo_aligned"
    if start == INSIDE:
        assert rows[1]["excess_proxy_margin"]["ci"][0] > 0
    assert abs(rows[1]["excess_proxy_pull"]["mean"]) < 1e-3


@pytest.mark.parametrize("start", [INSIDE, OUTSIDE], ids=["start-inside", "start-outside"])
@pytest.mark.parametrize("c", [0.3, 0.7])
def test_a_region_clipped_partial_optimizer_is_pseudo_aligned(measured, c, start):
    (v0, v1), rows = verdicts(measured, ("nearest", c), ("task", c), ("mean", c), start)
    assert (v0, v1) == ("no_optimization", "pseudo_aligned")
    assert rows[1]["excess_proxy_pull"]["ci"][0] > 0.9


@pytest.mark.parametrize("start", [INSIDE, OUTSIDE], ids=["start-inside", "start-outside"])
@pytest.mark.parametrize("learner", [("task", 0.0), ("mean", 0.45)],
                         ids=["memorizer", "fixed-path-to-the-training-mean"])
def test_non_optimizers_read_no_optimization(measured, learner, start):
    """A memorizer (c = 0) and a fixed path toward the training mean (what a shuffled-reward
    learner can learn: lifetime gain, no task) never read pseudo-aligned, even against a
    reference that optimizes."""
    verdict, _ = verdicts(measured, learner, ("task", 0.7), ("mean", 0.45), start)
    assert verdict == ["no_optimization", "no_optimization"]


# --- the test holds its level ----------------------------------------------------------------
def test_pseudo_aligned_fires_at_its_exact_size_under_the_null():
    """Learner and reference pulls from one distribution, the gate and accuracy passing: the
    pull test is then alone in its family at alpha = 0.05, whose exact size with 8 seeds is
    floor(0.05 * 2^8) / 2^8 = 12/256 (p-values of continuous data are uniform on k / 256)."""
    rng = np.random.default_rng(0)
    n, fired = 600, 0
    for _ in range(n):
        def draw(shift=0.0):
            return shift + rng.normal(size=(2, SEEDS))

        strong = {GATE: draw(10), ACCURACY: draw(10)}
        weak = {GATE: draw(), ACCURACY: draw()}
        values = {"learner": {**strong, PULL: draw()}, "control": weak,
                  "reference": {PULL: draw()}}
        tests = verdict_tests(values, [0.0, 1.0])
        rows = verdict_rows({a: {m: v[None] for m, v in x.items()} for a, x in values.items()},
                            tests, [0.0, 1.0], [0])
        fired += rows[1]["verdict"] == "pseudo_aligned"
    exact = 12 / 256
    se = np.sqrt(exact * (1 - exact) / n)
    assert abs(fired / n - exact) <= 3 * se, (fired / n, exact, se)


# --- coverage draws --------------------------------------------------------------------------
def test_outside_share_draws_exactly_and_leaves_q0_unchanged():
    fam = Analytic(dim=D)
    keys = jax.random.split(jax.random.PRNGKey(5), 20000)
    before = jax.vmap(lambda k: fam.sample_region(k, "halfspace"))(keys)
    np.testing.assert_array_equal(jax.vmap(lambda k: fam.draw_train(k, "halfspace", 0.0))(keys),
                                  before)
    for q in (0.1, 0.5):
        draws = jax.vmap(lambda k, q=q: fam.draw_train(k, "halfspace", q))(keys)
        outside = float(jnp.mean(draws[:, 0] < 0))
        assert abs(outside - q) < 4 * np.sqrt(q * (1 - q) / 20000)
    # at the region's own outside mass (1/2) the draw is the full Gaussian again
    half = jax.vmap(lambda k: fam.draw_train(k, "halfspace", 0.5))(keys)
    assert abs(float(jnp.mean(half[:, 0]))) < 4 / np.sqrt(20000)
    assert abs(float(jnp.var(half[:, 0])) - 1.0) < 0.05


# --- the sweep, its report and bad input -------------------------------------------------------
TINY = ["task.family=analytic", "agent.kind=direct", "learner.kind=gru", "learner.lifetime=4",
        "learner.candidates=1", "learner.hidden=4", "task.tasks_per_member=2",
        "meta.population=8", "meta.generations=2", "meta.chunk=2", "log.progress=false",
        "sweep.intensities=[0.0,1.0]", "sweep.seeds=2", "sweep.diversities=[0]",
        "measure.heldout_tasks=4", "measure.pool_tasks=4", "measure.reference_samples=8",
        "measure.alignment_samples=2", "task.train_region=halfspace"]


def test_coverage_sweep_runs_learner_control_and_reference_per_share(tmp_path, capsys):
    out = tmp_path / "coverage"
    assert main(["sweep", *TINY, "sweep.outside_shares=[0.0,0.5]", "--out", str(out),
                 "--quiet"]) == 0
    assert "coverage sweep finished" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert [r["q"] for r in rep["rows"]] == [0.0, 0.0, 0.5, 0.5]
    assert (out / "coverage.png").is_file()
    sub = json.loads((out / "coverage-0.5" / "report.json").read_text())
    assert sub["arms"] == ["learner", "control", "reference"]
    assert sub["config"]["task"]["outside_share"] == 0.5
    assert [t["metric"] for t in sub["reference_tests"]] == [PULL]  # the margin is shown only
    assert all(t["role"] == "exploratory" for t in sub["reference_tests"])
    assert sub["tests"]["exploratory_tests"] == 7  # 4 held-out/pool + gate, accuracy, pull
    assert "## Which objective" in (out / "coverage-0.5" / "report.md").read_text()
    before = (out / "coverage-0" / "sweep.npz").stat().st_mtime_ns
    (out / "report.md").unlink()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / "report.md").is_file()
    assert (out / "coverage-0" / "sweep.npz").stat().st_mtime_ns == before


@pytest.mark.parametrize("bad, key", [
    (["task.train_region=halfspace", "task.outside_share=1.5"], "task.outside_share"),
    (["task.outside_share=0.1"], "task.outside_share"),
    (["sweep.reference=unrestricted"], "sweep.reference"),
    (["sweep.reference=bogus", "task.train_region=halfspace"], "sweep.reference"),
    (["sweep.outside_shares=[0.1]"], "sweep.outside_shares"),
    (["task.train_region=halfspace", "sweep.outside_shares=[0.1,-0.2]"],
     "sweep.outside_shares"),
])
def test_bad_coverage_or_reference_exits_2_in_one_line(bad, key, tmp_path, capsys):
    tiny = [x for x in TINY if not x.startswith("task.train_region")]
    out = tmp_path / "never"
    assert main(["sweep", *tiny, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and not out.exists()
