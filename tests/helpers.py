"""Small configs shared by the tests: the cheapest settings that still exercise each part."""

from meta_evo.config import load_config

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=2",
            "learner.lifetime=10", "learner.candidates=8", "learner.init_noise=0.3",
            "meta.population=8", "meta.generations=6", "meta.chunk=3", "log.progress=false"]

REACHER_TINY = ["task.family=reacher_goal", "task.backend=spring", "task.episode_length=10",
                "task.tasks_per_member=1", "agent.kind=pd", "learner.lifetime=2",
                "learner.candidates=2", "meta.population=4", "meta.generations=4", "meta.chunk=2",
                "log.progress=false"]


def cfg(base, *extra):
    return load_config(None, [*base, *extra])
