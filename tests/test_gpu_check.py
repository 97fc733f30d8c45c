"""The device script runs end to end at CI size (``--tiny``: analytic, 2 grid points): the
throughput benchmark of a single run and of a sweep, and a sweep to its report, under one
output folder with a summary that reads them."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_tiny_runs_on_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"]["backend"] == "cpu"
    for name in ("single_gru", "sweep_gru"):
        assert summary[name]["ratio_engine_to_peer"] is not None
    rep = json.loads((out / "sweep" / "report.json").read_text())
    assert summary["sweep_env_steps"] == rep["env_steps"] > 0
    assert (out / "sweep" / "report.md").is_file()


def test_gpu_check_refuses_an_unknown_argument():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--bogus"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--bogus" in proc.stderr
