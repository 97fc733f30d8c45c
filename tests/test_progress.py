"""The one progress display (meta_evo.progress): a redrawn line on a terminal, plain periodic
lines elsewhere; ETA from this process's rate only (right after a resume); the whole sweep's
work (every arm, group, generation and measurement) in one bar; a fitness of 0.0 is 0.000.

The arithmetic tests use a fake stream and clock; the sweep tests run tiny analytic sweeps
(one diversity level, so the bar's total equals the sweep's env-step count) with stderr
captured (not a terminal) and a line per update (``LOG_EVERY_S = 0``).
"""

import re

import pytest
from helpers import ANALYTIC, cfg

from meta_evo import progress as progress_mod
from meta_evo.arm_progress import SweepInterrupted
from meta_evo.meta import Meta
from meta_evo.progress import ArmWork, Progress, eta_seconds, format_seconds
from meta_evo.single_run import run_status
from meta_evo.sweep import measure_env_steps, resume_sweep, sweep

ARGS = [*ANALYTIC, "meta.generations=6", "meta.chunk=2", "sweep.intensities=[0, 1]",
        "sweep.seeds=2", "sweep.diversities=[1]", "measure.heldout_tasks=3",
        "measure.reference_samples=8", "measure.alignment_samples=4"]
PERCENT = re.compile(r"\] +([0-9.]+) %")


class FakeStream:
    def __init__(self, tty: bool):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _bar(tty: bool, total=100_000, every_s=30.0):
    stream, clock = FakeStream(tty), Clock()
    return Progress(total, stream=stream, every_s=every_s, clock=clock), stream, clock


def test_not_a_terminal_writes_periodic_plain_lines_and_the_last():
    bar, stream, clock = _bar(False)
    for t in (0, 10, 20, 35, 50):  # written: 0 (the first), 35 (30 s after); 50 at the end
        clock.t = t
        bar.advance(10_000, f"at {t}")
    assert stream.text.count("\n") == 2
    bar.close()
    lines = stream.text.splitlines()
    assert "\r" not in stream.text
    assert [re.search(r"at \d+", x).group() for x in lines] == ["at 0", "at 35", "at 50"]
    assert "50.0 %" in lines[-1]
    bar.close()  # a second close writes nothing
    assert stream.text.splitlines() == lines


def test_interval_zero_writes_every_update_and_no_extra_line_at_close():
    bar, stream, clock = _bar(False, every_s=0)
    for t in range(1, 4):
        clock.t = t
        bar.advance(1000)
    bar.close()
    assert len(stream.text.splitlines()) == 3


def test_terminal_redraws_one_line_then_a_newline():
    bar, stream, clock = _bar(True)
    for t in (1, 2, 3):
        clock.t = t
        bar.advance(20_000, f"step {t}")
    assert stream.text.count("\r") == 3 and "\n" not in stream.text
    bar.close()
    assert stream.text.endswith("\n") and stream.text.count("\n") == 1
    assert "step 3" in stream.text.rsplit("\r", 1)[1] and "60.0 %" in stream.text


def test_disabled_writes_nothing():
    stream = FakeStream(False)
    bar = Progress(10, enabled=False, stream=stream)
    bar.advance(5, "x")
    bar.close()
    assert stream.text == ""


def test_eta_counts_only_this_process_after_a_resume():
    bar, stream, clock = _bar(False, every_s=0)
    bar.skip(40_000)  # done before this process (a checkpoint)
    clock.t = 10.0
    bar.advance(10_000, "resumed")
    # 50 000 left at 10 000 per 10 s is 50 s (the naive 50 000 / 10 s would say 10 s)
    line = stream.text.splitlines()[-1]
    assert "50.0 %" in line and "ETA 50s" in line and "1.0k steps/s" in line
    assert "elapsed 10s" in line
    assert eta_seconds(100, 40, 0, 5.0) is None and eta_seconds(100, 100, 0, 5.0) == 0.0
    assert format_seconds(125) == "2m05s" and format_seconds(None) == "?"
    assert format_seconds(3 * 3600 + 7 * 60) == "3h07m"


