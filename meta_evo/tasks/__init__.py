"""Task families and their registry."""

from __future__ import annotations

from .analytic import Analytic
from .base import POOL_SIZE, BraxFamily, TaskFamily
from .locomotion import AntDir, HalfCheetahVel, HopperVel
from .reacher import ReacherGoal

FAMILIES = {
    "reacher_goal": ReacherGoal,
    "halfcheetah_vel": HalfCheetahVel,
    "ant_dir": AntDir,
    "hopper_vel": HopperVel,
    "analytic": Analytic,
}


def make_family(task_cfg) -> TaskFamily:
    """Build the family named by ``task_cfg.family`` (a TaskConfig)."""
    cls = FAMILIES[task_cfg.family]
    if cls is Analytic:
        return Analytic()
    return cls(backend=task_cfg.backend, task_weight=task_cfg.task_weight,
               ctrl_weight=task_cfg.ctrl_weight)


__all__ = ["FAMILIES", "POOL_SIZE", "TaskFamily", "BraxFamily", "make_family", "ReacherGoal",
           "HalfCheetahVel", "HopperVel", "AntDir", "Analytic"]
