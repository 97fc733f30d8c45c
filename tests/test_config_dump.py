"""A resolved config lists only what the chosen family, agent and learner read."""

import json

import pytest
from helpers import ANALYTIC, REACHER_TINY

from meta_evo.config import applicable, dump_config, load_config, yaml_load
from meta_evo.errors import RunDirError
from meta_evo.snapshot import check_config


def test_analytic_gru_lists_no_physics_pd_gains_or_es_noise():
    cfg = load_config(None, [*ANALYTIC, "learner.kind=gru"])
    d = yaml_load(dump_config(cfg))
    assert not {"backend", "episode_length", "task_weight", "ctrl_weight"} & set(d["task"])
    assert set(d["agent"]) == {"kind"}  # direct reads no key of its own
    assert "init_noise" not in d["learner"] and {"candidates", "hidden", "reward"} <= set(
        d["learner"])
    assert applicable(_reload(cfg)) == applicable(cfg)


def test_reacher_pd_es_lists_what_it_reads():
    cfg = load_config(None, REACHER_TINY)
    d = yaml_load(dump_config(cfg))
    assert {"backend", "episode_length", "task_weight", "ctrl_weight"} <= set(d["task"])
    assert set(d["agent"]) == {"kind", "kp", "kd"}
    assert {"init_noise", "candidates"} <= set(d["learner"]) and "hidden" not in d["learner"]
    assert _reload(cfg) == cfg  # every key it sets is one it reads


def _reload(cfg):
    from meta_evo.config import config_from_dict
    return config_from_dict(yaml_load(dump_config(cfg)))


def test_a_key_nothing_reads_does_not_block_a_resume():
    cfg = load_config(None, ANALYTIC)
    other = load_config(None, [*ANALYTIC, "agent.kp=3.0", "task.backend=positional"])
    check_config("d", "checkpoint 2", json.loads(json.dumps(other.to_dict())), cfg)
    changed = load_config(None, [*ANALYTIC, "meta.sigma=0.3"])
    with pytest.raises(RunDirError, match="meta.sigma"):
        check_config("d", "checkpoint 2", changed.to_dict(), cfg)
    assert applicable(cfg) == applicable(other)
