"""The engine's mesh, sharding and memory groups (meta_evo.engine).

The sharded runs happen in subprocesses with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(the flag must be set before JAX starts):

- ``meta-evo sweep`` through the CLI on a reduced analytic sweep uses the 4 devices
  (report.json ``platform.device_count``), its groups are a multiple of 4 (the last one
  padded), each arm compiles once, and its ``sweep.npz`` equals a one-device run within 1e-4;
- the engine's grid chunk with the grid x population axes over 2 x 2 devices equals the
  single-device program;
- a multi-host job: two processes (``jax.distributed`` on localhost, 2 devices each, gloo
  collectives) run the same ``meta-evo sweep --out DIR``; the grid spans the 4 devices of both,
  process 0 alone writes DIR, and its ``sweep.npz`` equals the one-device run within 1e-4.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo import distributed, engine

FOUR = "--xla_force_host_platform_device_count=4"
# The CLI's default (analytic gru) sweep, reduced: 2 intensities x 3 seeds x 1 diversity = 6
# points, 2 chunks of 2 generations, both arms. The 1 MiB budget fits 5 points (~192 KiB each):
# groups of 5 on one device, of 4 on four (the second group padded in both)
SWEEP = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=2",
         "learner.lifetime=3", "learner.candidates=1", "learner.hidden=4", "meta.population=8",
         "meta.generations=4", "meta.chunk=2", "log.progress=false",
         "sweep.intensities=[0.0,1.0]", "sweep.seeds=3", "sweep.diversities=[0]",
         "sweep.measure_every=0", "sweep.memory_budget_mb=1", "measure.heldout_tasks=3",
         "measure.reference_samples=16", "measure.alignment_samples=2"]
G = 2 * 3


def _env(flags: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if flags:
        env["XLA_FLAGS"] = flags
    return env


def _start(out, flags):
    return subprocess.Popen([sys.executable, "-m", "meta_evo.cli", "sweep", *SWEEP, "--out",
                             str(out), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(flags))


def _finish(proc, out):
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    rep = json.loads((out / "report.json").read_text())
    with np.load(out / "sweep.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return rep, arrays


@pytest.fixture(scope="module")
def cli_sweeps(tmp_path_factory):
    """The same sweep on 4 devices and on 1, side by side (two processes: each compiles)."""
    root = tmp_path_factory.mktemp("sharded")
    procs = {"four": _start(root / "four", FOUR), "one": _start(root / "one", None)}
    return {name: _finish(p, root / name) for name, p in procs.items()}


def test_cli_sweep_uses_every_device(cli_sweeps):
    rep, _ = cli_sweeps["four"]
    assert rep["platform"]["device_count"] == 4
    assert FOUR in rep["platform"]["xla_flags"]
    for name, t in rep["timings"].items():
        # groups divide over the devices: 6 points in 2 groups of 4, the last one padded
        assert t["group_size"] == 4 and t["groups"] == 2, (name, t)
    one = cli_sweeps["one"][0]
    assert one["platform"]["device_count"] == 1
    assert {t["group_size"] for t in one["timings"].values()} == {5}


def test_cli_sweep_compiles_once_per_arm_on_four_devices(cli_sweeps):
    rep, _ = cli_sweeps["four"]
    assert set(rep["timings"]) == {"learner", "control"}
    assert rep["timings"]["learner"]["traces"] == {"chunk": 1, "measure": 1}
    # the control is measured through the learner arm's program
    assert rep["timings"]["control"]["traces"] == {"chunk": 1, "measure": 0}


def test_cli_sweep_four_devices_equal_one(cli_sweeps):
    four, one = cli_sweeps["four"][1], cli_sweeps["one"][1]
    assert four.keys() == one.keys()
    assert any(k.startswith("control/") for k in four)
    worst = 0.0
    for k in four:
        a, b = np.asarray(four[k], np.float64), np.asarray(one[k], np.float64)
        assert a.shape == b.shape, k
        assert np.array_equal(np.isnan(a), np.isnan(b)), k
        d = float(np.max(np.abs(np.nan_to_num(a - b)), initial=0.0))
        worst = max(worst, d)
        assert d < 1e-4, (k, d)
    print(f"max |4 devices - 1 device| over sweep.npz: {worst:.3g}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def multi_host(tmp_path_factory, cli_sweeps):
    """The sweep as a job of two processes sharing one run directory (after cli_sweeps, so the
    2 cores are not shared by four processes at once)."""
    out = tmp_path_factory.mktemp("multihost") / "run"
    procs = _start_job(SWEEP, out, _free_port())
    outs = []
    for p in procs:
        o, e = p.communicate(timeout=900)
        assert p.returncode == 0, e[-3000:]
        outs.append(o)
    rep = json.loads((out / "report.json").read_text())
    with np.load(out / "sweep.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return out, rep, arrays, outs


def _start_job(args, out_or_dir, port, command="sweep"):
    procs = []
    for pid in range(2):
        env = _env("--xla_force_host_platform_device_count=2")
        env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(pid))
        argv = ([command, *args, "--out", str(out_or_dir)] if command == "sweep"
                else [command, str(out_or_dir)])
        procs.append(subprocess.Popen([sys.executable, "-m", "meta_evo.cli", *argv, "--quiet"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=env))
    return procs


def test_multi_host_sweep_interrupted_then_resumed_equals_one_device(tmp_path):
    """SIGINT to both processes of a multi-host sweep: both stop after the same checkpoint (the
    signal is agreed by a collective) with exit 130; ``meta-evo resume`` on both finishes it,
    and its arrays equal an uninterrupted one-device sweep within 1e-4."""
    import signal
    import time

    longer = [a for a in SWEEP if not a.startswith("meta.generations")] + [
        "meta.generations=60"]
    out = tmp_path / "job"
    procs = _start_job(longer, out, _free_port())
    ref = subprocess.Popen([sys.executable, "-m", "meta_evo.cli", "sweep", *longer, "--out",
                            str(tmp_path / "ref"), "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=_env(None))
    state = out / "sweep_state" / "learner"
    deadline = time.time() + 600
    def saves() -> int:  # the newest sweep-state step (steps count the saves; 2 are kept)
        steps = [int(p.name) for p in state.iterdir() if p.name.isdigit()] if state.is_dir() \
            else []
        return max(steps, default=-1)

    while time.time() < deadline and saves() < 3:  # a few chunks into the learner arm
        ended = [p for p in procs if p.poll() is not None]
        assert not ended, ("the job ended before it was interrupted: "
                           + ended[0].communicate()[1][-2000:])
        time.sleep(0.1)
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 130, err[-3000:]
        assert "resume with: meta-evo resume" in err
    assert not (out / "report.json").exists()
    for p in _start_job(None, out, _free_port(), command="resume"):
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    _, err = ref.communicate(timeout=900)
    assert ref.returncode == 0, err[-3000:]
    with np.load(out / "sweep.npz") as a, np.load(tmp_path / "ref" / "sweep.npz") as b:
        assert set(a.files) == set(b.files)
        for k in a.files:
            x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
            assert x.shape == y.shape and np.array_equal(np.isnan(x), np.isnan(y)), k
            assert float(np.max(np.abs(np.nan_to_num(x - y)), initial=0.0)) < 1e-4, k


def test_multi_host_sweep_spans_both_processes_and_equals_one_device(multi_host, cli_sweeps):
    out, rep, arrays, outs = multi_host
    assert rep["platform"]["process_count"] == 2
    assert rep["platform"]["device_count"] == 4  # 2 processes x 2 devices on the grid axis
    for name, t in rep["timings"].items():
        assert t["group_size"] == 4 and t["groups"] == 2, (name, t)
    assert "sweep finished" in outs[0] and "sweep finished" not in outs[1]  # process 0 tells
    one = cli_sweeps["one"][1]
    assert arrays.keys() == one.keys()
    for k in arrays:
        a, b = np.asarray(arrays[k], np.float64), np.asarray(one[k], np.float64)
        assert a.shape == b.shape, k
        assert np.array_equal(np.isnan(a), np.isnan(b)), k
        assert float(np.max(np.abs(np.nan_to_num(a - b)), initial=0.0)) < 1e-4, k
    # one writer: a single lock file, one sweep state
    assert (out / "sweep_state" / "learner").is_dir()


POP_SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from meta_evo import engine
    from meta_evo.config import load_config
    from meta_evo.meta import Meta

    assert jax.device_count() == 4, jax.devices()
    cfg = load_config(None, ["task.family=analytic", "agent.kind=direct",
                             "task.tasks_per_member=1", "learner.lifetime=2",
                             "learner.candidates=2", "meta.population=4",
                             "meta.strategy=SimpleES", "log.progress=false"])
    meta = Meta(cfg)
    g, n = 4, 2
    states = jax.vmap(meta.init)(jax.random.split(jax.random.PRNGKey(0), g))
    pr = np.linspace(0.2, 1.0, g).astype(np.float32)
    dv = np.array([0, 1, 2, 1], np.int32)
    one = engine.make_mesh(devices=jax.devices()[:1])
    ref = jax.tree.map(np.asarray, engine.make_grid_chunk(meta, mesh=one)(states, pr, dv, n))
    mesh = engine.make_mesh(2, 2)
    res = engine.make_grid_chunk(meta, mesh=mesh)(states, pr, dv, n)
    devices = len(res[0].es_state.mean.sharding.device_set)
    diff = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
               for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(res)))
    print(json.dumps({"diff": diff, "devices": devices,
                      "generation": np.asarray(res[0].generation).tolist()}))
""")


