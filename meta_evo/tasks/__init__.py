"""Task families and their registry."""

from __future__ import annotations

from meta_evo.registry import Registry

from .analytic import Analytic
from .base import POOL_SIZE, BraxFamily, TaskFamily
from .locomotion import AntDir, HalfCheetahVel, HopperVel
from .reacher import ReacherGoal

FAMILIES = Registry("task.family", "env")
"""``build(task_cfg) -> TaskFamily``; each entry's ``cls`` is the family's class."""


def _regions_check(cls, cheap_instance):
    """The family's constraint: ``task.train_region`` and ``sweep.train_regions`` name regions
    it has. Checked without building a Brax env (its regions are class-level facts); the
    analytic family is cheap to build, and its shell depends on its scale."""
    def check(cfg):
        fam = cheap_instance()
        for key, regions in (("task.train_region", (cfg.task.train_region,)),
                             ("sweep.train_regions", cfg.sweep.train_regions)):
            try:
                for region in regions:
                    cls.parse_region(fam, region)
            except (ValueError, TypeError, AttributeError) as e:
                yield f"{key}: {str(e).splitlines()[0]}"
                return
    return check


def _brax(cls):
    FAMILIES.register(
        cls.name, lambda t: cls(backend=t.backend, task_weight=t.task_weight,
                                ctrl_weight=t.ctrl_weight),
        schema=("task.backend", "task.episode_length", "task.task_weight", "task.ctrl_weight"),
        check=_regions_check(cls, lambda: cls.__new__(cls)), cls=cls)


def _analytic_check(cfg):
    yield from _regions_check(Analytic, Analytic)(cfg)
    if cfg.agent.kind != "direct":
        yield "agent.kind: the analytic family takes agent.kind=direct, and only it does"


for _cls in (ReacherGoal, HalfCheetahVel, AntDir, HopperVel):
    _brax(_cls)
FAMILIES.register("analytic", lambda t: Analytic(), check=_analytic_check, cls=Analytic)


def make_family(task_cfg) -> TaskFamily:
    """Build the family named by ``task_cfg.family`` (a TaskConfig)."""
    return FAMILIES.build(task_cfg.family, task_cfg)


__all__ = ["FAMILIES", "POOL_SIZE", "TaskFamily", "BraxFamily", "make_family", "ReacherGoal",
           "HalfCheetahVel", "HopperVel", "AntDir", "Analytic"]
