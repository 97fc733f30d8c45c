"""The notebook API on a tiny finished sweep: ``load_sweep`` (its tables equal ``sweep.npz`` and
the report), ``theta(point)``, ``rollout`` (the learner's own lifetime, step by step) and the
figure functions (they return a Figure, draw into given axes, and write only when asked)."""

import json
import runpy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from helpers import REACHER_TINY

import meta_evo
from meta_evo.config import load_config
from meta_evo.errors import RunDirError
from meta_evo.learners import make_lifetime
from meta_evo.meta import Meta
from meta_evo.report.plots import lifetime_curves, phase_diagram
from meta_evo.rollout import _program, rollout
from meta_evo.sweep import sweep

TINY = ["meta.population=8", "meta.generations=4", "meta.chunk=2", "sweep.seeds=2",
        "sweep.intensities=[0.0,2.0]",
        "measure.heldout_tasks=4", "measure.pool_tasks=4", "measure.reference_samples=8",
        "learner.lifetime=4", "task.tasks_per_member=2", "log.progress=false"]


DEFAULT = Path(meta_evo.__file__).parent / "configs" / "sweep_default.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The built-in default sweep (gru on the analytic family) at test size."""
    out = tmp_path_factory.mktemp("nb") / "sweep"
    sweep(load_config(DEFAULT, TINY), out)
    return out


def test_table_rows_are_the_grid_and_values_are_sweep_npz(tiny):
    sw = meta_evo.load_sweep(tiny)
    z = np.load(tiny / "sweep.npz")
    g = len(z["grid/seed"])
    scalar = [k for k in z.files if k.split("/")[0] != "grid" and k.split("/")[1].isdigit()
              and z[k].ndim == 1]
    assert len(sw.table) == g * len(scalar) and sw.arms == ["learner", "control"]
    for key in scalar:
        arm, gen, metric = key.split("/", 2)
        rows = sw.table.where(arm=arm, generation=int(gen), metric=metric)
        np.testing.assert_array_equal(rows["point"], np.arange(g))
        np.testing.assert_array_equal(rows["value"], z[key].astype(np.float64))
        for axis in ("intensity", "pressure", "seed", "diversity"):
            np.testing.assert_array_equal(rows[axis], z[f"grid/{axis}"])


def test_level_tests_are_the_reports(tiny):
    sw = meta_evo.load_sweep(tiny)
    rep = json.loads((tiny / "report.json").read_text())
    tests = [t for grp in ("onsets", "contrasts", "reference_tests") for t in rep[grp]]
    assert len(sw.tests) == sum(len(t["levels"]) for t in tests) > 0
    first = tests[0]
    rows = sw.tests.where(metric=first["metric"], arm=first["arm"],
                          diversity=first["diversity"], role=first["role"])
    np.testing.assert_allclose(rows["p_level"], [lv["p"] for lv in first["levels"]])
    np.testing.assert_array_equal(rows["significant"], first["significant"])


def test_theta_by_index_and_by_coordinates(tiny):
    sw = meta_evo.load_sweep(tiny)
    z = np.load(tiny / "sweep.npz")
    p = 3
    where = {"intensity": z["grid/intensity"][p], "seed": int(z["grid/seed"][p]),
             "diversity": int(z["grid/diversity"][p])}
    np.testing.assert_array_equal(sw.theta(where), z["learner/theta"][p])
    np.testing.assert_array_equal(sw.theta(p, arm="control"), z["control/theta"][p])
    with pytest.raises(KeyError, match="matches"):
        sw.theta({"seed": 0})
    with pytest.raises(KeyError, match="this sweep has learner, control"):
        sw.theta(0, arm="reference")


