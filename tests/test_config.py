"""Config loading: defaults, overrides, and one-line errors naming the key."""

import subprocess
import sys

import pytest

from meta_evo.config import Config, ConfigError, dump_config, load_config


def test_builtin_quickstart_loads_and_roundtrips(tmp_path):
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.task.family == "reacher_goal" and cfg.agent.kind == "pd"
    p = tmp_path / "c.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_dotted_overrides_apply_and_coerce():
    cfg = load_config(None, ["meta.population=8", "meta.sigma=0.5", "agent.hidden=[4, 4]",
                             "sweep.intensities=[0, 1]"])
    assert cfg.meta.population == 8 and cfg.meta.sigma == 0.5
    assert cfg.agent.hidden == (4, 4) and cfg.sweep.intensities == (0.0, 1.0)


@pytest.mark.parametrize("override, key", [
    ("meta.nope=1", "meta.nope"),
    ("bogus.x=1", "bogus"),
    ("meta.population=abc", "meta.population"),
    ("meta.population=7", "meta.population"),
    ("learner.candidates=5", "learner.candidates"),
    ("learner.lifetime=-1", "learner.lifetime"),
    ("task.family=walker9", "task.family"),
    ("meta.strategy=NoSuchES", "meta.strategy"),
    ("meta.pressure=1.5", "meta.pressure"),
    ("task.backend=warp", "task.backend"),
    ("meta.sigma=0", "meta.sigma"),
    ("agent.kind=mlp", None),  # valid
    ("log.tensorboard=maybe", "log.tensorboard"),
    ("sweep.intensities=[1, 0]", "sweep.intensities"),
])
def test_bad_values_name_the_key(override, key):
    if key is None:
        load_config(None, [override])
        return
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg


def test_agent_family_mismatch_is_refused():
    with pytest.raises(ConfigError, match="agent.kind"):
        load_config(None, ["task.family=analytic"])  # pd agent on analytic
    with pytest.raises(ConfigError, match="agent.kind"):
        load_config(None, ["task.family=halfcheetah_vel"])  # pd agent exists for reacher only


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("meta: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "meta_evo.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_bad_config_exit_2_one_line_no_run_dir(tmp_path):
    out = tmp_path / "run"
    r = _cli("run", "--out", str(out), "meta.population=7", cwd=tmp_path)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "meta.population" in lines[0]
    assert not out.exists()


def test_cli_refuses_existing_run_dir(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = _cli("run", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2 and "exists" in r.stderr
    assert (out / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_every_shipped_config_loads_and_validates():
    """Each experiment config users run, and each built-in one, is a valid config."""
    from pathlib import Path

    from meta_evo.config import builtin_config_path, load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    paths = sorted(root.glob("*.yaml"))
    assert len(paths) >= 10
    for p in paths:
        cfg = load_config(p)
        assert cfg.sweep.seeds >= 1, p.name
    for name in ("quickstart", "sweep_default", "sweep_default_gpu"):
        load_config(builtin_config_path(name))
    # the repository's copies of the built-in defaults are the package's
    assert (root / "sweep_default.yaml").read_text() == \
        builtin_config_path("sweep_default").read_text()
    assert (root / "reacher_goal_gru.yaml").read_text() == \
        builtin_config_path("sweep_default_gpu").read_text()