def test_arm_work_by_hand():
    # 3 (seed, diversity) thetas at generation 0; groups of 4 and 2 real points, 6 generations
    # of 100 steps per point, measured at 4 and 6 (1000 steps per theta)
    w = ArmWork(group_points=(4, 2), generations=6, steps_per_generation=100,
                measure_steps=1000, measured=(4, 6), init_thetas=3)
    per_point = 6 * 100 + 2 * 1000  # 2600
    assert w.total() == 3000 + 4 * per_point + 2 * per_point == 18_600
    assert w.done_at(0, 0) == 3000
    assert w.done_at(1, 2) == 3000 + 4 * per_point + 2 * 200 == 13_800
    assert w.done_at(1, 4) == 3000 + 4 * per_point + 2 * (400 + 1000) == 16_200
    assert w.done_at(2, 0) == w.total()


def test_zero_fitness_prints_zero_not_nan():
    row = {"generation": 3, "fitness_best": 0.0, "fitness_mean": 0.0}
    assert run_status(row, 6) == "gen 3/6  best 0.000  mean 0.000"
    # NaN reaches metrics.jsonl as None: that alone is nan
    assert "best nan" in run_status({"generation": 1, "fitness_best": None,
                                     "fitness_mean": -1.5}, 6)


def _lines(err: str) -> list[str]:
    assert "\r" not in err
    return [x for x in err.splitlines() if PERCENT.search(x)]


def _percent(line: str) -> float:
    return float(PERCENT.search(line).group(1))


def _work(c) -> ArmWork:
    """This config's arm by hand: one group of 4 points, 2 seed thetas at generation 0,
    measured at the end (both arms have the same steps: the control shares the measurement)."""
    meta = Meta(c)
    return ArmWork(group_points=(4,), generations=6,
                   steps_per_generation=meta.env_steps_per_generation,
                   measure_steps=measure_env_steps(meta), measured=(6,), init_thetas=2)


def test_sweep_shows_one_bar_for_every_arm(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress_mod, "LOG_EVERY_S", 0.0)
    c = cfg(ARGS)
    res = sweep(c, tmp_path / "s", progress=True, report=False)
    lines = _lines(capsys.readouterr().err)
    pct = [_percent(x) for x in lines]
    assert pct == sorted(pct) and pct[-1] == 100.0 and pct.count(100.0) == 1
    assert "100.0 %" in lines[-1] and "ETA 0s" in lines[-1]
    labels = [x for x in lines if "reward given" in x], [x for x in lines if "shuffled" in x]
    assert all(labels)  # both arms on the one bar
    # the learner arm is half the work: it ends at 50 %, where the control starts
    assert max(_percent(x) for x in labels[0]) == 50.0 == min(_percent(x) for x in labels[1])
    assert all(a.groups == 1 for a in res.arms.values())
    assert res.env_steps == 2 * _work(c).total()  # the bar's total is the sweep's work


def test_resumed_sweep_starts_at_the_checkpoints_fraction(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress_mod, "LOG_EVERY_S", 0.0)
    c, out = cfg(ARGS), tmp_path / "s"
    # saves: learner gen 0, gens 2 and 4, group done; control gen 0, gen 2 -> stop
    with pytest.raises(SweepInterrupted):
        sweep(c, out, progress=False, report=False, stop_after=6)
    capsys.readouterr()
    resume_sweep(out, progress=True)
    lines = _lines(capsys.readouterr().err)
    w = _work(c)
    # the first line after the resume: the control's chunk to generation 4 (not measured)
    first = (w.total() + w.done_at(0, 4)) / (2 * w.total())
    assert _percent(lines[0]) == pytest.approx(100 * first, abs=0.051)
    assert "shuffled" in lines[0] and "gen 4/6" in lines[0]
    assert not any("reward given)]" in x for x in lines)  # the learner arm ran before
    assert _percent(lines[-1]) == 100.0
