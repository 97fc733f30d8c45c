"""The registries are the one list of families, agents, learners and strategies: every name
builds, an unknown name is one line naming the key and the known names, and the config accepts
exactly the registries' names (a name added to a registry is accepted, with no second list)."""

import dataclasses
import subprocess
import sys
import typing

import jax
import pytest

from meta_evo.agents import AGENTS, make_agent
from meta_evo.config import (
    AgentConfig,
    Config,
    ConfigError,
    LearnerConfig,
    TaskConfig,
    config_from_dict,
    load_config,
    registries,
    validate,
)
from meta_evo.learners import LEARNERS, Learner, make_learner
from meta_evo.registry import Registry
from meta_evo.strategies import STRATEGIES, TELL_SIGN, make_strategy
from meta_evo.tasks import FAMILIES, BraxFamily, TaskFamily, make_family

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "learner.candidates=2",
            "meta.population=4"]
REGS = {"task.family": FAMILIES, "agent.kind": AGENTS, "learner.kind": LEARNERS,
        "meta.strategy": STRATEGIES}
# a config that each name is valid in, for the names whose defaults do not fit
SETTING = {
    ("task.family", "analytic"): ANALYTIC,
    ("task.family", "halfcheetah_vel"): ["task.family=halfcheetah_vel", "agent.kind=mlp"],
    ("task.family", "ant_dir"): ["task.family=ant_dir", "agent.kind=mlp"],
    ("task.family", "hopper_vel"): ["task.family=hopper_vel", "agent.kind=mlp"],
    ("agent.kind", "direct"): ANALYTIC,
    ("learner.kind", "amortized"): ["learner.kind=amortized", "sweep.control=amortized"],
}


def _leaves(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    out = set()
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _leaves(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
    return out


def test_config_names_its_registries():
    assert registries() == REGS
    for key, reg in REGS.items():
        assert isinstance(reg, Registry) and reg.key == key and len(reg) >= 1


def test_every_schema_key_is_a_config_key():
    keys = _leaves(Config)
    for reg in REGS.values():
        for name, entry in reg.items():
            assert entry.name == name
            assert set(entry.schema) <= keys, (reg.key, name, set(entry.schema) - keys)


@pytest.mark.parametrize("key,name", [(k, n) for k, r in REGS.items() for n in r])
def test_every_name_is_accepted_by_the_config(key, name):
    cfg = load_config(None, [*SETTING.get((key, name), []), f"{key}={name}"])
    section, field = key.split(".")
    assert getattr(getattr(cfg, section), field) == name


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_builds(name):
    fam = make_family(TaskConfig(family=name))
    assert isinstance(fam, TaskFamily) and fam.name == name
    assert isinstance(fam, FAMILIES[name].extra["cls"])
    assert isinstance(fam, BraxFamily) == (name != "analytic")


@pytest.mark.parametrize("name", list(AGENTS))
def test_every_agent_builds(name):
    family = "analytic" if name == "direct" else "reacher_goal"
    fam = make_family(TaskConfig(family=family))
    agent = make_agent(AgentConfig(kind=name), fam)
    phi = agent.init(jax.random.PRNGKey(0))
    assert agent.kind == name and phi.shape == (agent.num_params,)


@pytest.mark.parametrize("name", list(LEARNERS))
def test_every_learner_builds(name):
    family = "reacher_goal" if name == "rl2" else "analytic"
    fam = make_family(TaskConfig(family=family))
    agent_cfg = AgentConfig(kind="pd" if name == "rl2" else "direct")
    agent = make_agent(agent_cfg, fam)
    lcfg = LearnerConfig(kind=name, lifetime=2, candidates=2, hidden=4, reward="shuffled")
    lrn = make_learner(lcfg, agent, agent_cfg, family=fam, episode_length=5)
    assert lrn.name == name and lrn.reward == "shuffled" and lrn.theta_size >= 1
    if name != "rl2":  # rl2 acts in the env: it is no phi Learner
        assert isinstance(lrn, Learner)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_builds_with_its_tell_sign(name):
    es, params = make_strategy(name, 4, 3, 0.1)
    state = es.init(jax.random.PRNGKey(0), jax.numpy.zeros(3), params)
    pop, _ = es.ask(jax.random.PRNGKey(1), state, params)
    assert pop.shape == (4, 3)
    assert TELL_SIGN[name] == STRATEGIES[name].extra["tell_sign"] in (-1.0, 1.0)
    assert set(TELL_SIGN) == set(STRATEGIES)


@pytest.mark.parametrize("key", list(REGS))
def test_unknown_name_is_one_line_naming_key_and_known_names(key):
    reg = REGS[key]
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"{key}=nosuch"])
    msg = str(e.value)
    assert msg == reg.unknown("nosuch")
    assert msg.startswith(f"{key}: unknown ") and "'nosuch'" in msg and "\n" not in msg
    assert msg.endswith(f"(known: {', '.join(reg)})")
    with pytest.raises(ValueError) as e:  # the constructors say the same outside the config
        reg.build("nosuch")
    assert str(e.value) == msg


def test_make_functions_refuse_unknown_names_naming_the_key():
    with pytest.raises(ValueError, match=r"^task\.family: unknown env 'x' \(known: "):
        make_family(TaskConfig(family="x"))
    fam = make_family(TaskConfig(family="analytic"))
    with pytest.raises(ValueError, match=r"^agent\.kind: unknown agent 'x' \(known: "):
        make_agent(AgentConfig(kind="x"), fam)
    with pytest.raises(ValueError, match=r"^meta\.strategy: unknown strategy 'x' \(known: "):
        make_strategy("x", 4, 3, 0.1)