def test_grid_and_population_sharded_equals_single_device():
    r = subprocess.run([sys.executable, "-c", POP_SCRIPT], capture_output=True, text=True,
                       env=_env(FOUR), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["generation"] == [2] * 4
    # same program, same keys: equal up to float reassociation across devices
    assert out["diff"] < 1e-4, out


def test_population_sharded_is_a_new_meta():
    from meta_evo.config import load_config
    from meta_evo.meta import Meta
    meta = Meta(load_config(None, ["task.family=analytic", "agent.kind=direct",
                                   "meta.population=4", "log.progress=false"]))
    m = engine.population_sharded(meta, engine.make_mesh(1, 1))
    assert m is not meta and meta.member_sharding is None and m.member_sharding is not None
    assert m.cfg is meta.cfg and m.theta_size == meta.theta_size


def test_point_bytes_and_group_size_under_the_budget():
    from meta_evo.config import load_config
    from meta_evo.meta import Meta
    cfg = load_config(None, SWEEP, default="sweep_default")  # the CLI's default: gru
    meta = Meta(cfg)
    b = engine.point_bytes(meta)
    assert b > 0
    size = engine.group_size(meta, G)
    assert 1 <= size <= G and size * b <= cfg.sweep.memory_budget_mb * 2**20
    assert engine.group_size(meta, G, devices=4) % 4 == 0


def test_fit_group_fits_budget():
    assert engine.fit_group(100, 10, 45) == 4
    assert engine.fit_group(3, 10, 1000) == 3  # never more than the grid
    assert engine.fit_group(100, 10, 5) == 1  # at least one point
    assert engine.fit_group(100, 10, 45, multiple=4) == 4
    assert engine.fit_group(100, 10, 75, multiple=4) == 4  # rounded down to the devices
    assert engine.fit_group(100, 10, 5, multiple=4) == 4  # at least one per device
    assert engine.fit_group(6, 1, 1000, multiple=4) == 8  # the grid padded to the devices


def test_groups_pad_grid_and_run_in_groups():
    assert [list(p) for p in engine.groups(5, 2)] == [[0, 1], [2, 3], [4, 4]]
    x = jnp.arange(5.0)
    assert engine.pad_grid(x, 8).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    with pytest.raises(ValueError):
        engine.pad_grid(x, 3)
    calls = []

    @jax.jit
    def f(a, b):
        calls.append(a.shape)  # runs at trace time only
        return {"s": a + b, "p": a * b}

    done = []
    out = engine.run_in_groups(f, (x, 2 * x), 2, on_group=lambda a, b: done.append((a, b)))
    np.testing.assert_allclose(out["s"], 3 * np.arange(5.0))
    np.testing.assert_allclose(out["p"], 2 * np.arange(5.0) ** 2)
    assert done == [(0, 2), (2, 4), (4, 5)]
    assert calls == [(2,)]  # one shape, one trace, for three groups


def test_make_mesh_shapes():
    mesh = engine.make_mesh()
    assert mesh.axis_names == (engine.GRID, engine.POP)
    assert engine.grid_devices(mesh) * mesh.shape[engine.POP] == jax.local_device_count()
    with pytest.raises(ValueError):
        engine.make_mesh(jax.local_device_count() + 1, 1)


def test_grid_program_refuses_a_group_that_does_not_divide():
    mesh = engine.make_mesh(devices=jax.devices()[:1])
    prog = engine.GridProgram(lambda a: a * 2, mesh, ("grid",))
    assert np.asarray(prog(np.arange(3.0))).tolist() == [0, 2, 4]
    if jax.local_device_count() > 1:
        with pytest.raises(ValueError, match="does not divide"):
            engine.GridProgram(lambda a: a, engine.make_mesh(), ("grid",))(np.arange(1.0))


def test_maybe_initialize_distributed(monkeypatch):
    seen = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.append(kw))
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed, "_distributed", False)
    assert distributed.maybe_initialize_distributed(env={}) is False
    assert seen == []
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "2",
           "JAX_PROCESS_ID": "1", "JAX_LOCAL_DEVICE_IDS": "0,1"}
    assert distributed.maybe_initialize_distributed(env=env) is True
    assert seen == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 2,
                     "process_id": 1, "local_device_ids": [0, 1]}]
    assert distributed.maybe_initialize_distributed(env=env) is True  # idempotent
    assert len(seen) == 1
    monkeypatch.setattr(distributed, "_distributed", False)
    settings = {"coordinator_address": "h:1", "num_processes": 4, "process_id": 0}
    assert distributed.maybe_initialize_distributed(settings, env={}) is True
    assert seen[-1] == {"coordinator_address": "h:1", "num_processes": 4, "process_id": 0}
    monkeypatch.setattr(distributed, "_distributed", False)
    assert distributed.maybe_initialize_distributed(env={"META_EVO_DISTRIBUTED": "1"}) is True
    assert seen[-1] == {}  # cluster auto-detection


def test_single_run_and_unnamed_sweep_refused_in_a_multi_host_job(monkeypatch, tmp_path, capsys):
    """A single run stays on one host, and a multi-host sweep needs the one shared --out (the
    default is a per-process timestamp): one line, exit 2, nothing written."""
    from meta_evo import cli, single_run
    from meta_evo.config import builtin_config_path, load_config
    from meta_evo.errors import RunDirError

    monkeypatch.setattr(distributed, "process_count", lambda: 2)
    cfg = load_config(builtin_config_path("sweep_default"), SWEEP)
    with pytest.raises(RunDirError, match="single run uses one host"):
        single_run.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", *SWEEP]) == 2
    err = capsys.readouterr().err
    assert "multi-host sweep needs --out" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
