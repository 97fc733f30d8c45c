"""``rl2`` through the engine (Meta, measurement, sweep) and the issue-9 configs.

Compile dominates (a Brax program costs 10-60 s on 2 CPU cores), so one tiny sweep (module
scoped: reacher_goal, T = 10, K = 2, M = 4, 2 generations in chunks of 1, 2 intensities x 1 seed,
both arms) compiles the learner arm's and the control arm's chunk programs and one measurement
program, and most tests read it; one jitted rerun of the lifetime checks the measurement
against it. The configs: each loads; the reacher gru one runs a shrunk meta-generation; full
shrunk sweeps of both (a halfcheetah compile is 1-3 minutes on 2 cores) run only with
``META_EVO_SLOW_TESTS=1``. About 3 minutes cold on a loaded 2-core machine.
"""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo import engine
from meta_evo.config import builtin_config_path, config_from_dict, load_config
from meta_evo.engine import point_bytes
from meta_evo.measure import SCALARS, heldout_tasks
from meta_evo.meta import Meta
from meta_evo.sweep import measure_env_steps, sweep

ROOT = Path(__file__).resolve().parents[1]
K, T, M, TASKS = 2, 10, 4, 2
TINY = {
    "task": {"family": "reacher_goal", "episode_length": T, "tasks_per_member": TASKS},
    "learner": {"kind": "rl2", "lifetime": K, "hidden": 8},
    "meta": {"population": M, "generations": 2, "chunk": 1, "sigma": 0.3},
    "measure": {"heldout_tasks": 3, "reference_samples": 4},
    "sweep": {"intensities": [0.0, 0.8], "seeds": 1, "diversities": [0], "control": "shuffled"},
    "log": {"progress": False},
}


@pytest.fixture(scope="module")
def cfg():
    return config_from_dict(TINY)


