"""Tracking (meta_evo.tracking): what TensorBoard's event files hold is what the run or sweep
computed, read back with a minimal TFRecord reader (the tensorboard package is not installed;
tensorboardX ships the protobufs); W&B through a fake ``wandb`` module that records its calls;
``log.wandb`` without wandb installed is one line and exit 2.

One tiny analytic sweep (2 intensities x 2 seeds, one diversity, 4 generations in chunks of 2,
with its report) runs with both trackers on and serves the sweep tests.
"""

import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from helpers import ANALYTIC, cfg
from tensorboardX.proto import event_pb2

from meta_evo import single_run
from meta_evo.cli import main
from meta_evo.config import ConfigError, load_config
from meta_evo.sweep import sweep
from meta_evo.tracking import STEP, Tracker, open_trackers, png_size, point_tag

SWEEP = [*ANALYTIC, "meta.generations=4", "meta.chunk=2", "sweep.intensities=[0, 1]",
         "sweep.seeds=2", "sweep.diversities=[1]", "measure.heldout_tasks=3",
         "measure.reference_samples=8", "measure.alignment_samples=4"]


def read_events(tb_dir: Path) -> list:
    """Every event of every event file under ``tb_dir``: TFRecord framing, 8-byte little-endian
    length, 4-byte CRC of it, the data, 4-byte CRC of the data (CRCs not checked here)."""
    events = []
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = event_pb2.Event()
            ev.ParseFromString(data[i + 12:i + 12 + n])
            events.append(ev)
            i += 12 + n + 4
    return events


def scalars(events) -> dict:
    """``{tag: {step: value}}`` of the scalar summaries."""
    out: dict = {}
    for ev in events:
        for v in ev.summary.value:
            if v.WhichOneof("value") == "simple_value":
                out.setdefault(v.tag, {})[ev.step] = v.simple_value
    return out


def tags_of(events, kind: str) -> set:
    return {v.tag for ev in events for v in ev.summary.value if v.WhichOneof("value") == kind}


class FakeRun:
    def __init__(self, calls):
        self.calls = calls

    def define_metric(self, *a, **k):
        self.calls.append(("define_metric", a, k))

    def log(self, data, **k):
        self.calls.append(("log", dict(data), k))

    def finish(self):
        self.calls.append(("finish", (), {}))


def fake_wandb(calls: list) -> types.ModuleType:
    """A ``wandb`` module recording init, log, finish (and what tables/images/html hold)."""
    m = types.ModuleType("wandb")

    def init(**kw):
        calls.append(("init", (), kw))
        return FakeRun(calls)

    m.init = init
    m.Table = lambda columns, data: ("Table", columns, data)
    m.Image = lambda path: ("Image", path)
    m.Html = lambda text: ("Html", text)
    return m


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    calls: list = []
    out = tmp_path_factory.mktemp("track") / "sweep-run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "wandb", fake_wandb(calls))
        mp.delenv("WANDB_PROJECT", raising=False)
        c = cfg(SWEEP, "log.tensorboard=true", "log.wandb=true")
        res = sweep(c, out, progress=False)
    return res, out, calls


def test_sweep_fitness_curves_in_tensorboard_equal_the_history(swept):
    res, out, _ = swept
    got = scalars(read_events(out / "tb"))
    g = res.grid
    for arm, a in res.arms.items():
        for metric in ("fitness_mean", "fitness_best"):
            hist = np.asarray(a.history[metric], np.float32)  # [G, generations]
            for p in range(g.size):
                tag = point_tag(arm, metric, g.intensity[p], g.diversity[p], g.seed[p])
                steps = sorted(got[tag])
                assert steps == list(range(1, hist.shape[1] + 1))
                np.testing.assert_array_equal(np.float32([got[tag][s] for s in steps]),
                                              hist[p], err_msg=tag)
    assert len(got) == 2 * 2 * g.size  # two arms, two metrics, every point; nothing else
    assert "learner/fitness_mean/i1_d1_s0" in got


