"""First contact with the command line (issue 21): arguments in any order, YAML 1.2 numbers,
``--version``, ``meta-evo config``, ``--dry-run``, "did you mean", start-or-resume for cluster
jobs, reproducibility metadata and the packaging bits.

Everything runs on the analytic family or as ``--dry-run`` / ``config`` (nothing compiled),
except one tiny real run and one tiny sweep interrupted and finished by ``--resume-if-exists``.
"""

import contextlib
import importlib.metadata
import io
import json
import logging
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml

from meta_evo import cli
from meta_evo.config import (
    ConfigError,
    _Dumper,
    apply_overrides,
    dump_config,
    load_config,
    yaml_load,
)

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
# a tiny analytic sweep (as tests/test_sweep_resume.py): seconds to compile, less to run
TINY = {
    "task": {"family": "analytic", "tasks_per_member": 2},
    "agent": {"kind": "direct"},
    "learner": {"lifetime": 10, "candidates": 8, "init_noise": 0.3},
    "meta": {"population": 8, "generations": 6, "chunk": 2},
    "measure": {"heldout_tasks": 3, "reference_samples": 8, "alignment_samples": 4},
    "sweep": {"intensities": [0, 1], "seeds": 2, "diversities": [1]},
    "log": {"progress": False},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return str(p)


def call(argv):
    """``(exit code, stdout, stderr)`` of ``meta-evo argv``, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse: --version, usage errors
            code = e.code
    return code, out.getvalue(), err.getvalue()


def files(root: Path) -> dict:
    """Every path under ``root`` with its bytes and mtime (directories: their mtime)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None,
                                       p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


# --- arguments in any order -----------------------------------------------------------------------

@pytest.mark.parametrize("order", [
    ["run", "{cfg}", "--out", "{out}", "meta.generations=20", "--dry-run"],  # README's order
    ["run", "--out", "{out}", "{cfg}", "meta.generations=20", "--dry-run"],
    ["run", "--dry-run", "meta.generations=20", "--out", "{out}", "{cfg}"],
    ["run", "meta.generations=3", "--out", "{out}", "{cfg}", "--dry-run", "meta.generations=20"],
    ["sweep", "{cfg}", "--out", "{out}", "meta.generations=20", "--dry-run", "--quiet"],
    ["sweep", "--dry-run", "meta.generations=3", "--out", "{out}", "{cfg}",
     "meta.generations=20"],
])
def test_argument_orders(tmp_path, tiny, order):
    """Options, CONFIG and overrides in any order give the same command (the last override of a
    key wins); --dry-run creates nothing."""
    out = tmp_path / "never"
    argv = [a.format(cfg=tiny, out=out) for a in order]
    code, text, err = call(argv)
    assert code == 0, err
    assert "20 generations" in text and f"run directory: {out}" in text
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_readme_first_run_order_with_quickstart(tmp_path, monkeypatch):
    """The README's example, verbatim apart from --dry-run: reacher_goal's quickstart."""
    monkeypatch.chdir(tmp_path)
    code, text, err = call(["run", QUICKSTART, "--out", "DIR", "meta.generations=20",
                            "--dry-run"])
    assert code == 0, err
    assert "reacher_goal" in text and "20 generations" in text
    assert list(tmp_path.iterdir()) == []


def test_config_orders_and_roundtrip(tmp_path, tiny):
    a = call(["config", tiny, "meta.generations=20", "meta.sigma=1e-3"])
    b = call(["config", "meta.sigma=1e-3", tiny, "meta.generations=20"])
    assert a[0] == b[0] == 0 and a[1] == b[1]
    want = load_config(tiny, ["meta.generations=20", "meta.sigma=1e-3"])
    assert a[1] == dump_config(want)
    p = tmp_path / "resolved.yaml"
    p.write_text(a[1])
    assert load_config(p) == want  # the printed YAML is a config that loads to the same
    code, text, _ = call(["config", "--sweep"])  # the sweep's default on this platform
    default, said = cli._sweep_default()
    assert code == 0 and text.startswith(f"# {said}\n")
    assert load_config(None, default=default) == yaml_config(text)


def yaml_config(text):
    from meta_evo.config import config_from_dict

    return config_from_dict(yaml_load(text))


def test_real_run_with_overrides_after_out(tmp_path, tiny):
    """A real (tiny) run in the README's order; its summary records where it came from."""
    out = tmp_path / "run"
    code, text, err = call(["run", tiny, "--out", str(out), "meta.generations=2", "--quiet"])
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["generations"] == 2 and "run finished" in text
    check_provenance(s["provenance"])


def test_analyze_arguments_in_either_order():
    p = cli.build_parser()
    for argv, want in [
        (["analyze", "R", "--step", "2", "4", "--quiet"], ("R", [2, 4])),
        (["analyze", "--step", "2", "4", "R"], ("R", [2, 4])),
        (["analyze", "--quiet", "--step", "0", "R", "--step", "2"], ("R", [0, 2])),
        (["analyze", "R"], ("R", None)),
    ]:
        assert cli._analyze_args(cli._parse(p, argv)) == want, argv
    for argv in (["analyze", "R", "--step", "x"], ["analyze", "--step", "2"]):
        with pytest.raises(cli._UsageError):
            cli._analyze_args(cli._parse(p, argv))


# --- YAML 1.2 numbers -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("-1.5e+2", -150.0), ("-1.5e2", -150.0),
                                         ("2E3", 2000.0), (".5e1", 5.0), ("1_0e1", 100.0)])