def test_rollout_is_the_learners_own_lifetime(tiny):
    """phi_K of the rollout is the plain lifetime's (tracing changes nothing); each proposal's
    return is the evaluator's; at meta-init (W = 0) every proposal is phi_0 (known answer)."""
    sw = meta_evo.load_sweep(tiny)
    meta = sw.meta()
    task = sw.heldout_tasks(2)[0]
    theta = sw.theta(int(np.argmax(sw.arrays["grid/intensity"])))
    ro = sw.rollout(theta, task, key=5)
    K, P = meta.learner.lifetime, meta.learner.num_candidates
    assert ro.proposals.shape == (K + 1, meta.learner.phi_size)
    assert ro.candidates.shape == (K, P, meta.learner.phi_size) and ro.shown.shape == (K, P)
    assert ro.hidden.shape == (K + 1, meta.learner.hidden) and not np.all(ro.hidden[1:] == 0)
    k_life, k_eval = jax.random.split(jax.random.PRNGKey(5))
    phi_k, _ = make_lifetime(meta.learner, meta.evaluate)(jnp.asarray(theta), jnp.asarray(task),
                                                        k_life)
    np.testing.assert_allclose(ro.proposals[-1], np.asarray(phi_k), rtol=1e-6, atol=1e-6)
    one = np.asarray(meta.evaluate(jnp.asarray(ro.proposals[-1]), jnp.asarray(task), k_eval))
    np.testing.assert_allclose(ro.returns[-1], one, rtol=1e-5, atol=1e-5)  # analytic: no noise
    np.testing.assert_allclose(ro.shown[0], [meta.evaluate(jnp.asarray(c), jnp.asarray(task),
                                                           k_eval) for c in ro.candidates[0]],
                               rtol=1e-5, atol=1e-5)
    init = np.asarray(meta.learner.init_theta(jax.random.PRNGKey(0)))
    still = rollout(meta, init, task, key=1)
    np.testing.assert_array_equal(still.proposals, np.broadcast_to(still.proposals[0],
                                                                   still.proposals.shape))
    rollout(meta, theta, sw.heldout_tasks(2)[1], key=2)
    assert _program(meta)._cache_size() == 1  # one compile for every theta, task and key
    with pytest.raises(ValueError, match="theta has shape"):
        rollout(meta, theta[:-1], task)


def test_a_parent_directory_is_refused_with_its_children(tmp_path):
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "config.yaml").write_text(
        (root / "configs" / "analytic_gru_coverage.yaml").read_text())
    with pytest.raises(RunDirError, match="coverage-0.25"):
        meta_evo.load_sweep(tmp_path)


def test_figures_return_the_figure_take_axes_and_write_only_when_asked(tiny, tmp_path):
    rep = json.loads((tiny / "report.json").read_text())
    fig = lifetime_curves(rep)
    assert isinstance(fig, plt.Figure) and not list(tmp_path.iterdir())
    n = len(rep["axes"]["intensities"])
    mine, axes = plt.subplots(1, n)
    assert lifetime_curves(rep, axes=axes) is mine
    with pytest.raises(ValueError, match="panels"):
        lifetime_curves(rep, axes=axes[:1] if n > 1 else [axes, axes])
    assert phase_diagram(rep, tmp_path / "p.png").savefig  # a Figure, and the file written
    assert (tmp_path / "p.png").stat().st_size > 0
    plt.close("all")


def test_rl2_trace_is_its_lifetime_step_by_step():
    cfg = load_config(None, [*REACHER_TINY, "learner.kind=rl2", "learner.hidden=4"])
    meta = Meta(cfg)
    lr = meta.learner
    theta = lr.init_theta(jax.random.PRNGKey(0)) + 0.3 * jax.random.normal(
        jax.random.PRNGKey(1), (lr.theta_size,))
    task = meta.family.sample_task(jax.random.PRNGKey(2))
    ro = rollout(meta, theta, task, key=3)
    life = jax.jit(lr.lifetime)(theta, task, jax.random.PRNGKey(3))
    np.testing.assert_array_equal(ro.returns, np.asarray(life["returns"]))
    np.testing.assert_array_equal(ro.proposals[-1], np.asarray(life["final"].actions))
    assert ro.hidden.shape == (lr.K, lr.T, 4) and ro.shown.shape == (lr.K, lr.T)
    # the given channel feeds back the own-task reward: its sum over an episode is the return
    np.testing.assert_allclose(ro.shown.sum(1), ro.returns, rtol=1e-5, atol=1e-5)


def test_quickstart_notebook_runs_on_a_tiny_sweep_and_matches_its_ipynb(tiny, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "examples"))
    from make_notebook import render

    script = root / "examples" / "quickstart.py"
    assert render(script.read_text()) == (root / "examples" / "quickstart.ipynb").read_text()
    monkeypatch.setenv("META_EVO_SWEEP", str(tiny))
    monkeypatch.setattr(sys, "argv", [str(script)])
    runpy.run_path(str(script), run_name="__main__")
    assert (tiny / "quickstart_rollout.png").stat().st_size > 0
    plt.close("all")
