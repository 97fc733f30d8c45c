"""Experiment configuration: frozen dataclasses, YAML loading, dotted overrides, validation.

A config is a tree of frozen dataclasses. ``load_config(path, overrides)`` reads YAML, applies
``section.key=value`` overrides, checks every key and value, and returns a :class:`Config`.
Any problem raises :class:`ConfigError` whose message is one line naming the key and the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config key or value is wrong. ``str(err)`` is one line: ``key: reason``."""


# YAML 1.2 floats that PyYAML's YAML 1.1 reads as strings: an exponent without a dot or without
# a sign (``1e-3``, ``-1.5e2``, ``.5e3``). Config files and override values both go through
# :func:`yaml_load`; :func:`dump_config` quotes a string that would read back as such a float.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader plus YAML 1.2's exponent floats (:data:`_FLOAT_12`)."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that quotes the strings :class:`_Loader` would read as floats."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML as configs are parsed: safe, with YAML 1.2 floats (``1e-3`` is a number)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def did_you_mean(name: str, options) -> str:
    """``"; did you mean 'x'?"`` for the option closest to ``name`` (difflib, ignoring case),
    else ``""``."""
    by_lower = {str(o).lower(): str(o) for o in options}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def schema_keys(cls=None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of the config schema (``meta.population``, ``seed``, ...)."""
    cls = Config if cls is None else cls
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += schema_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


_UNKNOWN_NAME = re.compile(r"unknown [^'\"]*?(?P<q>['\"])(?P<name>.*)(?P=q) "
                           r"\(known: (?P<known>[^()]*)\)$")


def _suggest_name(message: str) -> str:
    """Add a "did you mean" to ``key: unknown <what> 'name' (known: a, b, ...)`` (the
    registries' and :func:`validate`'s message for an unknown name), before ``(known: ...)``."""
    m = _UNKNOWN_NAME.search(message)
    if m is None or "did you mean" in message:
        return message
    hint = did_you_mean(m.group("name"), m.group("known").split(", "))
    if not hint:
        return message
    at = m.start("known") - len("(known: ")
    return f"{message[:at].rstrip()}{hint} {message[at:]}"


@dataclass(frozen=True)
class TaskConfig:
    family: str = "reacher_goal"  # a name in the registry meta_evo.tasks.FAMILIES
    backend: str = "spring"  # brax backend: spring | positional | generalized | mjx
    episode_length: int = 50  # T, environment steps per rollout
    diversity: int = 1  # distinct training tasks (1 = one fixed task; 0 = unlimited draws)
    tasks_per_member: int = 2  # training tasks each meta-member is scored on per generation
    eval_episodes: int = 1  # E, rollouts that score phi_K on a task
    task_seed: int = 1234  # seeds the fixed pool of training tasks
    task_weight: float = 1.0  # weight of the task term in the reward
    ctrl_weight: float = 0.01  # weight of the control cost in the reward
    train_region: str = "none"  # training tasks restricted to a region of the task space
    # (analytic: halfspace | shell[:lo:hi]; reacher_goal: half_disc; locomotion:
    # interval[:lo:hi]); measurement then draws held-out tasks inside and outside it
    outside_share: float = 0.0  # coverage: the probability that a training task (a fresh draw
    # or a pool entry) is drawn from outside train_region instead of inside it


@dataclass(frozen=True)
class AgentConfig:
    kind: str = "pd"  # a name in the registry meta_evo.agents.AGENTS
    hidden: tuple[int, ...] = (16,)  # MLP hidden sizes
    kp: float = 1.0  # PD proportional gain
    kd: float = 0.1  # PD derivative gain


@dataclass(frozen=True)
class LearnerConfig:
    kind: str = "es"  # a name in the registry meta_evo.learners.LEARNERS
    lifetime: int = 8  # K, updates per lifetime (rl2: episodes per lifetime)
    candidates: int = 8  # P, candidates per update (es, learned_es: even, antithetic; gru: >= 1)
    init_noise: float = 0.1  # inner noise scale at meta-init (log of it lives in theta)
    hidden: int = 8  # learned_es, gru, rl2: hidden units of the network
    reward: str = "given"  # what the learner is told: given | shuffled | blind
    fitness: str = "final"  # meta-fitness: final (return of phi_K) | last_half (mean over the
    # proposals of the last half of the lifetime)


@dataclass(frozen=True)
class MetaConfig:
    strategy: str = "Open_ES"  # a name in the registry meta_evo.strategies.STRATEGIES
    population: int = 16  # M, meta-population size
    generations: int = 40  # meta-generations
    sigma: float = 0.1  # meta-ES search scale
    antithetic: bool = True  # Open_ES mirrored sampling (needs an even population); false gives
    # iid members, for which the response to selection is exactly sigma * intensity
    selection: str = "truncation"  # truncation (pressure = elite fraction) | boltzmann (beta)
    pressure: float = 0.25  # elite fraction (truncation) or beta (boltzmann)
    chunk: int = 10  # generations per jitted chunk (progress, logs, checkpoints between)


@dataclass(frozen=True)
class MeasureConfig:
    heldout_tasks: int = 6  # n, held-out tasks of the cross-task matrix
    reference_samples: int = 64  # draws from the agent initializer for optimization power
    alignment_samples: int = 16  # candidates of the ES gradient estimate for update alignment
    alignment_noise: float = 0.05  # noise scale of that estimate
    proxies: bool = True  # add the family's proxy objectives as extra matrix columns
    seed: int = 99  # held-out task draw
    pool_tasks: int = 6  # rows of the training-pool cross-task matrix (identification test)
    bayes_noise: float = 0.1  # observation-noise scale of the Bayes references' likelihood
    # (which algorithm: pool-Bayes and prior-Bayes estimates of each row's task)


@dataclass(frozen=True)
class SweepConfig:
    intensities: tuple[float, ...] = (0.0, 0.4, 0.8, 1.2, 1.6)  # selection intensity levels
    seeds: int = 3
    diversities: tuple[int, ...] = (1, 0)  # task diversity levels (0 = unlimited)
    control: str = "shuffled"  # the control arm: the same learner with reward shuffled | blind,
    # or the amortized learner, or none
    measure_every: int = 0  # also measure at every N generations (0 = only at the end)
    memory_budget_mb: int = 4096  # grid points run in chunks that fit this budget
    primary_metric: str = "objective_sensitivity"  # the one onset test at alpha (a kernel
    # scalar of meta_evo.measure.SCALARS or a key of the learner's describe); the others are
    # Holm-adjusted and labelled exploratory
    train_regions: tuple[str, ...] = ()  # a region axis: one sweep per task.train_region, in
    # RUN_DIR/region-<name>/, with a parent report side by side (empty: task.train_region only)
    reference: str = "auto"  # the reference arm of a shift experiment: unrestricted (the same
    # learner, keys and compute evolved on the whole task distribution) | none; auto =
    # unrestricted when task.train_region is set, none otherwise
    outside_shares: tuple[float, ...] = ()  # a coverage axis: one sweep per task.outside_share,
    # in RUN_DIR/coverage-<q>/, with a parent report of the verdict against q


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 10  # generations between checkpoints (rounded up to a chunk boundary)
    keep: int = 3  # checkpoints kept (the newest ones)


@dataclass(frozen=True)
class LogConfig:
    tensorboard: bool = False  # TensorBoard event files under RUN_DIR/tb/ (meta_evo.tracking)
    wandb: bool = False  # Weights & Biases (pip install wandb; project $WANDB_PROJECT)
    progress: bool = True  # the progress line on stderr (meta_evo.progress)


@dataclass(frozen=True)
class Config:
    seed: int = 0
    task: TaskConfig = field(default_factory=TaskConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        return to_dict(self)

    def replace(self, **kw) -> Config:
        return dataclasses.replace(self, **kw)


# names without a registry of their own; families, agents, learners and strategies are named
# by their registries (see registries() and meta_evo.registry)
BACKENDS = ("spring", "positional", "generalized", "mjx")
SELECTIONS = ("truncation", "boltzmann")
FITNESS = ("final", "last_half")
CONTROLS = ("shuffled", "blind", "amortized", "none")
REFERENCES = ("auto", "unrestricted", "none")


def to_dict(cfg) -> dict:
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check ``value`` against the annotation ``typ`` and return it in canonical form."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        (elem, _) = typing.get_args(typ)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, elem) for i, v in enumerate(value))
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {typ}")  # pragma: no cover


def _build(cls, data: Any, prefix: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            where = f"{prefix}.{k}" if prefix else str(k)
            # a near miss among this section's keys, or the same key in another section
            siblings = [f"{prefix}.{n}" if prefix else n for n in sorted(names)]
            close = difflib.get_close_matches(where, siblings, n=1, cutoff=0.6) or \
                difflib.get_close_matches(where, schema_keys(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where}: unknown key{hint} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            kwargs[f.name] = _build(typ, data[f.name], key)
        else:
            kwargs[f.name] = _coerce(key, data[f.name], typ)
    return cls(**kwargs)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``a.b=value`` overrides (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{item}: override must look like section.key=value")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        if not all(parts):
            raise ConfigError(f"{path}: malformed key")
        node = data
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: {p} is not a section")
            node = child
        node[parts[-1]] = _parse_scalar(text)
    return data


def registries() -> dict:
    """The registries that name what a config selects: dotted key -> Registry. Imported late:
    they live next to what they build (families import brax, learners jax and flax)."""
    from meta_evo.agents import AGENTS
    from meta_evo.learners import LEARNERS
    from meta_evo.strategies import STRATEGIES
    from meta_evo.tasks import FAMILIES

    return {reg.key: reg for reg in (FAMILIES, AGENTS, LEARNERS, STRATEGIES)}


def _need(cond: bool, key: str, why: str) -> None:
    """Raise ``ConfigError("key: why")`` unless ``cond``: the first failed check wins."""
    if not cond:
        raise ConfigError(f"{key}: {why}")


def _known(name, options) -> str:
    return f"unknown {name} (known: {', '.join(options)})"


def _entry(regs: dict, cfg: Config, key: str, name: str) -> None:
    """The registry's one-line problems for ``name`` (unknown, or its constraints)."""
    problems = regs[key].problems(cfg, name)
    if problems:
        raise ConfigError(problems[0])


def _regional(cfg: Config) -> bool:
    """Whether the config trains in a region (its own, or the sweep's child regions)."""
    return cfg.task.train_region != "none" or bool(cfg.sweep.train_regions)


def _check_task(cfg: Config, regs: dict) -> None:
    """task.* (the family through its registry) and the sweep's region and coverage axes."""
    t, sw = cfg.task, cfg.sweep
    _need(t.backend in BACKENDS, "task.backend", _known(f"backend {t.backend!r}", BACKENDS))
    _need(t.episode_length >= 1, "task.episode_length", f"must be >= 1, got {t.episode_length}")
    _need(t.diversity >= 0, "task.diversity", f"must be >= 0 (0 = unlimited), got {t.diversity}")
    _need(t.diversity <= 4096, "task.diversity", f"must be <= 4096, got {t.diversity}")
    _need(t.tasks_per_member >= 1, "task.tasks_per_member", "must be >= 1")
    _need(t.eval_episodes >= 1, "task.eval_episodes", "must be >= 1")
    _need(t.task_weight > 0, "task.task_weight", "must be > 0")
    _need(t.ctrl_weight >= 0, "task.ctrl_weight", "must be >= 0")
    _need(len(set(sw.train_regions)) == len(sw.train_regions), "sweep.train_regions",
          "each region at most once")
    _entry(regs, cfg, "task.family", t.family)  # also checks the region names against the family
    _check_regions(cfg)


def _check_regions(cfg: Config) -> None:
    """Coverage (task.outside_share, sweep.outside_shares) and the reference arm, which need a
    training region."""
    t, sw = cfg.task, cfg.sweep
    regional = _regional(cfg)
    _need(0.0 <= t.outside_share <= 1.0, "task.outside_share",
          f"must be in [0, 1], got {t.outside_share}")
    _need(t.outside_share == 0.0 or regional, "task.outside_share",
          "needs task.train_region (coverage is the share drawn outside a region)")
    _need(sw.reference in REFERENCES, "sweep.reference",
          _known(f"reference {sw.reference!r}", REFERENCES))
    _need(sw.reference != "unrestricted" or regional, "sweep.reference",
          "needs task.train_region (the reference is evolved without the region)")
    _need(all(0.0 <= q <= 1.0 for q in sw.outside_shares), "sweep.outside_shares",
          "each share must be in [0, 1]")
    _need(len(set(sw.outside_shares)) == len(sw.outside_shares), "sweep.outside_shares",
          "each share at most once")
    _need(not sw.outside_shares or regional, "sweep.outside_shares",
          "needs task.train_region (coverage is the share drawn outside a region)")
    _need(not (sw.outside_shares and sw.train_regions), "sweep.outside_shares",
          "cannot be combined with sweep.train_regions (one axis of child sweeps at a time)")


def _check_agent_learner(cfg: Config, regs: dict, reward_channels) -> None:
    """agent.* and learner.* (kinds through their registries) and sweep.control."""
    a, lr, sw = cfg.agent, cfg.learner, cfg.sweep
    _need(all(h >= 1 for h in a.hidden), "agent.hidden", "sizes must be >= 1")
    _entry(regs, cfg, "agent.kind", a.kind)
    _need(lr.lifetime >= 0, "learner.lifetime", f"must be >= 0, got {lr.lifetime}")
    _need(lr.reward in reward_channels, "learner.reward",
          _known(f"reward channel {lr.reward!r}", reward_channels))
    _need(lr.fitness in FITNESS, "learner.fitness", _known(f"fitness {lr.fitness!r}", FITNESS))
    _need(lr.init_noise > 0, "learner.init_noise", "must be > 0")
    _need(lr.hidden >= 1, "learner.hidden", "must be >= 1")
    _need(sw.control in CONTROLS, "sweep.control", _known(f"control {sw.control!r}", CONTROLS))
    _entry(regs, cfg, "learner.kind", lr.kind)


def _check_limits(cfg: Config) -> None:
    """Upper bounds on sizes, checked before the strategy's registry entry."""
    t, lr, m, ms, sw = cfg.task, cfg.learner, cfg.meta, cfg.measure, cfg.sweep
    _need(m.population >= 2, "meta.population", f"must be >= 2, got {m.population}")
    _need(m.population <= 1 << 20, "meta.population", f"must be <= 2^20, got {m.population}")
    _need(m.generations <= 10_000_000, "meta.generations", "must be <= 1e7")
    _need(lr.lifetime <= 100_000, "learner.lifetime", "must be <= 1e5")
    _need(lr.candidates <= 1 << 16, "learner.candidates", "must be <= 65536")
    _need(t.episode_length <= 100_000, "task.episode_length", "must be <= 1e5")
    _need(t.tasks_per_member <= 4096, "task.tasks_per_member", "must be <= 4096")
    _need(t.eval_episodes <= 4096, "task.eval_episodes", "must be <= 4096")
    _need(ms.heldout_tasks <= 4096, "measure.heldout_tasks", "must be <= 4096")
    _need(ms.reference_samples <= 1 << 16, "measure.reference_samples", "must be <= 65536")
    _need(sw.seeds <= 4096, "sweep.seeds", "must be <= 4096")


def _check_meta(cfg: Config, regs: dict) -> None:
    """meta.* (the strategy through its registry; pressure read by the selection)."""
    m = cfg.meta
    _entry(regs, cfg, "meta.strategy", m.strategy)
    _need(m.generations >= 1, "meta.generations", f"must be >= 1, got {m.generations}")
    _need(m.sigma > 0, "meta.sigma", f"must be > 0, got {m.sigma}")
    _need(m.selection in SELECTIONS, "meta.selection",
          _known(f"selection {m.selection!r}", SELECTIONS))
    if m.selection == "truncation":
        _need(0 < m.pressure <= 1, "meta.pressure",
              f"elite fraction must be in (0, 1], got {m.pressure}")
    else:
        _need(m.pressure >= 0, "meta.pressure",
              f"boltzmann beta must be >= 0, got {m.pressure}")
    _need(m.chunk >= 1, "meta.chunk", "must be >= 1")


def _check_measure(cfg: Config) -> None:
    ms = cfg.measure
    _need(ms.heldout_tasks >= 2, "measure.heldout_tasks", "must be >= 2")
    _need(2 <= ms.pool_tasks <= 4096, "measure.pool_tasks", "must be in [2, 4096]")
    _need(ms.reference_samples >= 2, "measure.reference_samples", "must be >= 2")
    _need(ms.alignment_samples >= 2 and ms.alignment_samples % 2 == 0,
          "measure.alignment_samples", "must be even and >= 2")
    _need(ms.alignment_noise > 0, "measure.alignment_noise", "must be > 0")
    _need(ms.bayes_noise > 0, "measure.bayes_noise", "must be > 0")


def _check_sweep(cfg: Config) -> None:
    """sweep.* levels, seeds and budgets (sweep.primary_metric: :func:`_check_primary_metric`)."""
    sw = cfg.sweep
    _need(len(sw.intensities) >= 1, "sweep.intensities", "needs at least one level")
    _need(all(i >= 0 for i in sw.intensities), "sweep.intensities", "must be >= 0")
    _need(list(sw.intensities) == sorted(sw.intensities), "sweep.intensities",
          "must be ascending")
    _need(sw.seeds >= 1, "sweep.seeds", "must be >= 1")
    _need(len(sw.diversities) >= 1 and all(d >= 0 for d in sw.diversities), "sweep.diversities",
          "needs at least one level, each >= 0")
    _need(sw.measure_every >= 0, "sweep.measure_every", "must be >= 0")
    _need(sw.memory_budget_mb >= 1, "sweep.memory_budget_mb", "must be >= 1")


def _check_primary_metric(cfg: Config) -> None:
    """sweep.primary_metric: a measurement scalar, or a key of the learner's ``describe``."""
    from meta_evo.measure import SCALARS  # late import: measure imports jax

    sw = cfg.sweep
    if sw.primary_metric in SCALARS:
        return
    # else a describe key: build the learner to see
    import jax

    from meta_evo.agents import make_agent
    from meta_evo.learners import make_learner
    from meta_evo.tasks import make_family

    t, a, lr = cfg.task, cfg.agent, cfg.learner
    fam = make_family(t)
    lrn = make_learner(lr, make_agent(a, fam), a, family=fam, episode_length=t.episode_length)
    shape = jax.ShapeDtypeStruct((lrn.theta_size,), jax.numpy.float32)
    described = tuple(jax.eval_shape(lrn.describe, shape))
    _need(sw.primary_metric in described, "sweep.primary_metric",
          _known(f"metric {sw.primary_metric!r}", SCALARS + described))


def _check_run(cfg: Config) -> None:
    """checkpoint.*, seed and log.wandb."""
    _need(cfg.checkpoint.every >= 1, "checkpoint.every", "must be >= 1")
    _need(cfg.checkpoint.keep >= 1, "checkpoint.keep", "must be >= 1")
    _need(cfg.seed >= 0, "seed", "must be >= 0")
    if cfg.log.wandb:  # not a dependency: refused here, not at the end of a run
        check_wandb()


def validate(cfg: Config) -> Config:
    """Check values that types alone do not catch. Raises ConfigError naming the key.

    The names of families, agents, learners and strategies, and each one's own constraints,
    come from their registries (:func:`registries`); the checks here are the generic ones.
    The first failed check raises; the sections run in this order (their checks interleave
    with the registry entries, so each registry sees the values checked before it)."""
    from meta_evo.learners import REWARD_CHANNELS

    regs = registries()
    _check_task(cfg, regs)
    _check_agent_learner(cfg, regs, REWARD_CHANNELS)
    _check_limits(cfg)
    _check_meta(cfg, regs)
    _check_measure(cfg)
    _check_sweep(cfg)
    _check_primary_metric(cfg)
    _check_run(cfg)
    return cfg


def wandb_installed() -> bool:
    """Whether ``import wandb`` can work (a module put in ``sys.modules`` counts)."""
    import importlib.util
    import sys

    if "wandb" in sys.modules:
        return sys.modules["wandb"] is not None
    return importlib.util.find_spec("wandb") is not None


def check_wandb() -> None:
    """ConfigError (one line) when ``log.wandb`` is asked for and wandb is not installed (it is
    not a dependency); imports nothing."""
    if not wandb_installed():
        raise ConfigError("log.wandb: wandb is not installed (pip install wandb, or set "
                          "log.wandb=false)")


def builtin_config_path(name: str) -> Path:
    """Path of a config shipped inside the package (``quickstart``, ``sweep_default``)."""
    ref = importlib.resources.files("meta_evo") / "configs" / f"{name}.yaml"
    return Path(str(ref))


def config_from_dict(data: dict) -> Config:
    cfg = _build(Config, data, "")
    try:
        return validate(cfg)
    except ConfigError as e:  # an unknown name: add the closest known one
        raise ConfigError(_suggest_name(str(e))) from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                default: str = "quickstart") -> Config:
    """Load a YAML config (or the built-in ``default``), apply overrides, validate.

    Raises ConfigError (one line) on a missing file, bad YAML, unknown key or bad value.
    """
    p = Path(path) if path is not None else builtin_config_path(default)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml_load(p.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise ConfigError(f"{p}: invalid YAML ({first})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    apply_overrides(data, list(overrides))
    return config_from_dict(data)


def applicable(cfg: Config) -> dict:
    """``cfg.to_dict()`` without the keys that only other families, agents or learners read
    (each registry entry lists the keys it reads, its schema): what ``config.yaml`` and
    ``meta-evo config`` show, and what a resume compares. Loading it back gives ``cfg`` with
    the dropped keys at their defaults: the same run, since nothing chosen reads them."""
    scoped, read = set(), set()
    for key, reg in registries().items():
        for name in reg:
            scoped |= set(reg.entry(name).schema)
        section, leaf = key.split(".")
        read |= set(reg.entry(getattr(getattr(cfg, section), leaf)).schema)
    out = to_dict(cfg)
    for key in scoped - read:
        section, leaf = key.split(".")
        out[section].pop(leaf, None)
    return out


def dump_config(cfg: Config) -> str:
    """The YAML of :func:`applicable`."""
    return yaml.dump(applicable(cfg), Dumper=_Dumper, sort_keys=False)


def read_run_config(run_dir: Path) -> Config:
    """The config of an existing run directory; RunDirError (one line) when there is none."""
    from meta_evo.errors import RunDirError

    try:
        is_dir, has_cfg = run_dir.is_dir(), (run_dir / "config.yaml").is_file()
    except (OSError, ValueError) as e:  # e.g. a NUL byte or an unencodable name
        raise RunDirError(f"{str(run_dir)!r}: not a usable path ({e})") from None
    if not is_dir:
        raise RunDirError(f"{run_dir}: no such run directory")
    if not has_cfg:
        raise RunDirError(f"{run_dir}: not a run directory (no config.yaml)")
    return load_config(run_dir / "config.yaml")


def write_config(out: Path, cfg: Config) -> None:
    """``out/config.yaml``: the resolved config, written atomically."""
    from meta_evo.rundir.io import write_text

    write_text(out / "config.yaml", dump_config(cfg))
