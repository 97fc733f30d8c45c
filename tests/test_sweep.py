"""The sweep: vmapped grid == each point alone; one compile per arm across chunks and groups;
report files; the ``meta-evo sweep`` command end to end; bad configs exit 2 with one line.

Everything runs on the analytic family (agent.kind=direct): the physics is not the point here.
One module-scoped sweep (3 intensities x 3 seeds x 2 diversities = 18 points, 3 chunks of 2
generations, groups of points under a 1 MiB budget with the last group padded) serves most
tests; the CLI test runs the same config in a subprocess, so it reuses the compiled programs
from the persistent cache.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cfg as make_cfg

from meta_evo import sweep as sweep_mod
from meta_evo.cli import main
from meta_evo.measure import SCALARS, make_measure
from meta_evo.meta import Meta

SWEEP = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=2",
         "learner.lifetime=4", "learner.candidates=4", "learner.init_noise=0.3",
         "meta.population=8", "meta.generations=6", "meta.chunk=2", "log.progress=false",
         "sweep.intensities=[0.0,0.5,1.0]", "sweep.seeds=3", "sweep.diversities=[1,0]",
         "sweep.measure_every=4", "sweep.memory_budget_mb=1", "measure.heldout_tasks=4",
         "measure.reference_samples=16", "measure.alignment_samples=4"]
G = 3 * 3 * 2


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    cfg = make_cfg(SWEEP)
    out = tmp_path_factory.mktemp("sweep") / "run"
    return cfg, sweep_mod.sweep(cfg, out, progress=False)


def test_grid_layout_and_pressures(swept):
    cfg, res = swept
    g = res.grid
    assert g.size == G
    assert list(g.diversity) == [1] * 9 + [0] * 9
    assert list(g.intensity[:9]) == [0.0] * 3 + [0.5] * 3 + [1.0] * 3
    assert list(g.seed[:6]) == [0, 1, 2, 0, 1, 2]
    # intensity 0 = everyone selected (elite fraction 1); higher intensity, smaller fraction
    assert g.pressure[0] == pytest.approx(1.0, abs=1e-4)
    assert 1 > g.pressure[3] > g.pressure[6] > 0
    assert list(res.arms) == ["learner", "control"]
    assert res.arms["control"].learner == "es" and res.arms["control"].reward == "shuffled"


def test_one_compile_per_arm_across_chunks_and_groups(swept):
    _, res = swept
    for arm in res.arms.values():
        # several groups of points, the last one padded, and 3 chunks of 2 generations ...
        assert arm.groups >= 2 and G % arm.group_size != 0 and arm.chunk == 2
    # ... and still one trace (compile) of each program; the control is measured through the
    # learner arm's measurement program (no compile of its own)
    assert res.arms["learner"].traces == {"chunk": 1, "measure": 1}
    assert res.arms["control"].traces == {"chunk": 1, "measure": 0}
    assert res.arms["control"].shared_measure


def test_vmapped_sweep_equals_each_point_alone(swept):
    cfg, res = swept
    meta = Meta(cfg)
    chunk = jax.jit(meta.run_chunk, static_argnums=3)
    measure = jax.jit(make_measure(meta))
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.measure.seed), 1)
    arm = res.arms["learner"]
    g = res.grid
    for i in range(g.size):
        state = meta.init(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), int(g.seed[i])))
        for _ in range(cfg.meta.generations // 2):
            state, metrics = chunk(state, jnp.float32(g.pressure[i]),
                                   jnp.int32(g.diversity[i]), 2)
        np.testing.assert_allclose(np.asarray(state.es_state.mean), arm.theta[i],
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(metrics["fitness_mean"]),
                                   arm.history["fitness_mean"][i, -2:], rtol=1e-5, atol=1e-5)
        out = measure(state.es_state.mean, key, jnp.int32(g.diversity[i]))
        # update alignment is the cosine of a step that, at i = 0, is float rounding alone
        # (|step| ~ 1e-9, zero in one program and not the other): compared only where it moved
        moved = abs(float(meta.learner.describe(state.es_state.mean)["step"])) > 1e-6
        for k in SCALARS:
            if k == "update_alignment" and not moved:
                continue
            np.testing.assert_allclose(float(out[k]), arm.measures[6][k][i], rtol=1e-4,
                                       atol=1e-4, err_msg=f"{k} at grid point {i}")


def test_control_measured_as_with_its_own_program(swept):
    """The shuffled-reward control, measured through the learner arm's program, gets exactly
    what its own measurement program gives (every arm is measured with the given reward)."""
    cfg, res = swept
    meta = Meta(cfg, reward="shuffled")
    assert meta.learner.reward == "shuffled"
    own = jax.jit(jax.vmap(make_measure(meta), in_axes=(0, None, 0)))
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.measure.seed), 1)
    arm = res.arms["control"]
    out = own(jnp.asarray(arm.theta), key, jnp.asarray(res.grid.diversity))
    for k in (*SCALARS, "matrix", "curve"):
        np.testing.assert_allclose(np.asarray(out[k]), arm.measures[6][k], rtol=1e-5, atol=1e-5,
                                   err_msg=k)
    # the arms share keys and meta-init, and differ in what they were told: with one fixed
    # task (d = 1) the shuffled task is that task, so both arms evolve identically
    fixed = res.grid.diversity == 1
    np.testing.assert_array_equal(arm.theta[fixed], res.arms["learner"].theta[fixed])
    assert not np.array_equal(arm.theta[~fixed], res.arms["learner"].theta[~fixed])


def test_measured_generations_and_paired_initial_states(swept):
    _, res = swept
    es = res.arms["learner"]
    assert sorted(es.measures) == [0, 4, 6]
    # generation 0 is the meta-init theta: the same for every level of a seed, learning off
    step0 = es.describe[0]["step"]
    np.testing.assert_array_equal(step0, 0.0)
    g = res.grid
    for s in range(3):
        th = es.measures[0]["return_initial"][g.seed == s]
        np.testing.assert_allclose(th, th[0], rtol=1e-6)
    # no selection (i = 0) leaves theta where it started; selection moves the step
    assert np.all(np.abs(es.describe[6]["step"][g.intensity == 0.0]) < 1e-4)
    assert np.all(es.describe[6]["step"][g.intensity == 1.0] > 0.05)


def test_report_files_and_keys(swept):
    cfg, res = swept
    out = res.out_dir
    for name in ("report.json", "report.md", "config.yaml", "sweep.npz", "phase_diagram.png",
                 "lifetime_curves.png", "evolution.png", "cross_task_matrix.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rep = json.loads((out / "report.json").read_text())
    for k in ("points", "onsets", "levels", "axes", "env_steps", "wall_s", "versions",
              "platform", "timings", "strongest", "config"):
        assert k in rep, k
    assert len(rep["points"]) == 2 * G
    p = rep["points"][0]
    for k in ("arm", "learner", "intensity", "pressure", "seed", "diversity", "final_fitness",
              "metrics", "by_generation"):
        assert k in p, k
    assert set(SCALARS) <= set(p["metrics"])
    assert set(p["by_generation"]) == {"0", "4", "6"}
    assert rep["axes"]["raw_pressures"][0] == pytest.approx(1.0, abs=1e-4)
    # one onset per metric and diversity level, each with its interval or "none in range"
    metrics = {o["metric"] for o in rep["onsets"]}
    # the tested family is small on purpose (report.common.TESTED_METRICS), so that Holm's
    # first threshold stays reachable by an exact test over the sweep's seeds
    from meta_evo.report.common import TESTED_METRICS

    # (the out-of-region ones only where the sweep has a training region: this one has none)
    assert metrics == {m for m in TESTED_METRICS if not m.startswith("ood_")}
    # d = 1 against the shuffled control: the arms are the same by construction, not tested
    assert len(rep["onsets"]) == len(metrics) and {o["diversity"] for o in rep["onsets"]} == {0}
    assert [n["diversity"] for n in rep["not_tested"]] == [1]
    assert [o["metric"] for o in rep["contrasts"]] == [cfg.sweep.primary_metric]
    for o in rep["onsets"]:
        # 3 seeds: an exact paired sign-flip test cannot reach p < alpha, and says so
        assert o["summary"].startswith("too few seeds to test at alpha"), o["summary"]
        assert len(o["onset_ci"]) == 2 and len(o["midpoint_ci"]) == 2
    assert rep["env_steps"] == res.env_steps > 0
    assert rep["timings"]["learner"]["traces"]["chunk"] == 1
    md = (out / "report.md").read_text()
    assert "## Onsets" in md and "behavioral accuracy" in md and "| 1.00 |" in md


def test_true_optimizer_shows_onset_on_analytic(swept):
    """On the analytic family an inner ES with a positive step is a true optimizer: selection
    (i = 1) grows the step, the control cannot learn, so accuracy and online share rise."""
    _, res = swept
    on = {(o["metric"], o["diversity"]): o for o in res.report["onsets"]}
    es_acc = res.arms["learner"].measures[6]["behavioral_accuracy"]
    ctrl_acc = res.arms["control"].measures[6]["behavioral_accuracy"]
    sel = res.grid.intensity == 1.0
    assert es_acc[sel].mean() > ctrl_acc[sel].mean()
    assert on[("lifetime_gain", 0)]["difference"][-1] > 0


def test_cli_sweep_end_to_end(tmp_path):
    out = tmp_path / "cli"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-m", "meta_evo.cli", "sweep", *SWEEP,
                        "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "sweep finished" in r.stdout
    for name in ("report.json", "report.md", "phase_diagram.png", "lifetime_curves.png",
                 "cross_task_matrix.png"):
        assert (out / name).is_file(), name
    rep = json.loads((out / "report.json").read_text())
    assert rep["axes"]["diversities"] == [1, 0] and len(rep["points"]) == 2 * G


@pytest.mark.parametrize("bad, needle", [
    (["sweep.intensities=[1.0,0.5]"], "sweep.intensities"),
    (["sweep.seeds=0"], "sweep.seeds"),
    (["sweep.bogus=1"], "sweep.bogus"),
    (["sweep.diversities=[-1]"], "sweep.diversities"),
])
def test_bad_sweep_config_exits_2_one_line(bad, needle, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["sweep", *SWEEP, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meta-evo: error:") and needle in err
    assert not out.exists()


def test_missing_config_file_and_existing_out_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "exists").mkdir()
    assert main(["sweep", *SWEEP, "--out", str(tmp_path / "exists")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err


def test_builtin_default_is_valid_and_copies_match():
    from pathlib import Path

    from meta_evo.config import builtin_config_path, load_config

    cfg = load_config(None, [], default="sweep_default")
    sw = cfg.sweep
    assert cfg.task.family == "analytic" and cfg.agent.kind == "direct"
    assert cfg.learner.kind == "gru" and sw.control == "shuffled"
    assert sw.primary_metric == "objective_sensitivity"
    assert len(sw.intensities) >= 5 and sw.seeds >= 8 and set(sw.diversities) >= {0, 1}
    repo = Path(__file__).resolve().parents[1] / "configs" / "sweep_default.yaml"
    assert repo.read_text() == builtin_config_path("sweep_default").read_text()


def test_chunk_length_divides_generations_and_measure_period():
    from meta_evo.sweep import chunk_length, groups, measure_generations

    c = make_cfg(SWEEP, "meta.generations=12", "meta.chunk=5", "sweep.measure_every=6")
    assert chunk_length(c) == 3 and measure_generations(c) == [0, 6, 12]
    c = make_cfg(SWEEP, "meta.generations=7", "meta.chunk=10", "sweep.measure_every=0")
    assert chunk_length(c) == 7 and measure_generations(c) == [0, 7]
    parts = groups(5, 2)
    assert [list(p) for p in parts] == [[0, 1], [2, 3], [4, 4]]


def test_cpu_workaround_only_before_the_backend_starts(monkeypatch):
    from meta_evo.cpu_flags import cpu_workaround

    jnp.zeros(1).block_until_ready()  # the backend is up: the flag can no longer apply
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert cpu_workaround() is False and "XLA_FLAGS" not in os.environ
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    assert cpu_workaround() is True