def _dummy_learner(c, agent, *, phi_init, **_):
    return LEARNERS["amortized"].build(c, agent, phi_init=phi_init)


def _dummy_check(cfg):
    if cfg.learner.hidden != 3:
        yield "learner.hidden: the dummy learner takes 3 units"


@pytest.fixture
def dummy():
    """A learner registered for one test only."""
    LEARNERS.register("dummy", _dummy_learner, schema=("learner.lifetime",),
                      check=_dummy_check)
    try:
        yield
    finally:
        LEARNERS.unregister("dummy")
    assert "dummy" not in LEARNERS


def test_a_registered_name_is_accepted_with_no_second_list(dummy):
    base = {"task": {"family": "analytic"}, "agent": {"kind": "direct"},
            "meta": {"population": 4}}
    cfg = config_from_dict({**base, "learner": {"kind": "dummy", "hidden": 3}})
    assert cfg.learner.kind == "dummy"
    # its own constraint is checked, as the registered ones' are
    with pytest.raises(ConfigError, match=r"^learner\.hidden: the dummy learner takes 3"):
        config_from_dict({**base, "learner": {"kind": "dummy"}})
    # and the unknown-name message lists it
    with pytest.raises(ConfigError, match=r"known: amortized, .*, rl2, dummy\)$"):
        config_from_dict({**base, "learner": {"kind": "nosuch"}})
    fam = make_family(cfg.task)
    agent = make_agent(cfg.agent, fam)
    assert make_learner(cfg.learner, agent, cfg.agent).name == "amortized"


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match=r"^learner\.kind: 'es' is registered twice"):
        LEARNERS.register("es", _dummy_learner)


# each entry's own constraint catches its own bad input (a one-line message naming the key)
OWN = [
    ("es", ["learner.candidates=3"], "learner.candidates: must be even"),
    ("es", ["learner.candidates=0"], "learner.candidates: must be >= 2"),
    ("es", ["learner.lifetime=0"], "learner.lifetime: must be >= 1 for a learner that updates"),
    ("learned_es", ["learner.kind=learned_es", "learner.candidates=5"],
     "learner.candidates: must be even"),
    ("gru", ["learner.kind=gru", "learner.candidates=0"],
     "learner.candidates: the gru learner needs >= 1"),
    ("gru", ["learner.kind=gru", "learner.lifetime=0"], "learner.lifetime: must be >= 1"),
    ("rl2", ["learner.kind=rl2", "learner.fitness=last_half"],
     "learner.fitness: rl2 is scored on its final episode"),
    ("rl2", [*ANALYTIC, "learner.kind=rl2"], "learner.kind: rl2 acts in a Brax env"),
    ("amortized", ["learner.kind=amortized", "sweep.control=blind"],
     "sweep.control: the amortized learner has no reward channel to blind"),
    ("pd", ["task.family=hopper_vel"], "agent.kind: the pd agent exists for reacher_goal only"),
    ("direct", ["agent.kind=direct"], "agent.kind: the analytic family takes agent.kind=direct"),
    ("analytic", ["task.family=analytic", "agent.kind=mlp"],
     "agent.kind: the analytic family takes agent.kind=direct"),
    ("reacher_goal", ["task.train_region=shell"], "task.train_region: reacher_goal: unknown"),
    ("Open_ES", ["meta.population=5"], "meta.population: must be even for antithetic"),
]


@pytest.mark.parametrize("name,overrides,message", OWN, ids=[f"{n}:{o[-1]}" for n, o, _ in OWN])
def test_each_entry_constraint_catches_its_own_bad_input(name, overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    # and it is that entry's constraint that says so
    reg = next(r for r in REGS.values() if name in r)
    problems = reg.problems(_override(load_config(), overrides), name)
    assert problems and problems[0].startswith(message)


def _override(cfg, overrides):
    """``cfg`` with dotted overrides applied, unvalidated (to ask one registry alone)."""
    from meta_evo.config import _build, apply_overrides
    return _build(Config, apply_overrides(cfg.to_dict(), overrides), "")


def test_open_es_allows_odd_population_without_antithetic_and_others_always():
    load_config(None, ["meta.population=5", "meta.antithetic=false"])
    load_config(None, ["meta.population=5", "meta.strategy=SNES"])


def test_validate_passes_the_shipped_default():
    assert validate(load_config()) == load_config()


def test_importing_config_and_registry_stays_cheap():
    """``import meta_evo.config`` (and the registry mechanism) pulls in no jax, brax or flax:
    the registries are imported late, inside validate."""
    code = ("import sys, meta_evo.config, meta_evo.registry; "
            "print(sorted(m for m in ('jax', 'brax', 'flax', 'evosax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "[]"


def test_the_pd_agent_owns_its_meta_init():
    """The learners start phi_0 at the agent's ``meta_init`` (PD: zero angles), with no list of
    agent kinds in the learners."""
    fam = make_family(TaskConfig(family="reacher_goal"))
    agent_cfg = AgentConfig(kind="pd")
    agent = make_agent(agent_cfg, fam)
    lrn = make_learner(LearnerConfig(kind="amortized"), agent, agent_cfg)
    assert (lrn.init_theta(jax.random.PRNGKey(3)) == 0).all()
    mlp = make_agent(AgentConfig(kind="mlp"), fam)
    assert not hasattr(mlp, "meta_init")
