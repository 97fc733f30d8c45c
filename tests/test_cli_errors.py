"""Property tests: malformed configs and command lines get exit code 2, exactly one line on
stderr, and change no existing file (a finished run directory included).

Every generated input is wrong by construction (an unknown key, a wrong type, an impossible
value, a garbage config file or argv); ``single_run.run`` and ``single_run.resume`` are patched
to fail the test if a CLI call ever gets as far as starting one.
"""

import contextlib
import dataclasses
import hashlib
import io
import os
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta_evo import cli, single_run
from meta_evo.agents import AGENTS
from meta_evo.config import BACKENDS, Config, load_config
from meta_evo.learners import LEARNERS
from meta_evo.strategies import STRATEGIES
from meta_evo.tasks import FAMILIES

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=1",
            "learner.lifetime=2", "learner.candidates=2", "meta.population=4",
            "meta.generations=2", "meta.chunk=2", "log.progress=false"]
COMMANDS = ("run", "resume", "analyze", "sweep", "config")
SETTINGS = settings(max_examples=40, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _schema(cls, prefix=""):
    """Dotted key -> annotation, for every leaf of the config schema."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(_schema(t, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = t
    return out


SCHEMA = _schema(Config)
SECTIONS = {k.split(".")[0] for k in SCHEMA if "." in k}
TOP = {k.split(".")[0] for k in SCHEMA}

# --- workspace: a finished run and other files that must never change -------------------------


def tree_hash(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    single_run.run(load_config(None, ANALYTIC), root / "existing_run")
    (root / "notarun").mkdir()
    (root / "notarun" / "notes.txt").write_text("keep me\n")
    (root / "plain.txt").write_text("a file\n")
    cfgdir = tmp_path_factory.mktemp("cfgs")
    old = os.getcwd()
    os.chdir(root)

    real_run, real_resume = single_run.run, single_run.resume

    def guarded_run(cfg, out=None, **k):  # only ever reached to refuse an existing --out
        if out is None or not os.path.lexists(out):
            raise AssertionError("an invalid input got as far as starting a run")
        return real_run(cfg, out, **k)

    def guarded_resume(run_dir, **k):  # only ever reached to refuse a non-run directory
        if (Path(run_dir) / "config.yaml").is_file():
            raise AssertionError("an invalid input got as far as resuming a run")
        return real_resume(run_dir, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(single_run, "run", guarded_run)
        mp.setattr(single_run, "resume", guarded_resume)
        yield root, cfgdir
    os.chdir(old)


def check_refused(root: Path, argv: list[str]):
    before = tree_hash(root)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse errors exit from inside parse_args
            code = e.code
    text = err.getvalue()
    lines = text.split("\n")[:-1]  # one line = one newline, at the end (no \r either)
    assert code == 2, (argv, code, text)
    assert len(lines) == 1 and text.endswith("\n") and "\r" not in text, (argv, text)
    assert lines[0].startswith("meta-evo: error: "), lines
    assert tree_hash(root) == before, argv


# --- strategies ---------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # argv-like strings
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


def _wrong_values(typ) -> list[str]:
    """YAML texts that do not fit ``typ`` (override values are parsed as YAML)."""
    if typ is bool:
        return ["1", "abc", "[true]", "{a: 1}"]
    if typ is int:
        return ["abc", "1.5", "[1, 2]", "{a: 1}", "true", ".nan", "1e400", "2020-01-01"]
    if typ is float:
        return ["abc", "[1.0]", "{a: 1}", "true", ".nan", ".inf", "-.inf", "1e400"]
    if typ is str:
        return ["[1]", "{a: 1}", "1", "2.5", "true"]
    return ["abc", "{a: 1}", "true", "[abc]", "[[1]]"]  # tuples


wrong_type = st.sampled_from(sorted(SCHEMA)).flatmap(
    lambda k: st.sampled_from(_wrong_values(SCHEMA[k])).map(lambda v: f"{k}={v}"))

IMPOSSIBLE = {
    "meta.population": st.one_of(st.integers(-10**6, 1), st.integers(1, 999).map(
        lambda x: 2 * x + 1)),
    "meta.generations": st.integers(-10**6, 0),
    "meta.chunk": st.integers(-10**6, 0),
    "meta.sigma": st.floats(-1e6, 0.0),
    "meta.pressure": st.one_of(st.floats(-1e6, 0.0), st.floats(1.0001, 1e6)),
    "learner.candidates": st.one_of(st.integers(-10**6, 1), st.integers(1, 999).map(
        lambda x: 2 * x + 1)),
    "learner.init_noise": st.floats(-1e6, 0.0),
    "task.episode_length": st.integers(-10**6, 0),
    "task.diversity": st.one_of(st.integers(-10**6, -1), st.integers(4097, 10**6)),
    "task.tasks_per_member": st.integers(-10**6, 0),
    "checkpoint.every": st.integers(-10**6, 0),
    "checkpoint.keep": st.integers(-10**6, 0),
    "measure.heldout_tasks": st.integers(-10**6, 1),
    "seed": st.integers(-10**6, -1),
    "task.family": IDENT.filter(lambda s: s not in FAMILIES),
    "task.backend": IDENT.filter(lambda s: s not in BACKENDS),
    "agent.kind": IDENT.filter(lambda s: s not in AGENTS),
    "learner.kind": IDENT.filter(lambda s: s not in LEARNERS),
    "meta.strategy": IDENT.filter(lambda s: s not in STRATEGIES),
}
impossible = st.sampled_from(sorted(IMPOSSIBLE)).flatmap(
    lambda k: IMPOSSIBLE[k].map(lambda v: f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}"))

unknown_key = st.one_of(
    IDENT.filter(lambda k: k not in TOP).map(lambda k: f"{k}=1"),
    st.tuples(st.sampled_from(sorted(SECTIONS)), IDENT).filter(
        lambda t: f"{t[0]}.{t[1]}" not in SCHEMA).map(lambda t: f"{t[0]}.{t[1]}=1"),
    st.tuples(TEXT.filter(lambda s: "=" not in s and s.strip()), TEXT).map(
        lambda t: f"{t[0]}.zz_{t[0]}={t[1]}"),
)
malformed = st.sampled_from(["=1", ".=1", "a..b=1", ".meta=1", "meta.=2", "meta.population.x=1",
                             "seed.x=1", "meta=5", "task=[1]", "a b=1"])
bad_override = st.one_of(wrong_type, impossible, unknown_key, malformed)
good_override = st.sampled_from(["seed=3", "meta.generations=2", "meta.chunk=1",
                                 "task.family=analytic", "agent.kind=direct", "log.progress=false"])


@SETTINGS
@given(good=st.lists(good_override, max_size=3), bad=bad_override, pos=st.integers(0, 3),
       out=st.booleans())
def test_bad_overrides(ws, good, bad, pos, out):
    root, _ = ws
    key = bad.split("=")[0]
    args = [g for g in good if g.split("=")[0] != key]  # a later override must not repair it
    args.insert(min(pos, len(args)), bad)
    argv = ["run", *args] + (["--out", str(root / "new_run")] if out else [])
    check_refused(root, argv)


def _yaml_docs():
    scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), TEXT)
    wrong_leaf = st.sampled_from(sorted(SCHEMA)).flatmap(lambda k: st.sampled_from(
        _wrong_values(SCHEMA[k])).map(lambda v: (k, yaml.safe_load(v))))

    def nest(kv):
        k, v = kv
        parts = k.split(".")
        return {parts[0]: v} if len(parts) == 1 else {parts[0]: {parts[1]: v}}

    return st.one_of(
        st.dictionaries(IDENT.filter(lambda k: k not in TOP), scalars, min_size=1).map(
            yaml.safe_dump),
        st.tuples(st.sampled_from(sorted(SECTIONS)), IDENT, scalars).filter(
            lambda t: f"{t[0]}.{t[1]}" not in SCHEMA).map(
            lambda t: yaml.safe_dump({t[0]: {t[1]: t[2]}})),
        wrong_leaf.map(nest).map(yaml.safe_dump),
        st.lists(scalars, min_size=1).map(yaml.safe_dump),  # top level not a mapping
        st.sampled_from(sorted(SECTIONS)).flatmap(
            lambda s: scalars.map(lambda v: yaml.safe_dump({s: v}))),  # a section not a mapping
        st.sampled_from(["a: [1, 2", "meta: {population: 4", "\t- x:\n  - y", "a: b: c",
                         "%YAML 9.9\n---\na: 1", "!!python/object:os.system x", "key: *alias"]),
        st.just("42"), st.just("just some text"),
    )


@SETTINGS
@given(doc=_yaml_docs(), overrides=st.lists(good_override, max_size=2))
def test_malformed_config_files(ws, doc, overrides):
    root, cfgdir = ws
    # an override must not repair the file's error (e.g. meta.chunk=1 over chunk: abc)
    overrides = [o for o in overrides if o.split("=")[0].split(".")[-1] not in doc]
    path = cfgdir / "bad.yaml"
    path.write_text(doc)
    check_refused(root, ["run", str(path), *overrides, "--out", str(root / "new_run")])


def _garbage_argv():
    token = TEXT.filter(lambda t: not (t.startswith("-h") or t == "--version" or (
        t.startswith("--") and len(t) > 2 and "--help".startswith(t))))
    first = token.filter(lambda t: t not in COMMANDS)
    return st.tuples(first, st.lists(token, max_size=4)).map(lambda t: [t[0], *t[1]])


@SETTINGS
@given(argv=_garbage_argv())
def test_garbage_argv(ws, argv):
    root, _ = ws
    check_refused(root, argv)


@SETTINGS
@given(data=st.data())
def test_bad_resume_and_analyze(ws, data):
    root, _ = ws
    run = str(root / "existing_run")
    steps = [0, 2]  # what the existing run kept
    not_a_step = st.integers(-10**6, 10**6).filter(lambda s: s not in steps).map(str)
    not_an_int = TEXT.filter(lambda t: not t.strip().lstrip("+-").isdigit() and
                             not t.startswith("-"))
    missing = TEXT.filter(lambda t: t.strip() and not t.startswith("-")).map(
        lambda t: str(root / "nope" / t))
    argv = data.draw(st.one_of(
        st.just(["resume"]),
        missing.map(lambda p: ["resume", p]),
        st.sampled_from([str(root / "notarun"), str(root / "plain.txt"), str(root)]).map(
            lambda p: ["resume", p]),
        st.just(["resume", run, "extra"]),
        st.just(["resume", run, "--bogus"]),
        st.just(["analyze"]),
        missing.map(lambda p: ["analyze", p]),
        st.just(["analyze", str(root / "notarun")]),
        st.lists(not_a_step, min_size=1, max_size=3).map(
            lambda s: ["analyze", run, "--step", *s]),
        not_an_int.map(lambda s: ["analyze", run, "--step", s]),
        st.just(["analyze", run, "--step"]),
        st.just(["run", "--out", run, "task.family=analytic", "agent.kind=direct"]),
        st.just(["run", "--out", str(root / "plain.txt")]),
        st.just(["run", str(root / "missing.yaml")]),
        st.just(["run", "a.yaml", "b.yaml"]),
    ))
    check_refused(root, argv)


def test_existing_run_still_resumable(ws):
    """The workspace run survived all of the above: a resume of it is a no-op."""
    root, _ = ws
    from meta_evo.run_reader import load_run
    run = load_run(root / "existing_run")
    assert run.steps == [0, 2] and run.summary["generations"] == 2


# --- XLA:CPU flags before jax, on every subcommand -----------------------------------------------

SPY = """
import os, sys
os.environ.pop("XLA_FLAGS", None)
import meta_evo.cpu_flags as cf
real, seen = cf.cpu_workaround, []
def spy():
    seen.append("jax" in sys.modules)
    return real()
cf.cpu_workaround = spy
from meta_evo import cli
code = cli.main(sys.argv[1:])
print(code, seen, os.environ.get("XLA_FLAGS"))
"""


@pytest.mark.parametrize("argv", [
    ["run", "task.bogus=1"], ["sweep", "sweep.bogus=1"], ["resume", "nope"], ["analyze", "nope"],
])
def test_cpu_flags_set_before_jax_is_imported(tmp_path, argv):
    """Every subcommand sets XLA_FLAGS before anything imports jax (``meta-evo resume`` of a
    sweep used to set it after ``meta_evo.single_run`` had started the backend)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    r = subprocess.run([sys.executable, "-c", SPY, *argv], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    code, seen, flags = r.stdout.strip().splitlines()[-1].split(" ", 2)
    assert code == "2", r.stderr
    assert seen == "[False]"  # called once, with jax not yet imported
    assert flags == "--xla_cpu_multi_thread_eigen=false"