@pytest.fixture(scope="module")
def swept(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("rl2_sweep")
    return sweep(cfg, out / "run", progress=False)


def test_meta_counts_rl2(cfg):
    meta = Meta(cfg)
    assert meta.learner.measurement == "behaviour" and meta.learner.K == K
    assert meta.learner.theta_size == meta.theta_size
    # K episodes of T steps a lifetime, no evaluation rollouts
    assert meta.env_steps_per_generation == M * TASKS * K * T
    ms = cfg.measure
    pool = getattr(ms, "pool_tasks", 0)
    assert measure_env_steps(meta) == (ms.heldout_tasks * (1 + ms.reference_samples)
                                       + pool) * K * T
    assert point_bytes(meta) > 0
    shuffled = Meta(cfg, reward="shuffled")
    assert shuffled.learner.reward == "shuffled" and shuffled.theta_size == meta.theta_size


def test_sweep_runs_both_arms_compiled_once(swept):
    """Both arms ran 2 chunks of 1 generation each with one trace of their chunk program (no
    recompile on the second call); the control is measured through the learner's program."""
    assert list(swept.arms) == ["learner", "control"]
    learner, control = swept.arms["learner"], swept.arms["control"]
    assert (learner.reward, control.reward) == ("given", "shuffled")
    assert learner.learner == control.learner == "rl2"
    assert learner.traces == {"chunk": 1, "measure": 1}
    assert control.traces["chunk"] == 1 and control.shared_measure
    for arm in (learner, control):
        fit = arm.history["fitness_mean"]
        assert fit.shape == (2, 2) and np.isfinite(fit).all()
        assert (arm.history["nan_members"] == 0).all() and (arm.history["nan_inner"] == 0).all()
    assert swept.report is not None and (swept.out_dir / "report.json").is_file()


def test_measurement_from_behaviour(swept):
    """Curves have K entries (the episode returns), the matrix diagonal is the last episode's
    recorded trajectory scored under its own task, equal to the curve's last entry; update
    alignment is undefined (no phi)."""
    n = TINY["measure"]["heldout_tasks"]
    for arm in swept.arms.values():
        for gen, out in arm.measures.items():
            assert out["curve"].shape == (2, K) and out["curves"].shape == (2, n, K)
            assert out["matrix"].shape[:2] == (2, n) and out["matrix"].shape[2] >= n
            diag = np.diagonal(out["matrix"][:, :, :n], axis1=1, axis2=2)
            np.testing.assert_allclose(diag, out["curves"][:, :, -1], rtol=1e-6, atol=1e-6,
                                       err_msg=f"generation {gen}")
            assert np.isnan(out["update_alignment"]).all()
            for k in SCALARS:
                if k != "update_alignment":
                    assert np.isfinite(out[k]).all(), k


def test_recorded_score_equals_rerun(cfg, swept):
    """A rerun of the evolved learner's lifetime under the measurement's keys gives the curve,
    and ``family.score`` of its recorded last episode equals its return (the matrix diagonal)."""
    meta = Meta(cfg)
    theta = jnp.asarray(swept.arms["learner"].theta[1])  # intensity 0.8
    taus = heldout_tasks(meta)
    n = taus.shape[0]
    # the measurement's key schedule: sweep.run_arm's key -> rows -> the lifetime's key
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.measure.seed), 1)
    rows = jax.random.split(jax.random.split(key, 3)[0], n)
    k_life = jax.vmap(lambda k: jax.random.split(k)[0])(rows)

    @jax.jit
    def rerun(theta, taus, keys):
        out = jax.vmap(meta.learner.lifetime, (None, 0, 0))(theta, taus, keys)
        return out["returns"], jax.vmap(meta.family.score)(out["final"], taus)

    returns, scored = jax.device_get(rerun(theta, taus, k_life))
    final = swept.cfg.meta.generations
    meas = swept.arms["learner"].measures[final]
    np.testing.assert_allclose(returns, meas["curves"][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(scored, returns[:, -1])
    np.testing.assert_allclose(np.diagonal(meas["matrix"][1, :, :n]), scored, rtol=1e-5,
                               atol=1e-5)


# --- the configs of issue 9 -------------------------------------------------------------------
CONFIGS = {
    "reacher_goal_gru": ROOT / "configs" / "reacher_goal_gru.yaml",
    "halfcheetah_vel_rl2": ROOT / "configs" / "halfcheetah_vel_rl2.yaml",
}
SHRINK = ["meta.population=4", "meta.generations=1", "meta.chunk=1", "task.episode_length=8",
          "task.tasks_per_member=1", "learner.lifetime=2", "measure.heldout_tasks=2",
          "measure.reference_samples=2", "measure.alignment_samples=2", "sweep.intensities=[0.0]",
          "sweep.seeds=1", "sweep.diversities=[0]", "sweep.control=none"]


def test_configs_load_and_state_their_size():
    """Each config loads, builds its Meta, and its comment states the env steps of a
    meta-generation that the engine counts; the package's accelerator default is the reacher gru
    config."""
    gpu = builtin_config_path("sweep_default_gpu")
    assert gpu.read_text() == CONFIGS["reacher_goal_gru"].read_text()
    for name, path in CONFIGS.items():
        cfg = load_config(path)
        meta = Meta(cfg)
        assert f"{meta.env_steps_per_generation:,}" in path.read_text(), name
    assert load_config(CONFIGS["reacher_goal_gru"]).learner.kind == "gru"
    assert load_config(CONFIGS["halfcheetah_vel_rl2"]).learner.kind == "rl2"


def test_reacher_goal_gru_smoke():
    """The reacher gru config, shrunk, runs a meta-generation (one compile: the gru chunk program
    on reacher; the full tiny sweep with its measurement is the slow test below)."""
    meta = Meta(load_config(CONFIGS["reacher_goal_gru"], SHRINK))
    state = engine.as_group(meta.init(jax.random.PRNGKey(0)))
    state, metrics = engine.make_run_chunk(meta)(state, np.float32([0.5]), np.int32([0]), 1)
    assert np.isfinite(np.asarray(metrics["fitness_mean"])).all()
    assert int(state.generation[0]) == 1


@pytest.mark.skipif(os.environ.get("META_EVO_SLOW_TESTS") != "1",
                    reason="compiles a gru and a halfcheetah sweep (3-6 min on 2 cores); "
                    "META_EVO_SLOW_TESTS=1 runs it")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_smoke_sweep(name):
    """Each config, shrunk, runs through ``meta_evo.sweep.sweep`` (evolution and measurement)."""
    cfg = load_config(CONFIGS[name], SHRINK)
    res = sweep(cfg, progress=False, report=False)
    arm = res.arms["learner"]
    assert np.isfinite(arm.history["fitness_mean"]).all()
    assert np.isfinite(arm.measures[1]["objective_sensitivity"]).all()
    assert arm.traces == {"chunk": 1, "measure": 1}