def test_exponent_numbers_are_floats(text, value):
    got = yaml_load(text)
    assert isinstance(got, float) and got == value
    assert apply_overrides({}, [f"a.b={text}"]) == {"a": {"b": value}}


def test_exponent_numbers_in_overrides_and_files(tmp_path):
    cfg = load_config(None, ["meta.sigma=1e-3", "task.ctrl_weight=2E-2"])
    assert cfg.meta.sigma == 1e-3 and cfg.task.ctrl_weight == 0.02
    # read as a number: the error is the value's range, not its type
    with pytest.raises(ConfigError, match=r"meta.sigma: must be > 0, got -150.0"):
        load_config(None, ["meta.sigma=-1.5e+2"])
    p = tmp_path / "c.yaml"
    p.write_text("meta:\n  sigma: 1e-3\nsweep:\n  intensities: [0, 5e-1, 1e0, 1.5e+0]\n")
    cfg = load_config(p)
    assert cfg.meta.sigma == 1e-3 and cfg.sweep.intensities == (0.0, 0.5, 1.0, 1.5)
    # strings that would read back as such numbers are quoted when written
    assert yaml_load(yaml.dump({"s": "1e3", "f": 1e-5}, Dumper=_Dumper)) == {"s": "1e3",
                                                                             "f": 1e-5}
    # what YAML 1.1 already read stays as it was
    assert yaml_load("1.0e-5") == 1e-5 and yaml_load("abc") == "abc" and yaml_load("1") == 1


# --- --version, did you mean ----------------------------------------------------------------------

