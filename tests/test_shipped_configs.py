"""One source for each shipped config: the packaged copy under ``meta_evo/configs/`` (what the
CLI's built-in defaults read after ``pip install``) and its repository twin under ``configs/``
(what the README's commands name) are the same bytes, and both load."""

from pathlib import Path

import pytest

from meta_evo.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TWINS = {"quickstart.yaml": "quickstart.yaml", "sweep_default.yaml": "sweep_default.yaml",
         "sweep_default_gpu.yaml": "reacher_goal_gru.yaml"}


def test_every_packaged_config_has_a_twin():
    assert sorted(p.name for p in (ROOT / "meta_evo" / "configs").glob("*.yaml")) == sorted(TWINS)


@pytest.mark.parametrize("packaged", sorted(TWINS))
def test_packaged_config_equals_its_repository_twin(packaged):
    mine = ROOT / "meta_evo" / "configs" / packaged
    twin = ROOT / "configs" / TWINS[packaged]
    assert mine.read_bytes() == twin.read_bytes(), f"copy {mine} over {twin} (or back)"
    assert load_config(mine) == load_config(twin)