def test_sweep_report_config_and_provenance_in_tensorboard(swept):
    res, out, _ = swept
    events = read_events(out / "tb")
    pngs = sorted(p.stem for p in out.glob("*.png"))
    assert pngs and tags_of(events, "image") == {f"report/{s}" for s in pngs}
    texts = {v.tag: v.tensor.string_val[0].decode() for ev in events for v in ev.summary.value
             if v.WhichOneof("value") == "tensor"}
    assert {"config/text_summary", "provenance/text_summary", "report/levels/text_summary",
            "report/primary/text_summary"} <= set(texts)
    assert "population: 8" in texts["config/text_summary"]
    assert res.report["provenance"]["started_utc"] in texts["provenance/text_summary"]
    first = res.report["levels"][0]
    assert f"| {first['arm']} | {first['diversity']} |" in texts["report/levels/text_summary"]


def test_sweep_in_wandb(swept):
    res, out, calls = swept
    (kind, _, init), *rest = calls
    assert kind == "init" and init["project"] == "meta-evo" and init["name"] == out.name
    assert init["config"] == res.cfg.to_dict() and init["job_type"] == "sweep"
    assert rest[-1][0] == "finish" and [c[0] for c in rest].count("finish") == 1
    logs = [c[1] for c in rest if c[0] == "log"]
    tag = point_tag("control", "fitness_mean", res.grid.intensity[3], res.grid.diversity[3],
                    res.grid.seed[3])
    curve = [(d[STEP], d[tag]) for d in logs if tag in d]
    hist = res.arms["control"].history["fitness_mean"][3]
    assert [s for s, _ in curve] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in curve], hist, rtol=0, atol=0)
    table = next(d["report/levels"] for d in logs if "report/levels" in d)
    assert table[0] == "Table" and len(table[2]) == len(res.report["levels"])
    assert any(isinstance(d.get("report/phase_diagram"), tuple) for d in logs)
    assert any("config" in d for d in logs) and any("provenance" in d for d in logs)


def test_run_tensorboard_and_wandb(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb(calls))
    monkeypatch.setenv("WANDB_PROJECT", "my-project")
    c = cfg(ANALYTIC, "meta.generations=4", "meta.chunk=2", "log.tensorboard=true",
            "log.wandb=true")
    res = single_run.run(c, tmp_path / "one-run", progress=False)
    got = scalars(read_events(tmp_path / "one-run" / "tb"))
    assert sorted(got["fitness_mean"]) == [1, 2, 3, 4]
    np.testing.assert_array_equal([got["fitness_mean"][r["generation"]] for r in res.metrics],
                                  np.float32([r["fitness_mean"] for r in res.metrics]))
    init = calls[0][2]
    assert init["project"] == "my-project" and init["name"] == "one-run"
    assert init["config"] == c.to_dict() and init["job_type"] == "run"
    logs = [x[1] for x in calls if x[0] == "log"]
    assert [d[STEP] for d in logs] == [1, 2, 3, 4]
    assert [d["fitness_mean"] for d in logs] == [r["fitness_mean"] for r in res.metrics]
    assert calls[-1][0] == "finish"


def test_missing_wandb_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails, as uninstalled
    with pytest.raises(ConfigError, match=r"^log\.wandb: .*pip install wandb"):
        load_config(None, [*ANALYTIC, "log.wandb=true"])
    out = tmp_path / "r"
    assert main(["run", *ANALYTIC, "log.wandb=true", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install wandb" in err and not out.exists()
    assert main(["sweep", *SWEEP, "log.wandb=true", "--out", str(out)]) == 2
    assert "pip install wandb" in capsys.readouterr().err and not out.exists()


def test_nothing_tracked_when_both_are_off(tmp_path):
    c = cfg(ANALYTIC)
    t = open_trackers(c, tmp_path, "run")
    assert type(t) is Tracker
    t.scalars({"x": 1.0}, 1)
    t.close()
    assert list(tmp_path.iterdir()) == []


def test_png_size_reads_the_header():
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 64, 32)
    assert png_size(head) == (32, 64)
    with pytest.raises(ValueError):
        png_size(b"GIF89a" + bytes(20))