def test_version():
    code, text, _ = call(["--version"])
    assert code == 0 and text == f"meta-evo {importlib.metadata.version('meta-evo')}\n"
    r = subprocess.run([sys.executable, "-m", "meta_evo.cli", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == text


@pytest.mark.parametrize("argv, hint", [
    (["run", "meta.populaton=8"], "did you mean meta.population?"),
    (["run", "meta.diversity=0"], "did you mean task.diversity?"),
    (["run", "meat.population=8"], "did you mean meta?"),
    (["run", "task.family=analytc", "agent.kind=direct"], "did you mean 'analytic'?"),
    (["run", "meta.strategy=open_es"], "did you mean 'Open_ES'?"),
    (["sweep", "sweep.control=shufled"], "did you mean 'shuffled'?"),
    (["swep"], "did you mean 'sweep'?"),
    (["run", "--otu", "x"], "did you mean '--out'?"),
])
def test_did_you_mean(tmp_path, monkeypatch, argv, hint):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "run" and "--otu" not in argv:
        argv = [*argv, "--out", str(tmp_path / "new")]
    code, text, err = call(argv)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and hint in lines[0], err
    assert list(tmp_path.iterdir()) == []  # no run directory


def test_no_suggestion_without_a_near_miss():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["zzzzzz.qqqq=1"])
    assert "did you mean" not in str(e.value) and "unknown key" in str(e.value)


# --- --dry-run ------------------------------------------------------------------------------------

def test_dry_run_compiles_no_program_and_writes_nothing(tmp_path, monkeypatch):
    """The accelerator default sweep (Brax reacher_goal) planned on this CPU: env steps as its
    config's comment counts them, the groups and memory, a wall time with its source; only
    eager scalar ops compile (no engine program), nothing is written."""
    monkeypatch.chdir(tmp_path)
    compiled = []

    class Spy(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Compiling "):
                compiled.append(msg.split()[1])

    spy = Spy()
    loggers = [logging.getLogger(n) for n in ("jax._src.interpreters.pxla", "jax._src.dispatch")]
    for lg in loggers:
        lg.addHandler(spy)
    try:
        with jax.log_compiles(True):
            code, text, err = call(["sweep", str(ROOT / "meta_evo" / "configs" /
                                                 "sweep_default_gpu.yaml"), "--dry-run"])
    finally:
        for lg in loggers:
            lg.removeHandler(spy)
    assert code == 0, err
    assert "14,754,273,280" in text  # 2 arms x 7.377G: configs/reacher_goal_gru.yaml's count
    assert "80 points per arm" in text and "groups: 1 of 80 points" in text
    assert "MiB per group" in text and "benchmarks/README.md" in text and "wall time: about" in text
    assert compiled  # the spy sees compiles: the eager scalar ops of building the tasks
    assert not any("chunk" in c or "measure" in c or "fitness" in c for c in compiled), compiled
    assert list(tmp_path.iterdir()) == []


def test_wall_time_figures():
    """The documented figures the estimate uses, and the analytic one's own arithmetic: the CPU
    default's env steps as counted today (if the default changes, so must the figure)."""
    from meta_evo.config import builtin_config_path
    from meta_evo.plan import RATES, plan_sweep, rate_for

    assert rate_for("cpu", "reacher_goal", "sweep")[0] == 73_629
    assert rate_for("gpu", "reacher_goal", "sweep")[0] == 62_426_961
    rate, src = rate_for("cpu", "hopper_vel", "run")
    assert rate == 5_646 and "none documented for hopper_vel" in src
    rate, src = rate_for("gpu", "ant_dir", "sweep")
    assert rate is not None and "assumed, not measured" in src
    assert rate_for("gpu", "analytic", "sweep")[0] is None
    steps = sum(plan_sweep(load_config(builtin_config_path("sweep_default")))["env_steps"]
                .values())
    rate, src = RATES[("cpu", "analytic", "sweep")]
    assert f"{steps:,} env steps" in src and abs(steps / rate - 300) < 1  # "about 5 minutes"


def test_dry_run_counts_what_the_sweep_does(finished):
    """The plan's env steps, grid and groups equal those of the sweep it plans."""
    from meta_evo.plan import plan_sweep

    out, cfg = finished
    rep = json.loads((out / "report.json").read_text())
    plan = plan_sweep(cfg)
    assert plan["env_steps"] == {a: t["env_steps"] for a, t in rep["timings"].items()}
    assert sum(plan["env_steps"].values()) == rep["env_steps"]
    assert plan["group_size"] == rep["timings"]["learner"]["group_size"]
    assert plan["groups"] == rep["timings"]["learner"]["groups"]
    assert plan["grid_points"] == sum(p["arm"] == "learner" for p in rep["points"])


# --- start or resume ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny):
    """A tiny sweep stopped inside its first arm, then finished by ``--resume-if-exists``."""
    from meta_evo.arm_progress import SweepInterrupted
    from meta_evo.sweep import sweep

    cfg = load_config(tiny)
    out = tmp_path_factory.mktemp("sw") / "X"
    with pytest.raises(SweepInterrupted):
        sweep(cfg, out, progress=False, stop_after=2)
    assert (out / "sweep_state").is_dir() and not (out / "report.json").exists()
    code, text, err = call(["sweep", tiny, "--out", str(out), "--resume-if-exists", "--quiet"])
    assert code == 0, err
    assert text.startswith(f"sweep finished: {out}")
    return out, cfg


def test_resume_if_exists_resumes_an_unfinished_sweep(finished):
    out, _ = finished
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"]["sweep"]["seeds"] == 2 and (out / "sweep.npz").is_file()
    check_provenance(rep["provenance"])


def test_resume_if_exists_leaves_a_finished_sweep_alone(finished, tiny):
    out, _ = finished
    before = files(out)
    code, text, err = call(["sweep", tiny, "--out", str(out), "--resume-if-exists"])
    assert code == 0 and err == ""
    assert text == f"sweep already finished: {out} (report.json exists); nothing to do\n"
    assert files(out) == before  # contents and mtimes


def test_resume_if_exists_refuses_another_config(finished, tiny):
    out, _ = finished
    before = files(out)
    code, _, err = call(["sweep", "--resume-if-exists", tiny, "sweep.seeds=3", "--out", str(out)])
    assert code == 2 and len(err.splitlines()) == 1 and "sweep.seeds" in err
    assert files(out) == before


def test_resume_if_exists_starts_or_restarts(tmp_path, tiny, monkeypatch):
    """Absent: a normal start. Killed before its first checkpoint (manifest and config.yaml
    only): started again in its own directory. Not a sweep directory: refused."""
    import meta_evo.sweep as sweep_mod
    from meta_evo.rundir.layout import write_manifest

    calls = []

    class Stop(Exception):
        pass

    def fake(cfg, out=None, **kw):
        calls.append((out, kw.get("resume_dir")))
        raise Stop

    monkeypatch.setattr(sweep_mod, "sweep", fake)
    new = tmp_path / "new"
    with pytest.raises(Stop):
        cli.main(["sweep", tiny, "--out", str(new), "--resume-if-exists", "--quiet"])
    assert calls[-1] == (str(new), None)
    early = tmp_path / "early"  # what a sweep killed before its first checkpoint leaves
    early.mkdir()
    write_manifest(early, "sweep")
    (early / "config.yaml").write_text(dump_config(load_config(tiny)))
    with pytest.raises(Stop):
        cli.main(["sweep", tiny, "--out", str(early), "--resume-if-exists", "--quiet"])
    assert calls[-1] == (None, early)
    other = tmp_path / "other"
    other.mkdir()
    code, _, err = call(["sweep", tiny, "--out", str(other), "--resume-if-exists"])
    assert code == 2 and "not a run directory" in err and list(other.iterdir()) == []
    code, _, err = call(["sweep", tiny, "--resume-if-exists"])
    assert code == 2 and "needs --out" in err


def test_slurm_example():
    p = ROOT / "examples" / "slurm" / "sweep.sbatch"
    text = p.read_text()
    for line in ("#SBATCH --signal=TERM@120", "#SBATCH --requeue"):
        assert line in text.splitlines()
    assert "--resume-if-exists" in text and "scontrol requeue" in text
    assert subprocess.run(["bash", "-n", str(p)]).returncode == 0


# --- reproducibility metadata, packaging ----------------------------------------------------------

def check_provenance(p: dict):
    assert p["meta_evo"] == importlib.metadata.version("meta-evo")
    v = p["versions"]
    for name in ("jax", "jaxlib", "evosax", "brax", "mujoco", "flax", "optax",
                 "orbax-checkpoint", "numpy", "scipy"):
        assert name in v
        assert v[name] is None or v[name] == importlib.metadata.version(name)
    assert v["jax"] == jax.__version__ and v["numpy"] == np.__version__
    assert "?" not in json.dumps(v)  # a missing version is null, never a placeholder
    assert p["argv"] == sys.argv and p["host"]
    started = datetime.fromisoformat(p["started_utc"])
    assert started.tzinfo is not None and started <= datetime.now(timezone.utc)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0 and (ROOT / "meta_evo").resolve() == \
            Path(cli.__file__).resolve().parent:
        assert p["git_commit"] == head.stdout.strip() and isinstance(p["git_dirty"], bool)
    else:
        assert p["git_commit"] is None


def test_provenance_outside_a_checkout(monkeypatch):
    from meta_evo import provenance

    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    monkeypatch.setattr(provenance, "package_version",
                        lambda d: None if d == "scipy" else importlib.metadata.version(d))
    p = provenance.provenance()
    assert p["git_commit"] is None and p["git_dirty"] is None
    assert p["versions"]["scipy"] is None and p["versions"]["jax"] == jax.__version__


def test_packaging():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("scipy") for d in meta["dependencies"])
    assert "cuda" in meta["optional-dependencies"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version and " " not in line, line
            pins[name.lower()] = version
    for name in ("jax", "jaxlib", "evosax", "brax", "mujoco", "flax", "optax", "orbax-checkpoint",
                 "numpy", "scipy", "pyyaml"):
        assert name in pins, name
    readme = (ROOT / "README.md").read_text()
    for needle in ('pip install ".[cuda]"', "constraints.txt", "--dry-run", "--resume-if-exists",
                   "meta-evo config", "meta-evo --version", "jax-ml/jax#38445",
                   "openxla/xla#44565"):
        assert needle in readme, needle
