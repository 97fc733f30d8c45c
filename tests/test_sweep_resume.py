"""A sweep stopped between chunks resumes from its per-arm checkpoints to exactly the arrays
an uninterrupted sweep gives; a damaged newest checkpoint falls back to the previous one."""

import numpy as np
import pytest
from helpers import ANALYTIC, cfg

from meta_evo.runs import RunDirError
from meta_evo.sweep import SweepInterrupted, resume_sweep, sweep

C = cfg(ANALYTIC, "meta.generations=6", "meta.chunk=2", "sweep.intensities=[0, 1]",
        "sweep.seeds=2", "sweep.diversities=[1]", "measure.heldout_tasks=3",
        "measure.reference_samples=8", "measure.alignment_samples=4")


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("sw") / "whole"
    sweep(C, out, progress=False)
    return _arrays(out / "sweep.npz")


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("stop_after", [2, 6])  # inside the learner arm; inside the control
def test_resumed_sweep_equals_uninterrupted(tmp_path, whole, stop_after):
    out = tmp_path / "cut"
    with pytest.raises(SweepInterrupted):
        sweep(C, out, progress=False, stop_after=stop_after)
    assert not (out / "report.json").exists()
    resume_sweep(out, progress=False)
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    _same(whole, _arrays(out / "sweep.npz"))
    with pytest.raises(RunDirError, match="finished"):
        resume_sweep(out, progress=False)


def test_damaged_newest_sweep_checkpoint_falls_back(tmp_path, whole, capsys):
    out = tmp_path / "dmg"
    with pytest.raises(SweepInterrupted):
        sweep(C, out, progress=False, stop_after=3)
    newest = out / "sweep_state" / "es.pkl"
    newest.write_bytes(newest.read_bytes()[:20])  # a torn file
    resume_sweep(out, progress=False)
    assert "damaged sweep checkpoint" in capsys.readouterr().err
    _same(whole, _arrays(out / "sweep.npz"))
