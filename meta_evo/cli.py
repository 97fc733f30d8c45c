"""``meta-evo``: the command line, one handler per subcommand (:data:`COMMANDS`).

Every user error (bad config, bad argument, existing run directory, a directory another process
is writing) is one line on stderr and exit code 2; nothing is created or overwritten. Before
anything imports jax, :func:`main` sets the XLA:CPU flags (:mod:`meta_evo.cpu_flags`) and
silences known third-party warnings a user can do nothing about (:func:`quiet_third_party`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2
# (category, message regex, module regex) of third-party warnings that are noise to a user of
# the command line: Brax's "not actively being maintained" notice (raised when it loads a
# model), its use of deprecated MuJoCo fields (ncon, contact), and JAXopt's deprecation on
# import (brax imports jaxopt).
THIRD_PARTY_WARNINGS = (
    (UserWarning, r"Brax System, piplines and environments are not actively", r"brax(\.|$)"),
    (DeprecationWarning, r"Accessing `(ncon|contact)` directly from `Data` is deprecated",
     r"brax(\.|$)"),
    (DeprecationWarning, r"JAXopt is no longer maintained", r"jaxopt(\.|$)"),
)


def quiet_third_party() -> None:
    """Ignore :data:`THIRD_PARTY_WARNINGS` (before brax or jaxopt is imported)."""
    for category, message, module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        m = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", str(message))
        if m:  # an unknown subcommand: the closest one
            from meta_evo.config import did_you_mean

            message += did_you_mean(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        sys.stderr.write(f"meta-evo: error: {_one_line(message)}\n")
        raise SystemExit(EXIT_USAGE)


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with options and positionals in any order: ``run CONFIG --out DIR
    key=value`` as well as ``run --out DIR CONFIG key=value``. A subcommand's ``args``
    positional takes its first run of positionals; argparse hands back the later ones as
    unrecognized, and they are appended in order (an override given later still wins).
    Unknown options stay errors (with the closest option of the subcommand)."""
    ns, extra = parser.parse_known_args(argv)
    if extra and hasattr(ns, "args") and not any(e.startswith("-") for e in extra):
        ns.args = [*(ns.args or []), *extra]
    elif extra:
        hint = ""
        opts = [o for a in getattr(parser, "_meta_evo_sub", {}).get(ns.command, ())
                for o in a.option_strings if o.startswith("--")]
        bad = next((e.split("=", 1)[0] for e in extra if e.startswith("--")), None)
        if bad is not None and opts:
            from meta_evo.config import did_you_mean

            hint = did_you_mean(bad, opts)
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return ns


def _split(args: list[str]) -> tuple[str | None, list[str]]:
    """First positional that is not ``key=value`` is the config path; the rest are overrides."""
    config, overrides = None, []
    for a in args:
        if "=" in a:
            overrides.append(a)
        elif config is None:
            config = a
        else:
            raise _UsageError(f"unexpected argument {a!r} (overrides look like key=value)")
    return config, overrides


class _UsageError(Exception):
    pass


def _one_line(message) -> str:
    """User text (paths, keys) may hold newlines: escape them so an error stays one line."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def build_parser() -> argparse.ArgumentParser:
    from meta_evo.provenance import meta_evo_version

    p = _Parser(prog="meta-evo", allow_abbrev=False,
                description="Meta-evolve base optimizers on Brax physics and measure when they "
                "become learned optimizers. Options and CONFIG/key=value arguments may come in "
                "any order.")
    p.add_argument("--version", action="version", version=f"meta-evo {meta_evo_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    dry = ("print what would run (env steps, grid points, groups, memory per group, an "
           "estimated wall time on this platform) and exit; compiles no program and "
           "writes nothing")
    r = sub.add_parser("run", help="run one meta-evolution (default: configs/quickstart.yaml)")
    r.add_argument("args", nargs="*", metavar="[CONFIG] [key=value ...]")
    r.add_argument("--out", help="run directory to create (must not exist)")
    r.add_argument("--quiet", action="store_true", help="no progress line")
    r.add_argument("--dry-run", action="store_true", help=dry)
    rs = sub.add_parser("resume", help="continue a killed or interrupted run from its latest "
                        "good checkpoint (exit 130/143 if interrupted again)")
    rs.add_argument("run_dir", metavar="RUN_DIR")
    rs.add_argument("--quiet", action="store_true", help="no progress line")
    an = sub.add_parser("analyze", help="rerun the measurement kernels on a run's checkpoints; "
                        "writes RUN_DIR/analysis.json and RUN_DIR/analysis/*.png")
    an.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    # read as text, so that RUN_DIR may follow the steps (``--step 2 4 RUN_DIR``): _analyze_args
    an.add_argument("--step", nargs="+", action="extend", metavar="N",
                    help="checkpoint generations to analyze (default: all kept checkpoints)")
    an.add_argument("--reference", metavar="REF_RUN_DIR",
                    help="a run of the same learner evolved without the training region: its "
                    "out-of-region statistics beside this run's (which objective)")
    an.add_argument("--quiet", action="store_true", help="no progress output")
    sw = sub.add_parser("sweep", help="sweep selection pressure (x seeds x task diversity) with "
                        "a reward-channel control arm; writes report.json, report.md and plots "
                        "(default by platform: on CPU the analytic gru sweep, ~5 min on 2 cores; "
                        "on an accelerator the Brax reacher_goal gru sweep)")
    sw.add_argument("args", nargs="*", metavar="[CONFIG] [key=value ...]")
    sw.add_argument("--out", help="run directory to create (must not exist, unless "
                    "--resume-if-exists)")
    sw.add_argument("--quiet", action="store_true", help="no progress line")
    sw.add_argument("--dry-run", action="store_true", help=dry)
    sw.add_argument("--resume-if-exists", action="store_true",
                    help="start or resume (for cluster jobs that may be requeued): start the "
                    "sweep when --out does not exist, resume it when it is an unfinished sweep "
                    "of the same config, do nothing (exit 0) when it has finished")
    c = sub.add_parser("config", help="print the fully resolved config (YAML, as run or sweep "
                       "would use it, defaults filled in) and exit; writes nothing")
    c.add_argument("args", nargs="*", metavar="[CONFIG] [key=value ...]")
    c.add_argument("--sweep", action="store_true", help="with no CONFIG, resolve the built-in "
                   "default of `meta-evo sweep` on this platform (else that of `meta-evo run`)")
    p._meta_evo_sub = {name: sp._actions for name, sp in sub.choices.items()}
    return p


def _print_children(parent, rep: dict) -> None:
    """What a sweep of child sweeps (regions or coverage shares) prints when it finishes."""
    if "regions" in rep:
        print(f"region sweep finished: {parent}  {len(rep['regions'])} regions  "
              f"report: {parent / 'report.md'}")
        for s in rep["regions"]:
            for o in s["onsets"]:
                print(f"  {s['region']}: {o['metric']} (primary) d={o['diversity']:<3} "
                      f"{o['summary']}")
        return
    print(f"coverage sweep finished: {parent}  {len(rep['outside_shares'])} shares  "
          f"report: {parent / 'report.md'}")
    for r in rep["rows"]:
        print(f"  q = {r['q']:<5g} d={r['diversity']} i = {r['intensity']:g}: "
              f"{r['verdict'] or 'no verdict'}")


def _print_sweep(res) -> None:
    """What a finished sweep prints: totals, the primary metric's onsets, the report's path."""
    print(f"sweep finished: {res.out_dir}  {res.grid.size} grid points x "
          f"{len(res.arms)} arms  {res.env_steps:,} env steps in {res.wall_s:.1f}s")
    for o in res.report["onsets"]:
        if o.get("role") == "primary":
            print(f"  {o['metric']} (primary) d={o['diversity']:<3} {o['summary']}")
    print(f"  report: {res.out_dir / 'report.md'}")


def _sweep_default() -> tuple[str, str]:
    """The built-in sweep config for this platform and the line that says which."""
    import jax

    platform = jax.default_backend()  # after cpu_workaround: flags already set
    if platform != "cpu":
        return "sweep_default_gpu", (f"no config given; on {platform} the built-in default is "
                                     "the Brax reacher_goal gru sweep (sweep_default_gpu)")
    return "sweep_default", ("no config given; on cpu the built-in default is the analytic gru "
                             "sweep (the Brax reacher_goal one needs an accelerator: "
                             "configs/reacher_goal_gru.yaml)")


def _dry_run(cfg, kind: str, out: str | None) -> int:
    """``--dry-run``: the plan (:mod:`meta_evo.plan`) on stdout; nothing compiled or written."""
    from meta_evo.plan import format_plan, plan_run, plan_sweep
    from meta_evo.rundir.layout import default_out

    plan = plan_run(cfg) if kind == "run" else plan_sweep(cfg)
    where = out if out else f"{default_out(cfg.task.family, kind)} (the default)"
    print("\n".join(format_plan(plan, where)))
    return 0


def _analyze_args(ns) -> tuple[str, list[int] | None]:
    """``analyze``'s RUN_DIR and steps, in either order (``RUN_DIR --step 2 4`` or ``--step 2
    4 RUN_DIR``: ``--step`` takes every value after it, so without a RUN_DIR of its own the
    first value that is not an integer is RUN_DIR)."""
    run_dir, raw = ns.run_dir, list(ns.step or [])
    for i, s in enumerate(raw if run_dir is None else []):
        try:
            int(s)
        except ValueError:
            run_dir = raw.pop(i)
            break
    if run_dir is None:
        raise _UsageError("the following arguments are required: RUN_DIR")
    steps = []
    for s in raw:
        try:
            steps.append(int(s))
        except ValueError:
            raise _UsageError(f"argument --step: invalid int value: {s!r}") from None
    return run_dir, (steps if ns.step is not None else None)


def _start_or_resume(cfg, out: Path, quiet: bool) -> int | None:
    """``sweep --resume-if-exists``: None when ``out`` does not exist (the caller starts the
    sweep); else finish it: nothing to do when it has finished (``report.json``: one line, no
    file touched), resume an unfinished sweep, restart in place one killed before its first
    checkpoint. Its config.yaml must equal ``cfg`` (RunDirError naming the key)."""
    from meta_evo.config import yaml_load
    from meta_evo.distributed import barrier, is_writer
    from meta_evo.errors import RunDirError
    from meta_evo.rundir.layout import kind_of, usable
    from meta_evo.rundir.signals import Signals
    from meta_evo.snapshot import check_config

    exists = usable(out)
    barrier("meta-evo resume-if-exists")  # every process looked before any creates it
    if not exists:
        return None
    kind = kind_of(out)
    if kind == "run" or not (out / "config.yaml").is_file():
        raise RunDirError(f"{out}: exists and is not a sweep directory (a single run's, or no "
                          "config.yaml); choose another --out")
    check_config(out, "this command", yaml_load((out / "config.yaml").read_text()), cfg)
    if (out / "report.json").is_file():
        if is_writer():
            print(f"sweep already finished: {out} (report.json exists); nothing to do")
        return 0
    if kind == "regions":
        from meta_evo.child_sweeps import sweep_children

        with Signals():
            parent, rep = sweep_children(cfg, out, progress=not quiet, resume=True)
        if is_writer():
            _print_children(parent, rep)
        return 0
    from meta_evo.sweep import resume_sweep, sweep

    with Signals():  # stop after the next chunk's checkpoint (exit 130/143)
        if (out / "sweep_state").is_dir():
            res = resume_sweep(out, progress=not quiet)
        else:  # killed before its first checkpoint: start again in its directory
            from meta_evo.lock import acquire

            if is_writer():
                acquire(out)
            res = sweep(cfg, progress=not quiet, resume_dir=out)
    if res.report is not None and is_writer():
        _print_sweep(res)
    return 0


def _cmd_config(ns, config, overrides) -> int:
    """``config``: the resolved config, as run or sweep would use it."""
    from meta_evo.config import dump_config, load_config

    default, said = "quickstart", None
    if ns.sweep and config is None:
        default, said = _sweep_default()
    cfg = load_config(config, overrides, default=default)
    if said:  # a YAML comment: the output stays a config file
        print(f"# {said}")
    sys.stdout.write(dump_config(cfg))
    return 0


def _cmd_run(ns, config, overrides) -> int:
    """``run``: one meta-evolution in a new run directory."""
    from meta_evo.config import load_config

    cfg = load_config(config, overrides, default="quickstart")
    if ns.dry_run:
        return _dry_run(cfg, "run", ns.out)
    from meta_evo import single_run
    from meta_evo.compilation_cache import enable_compilation_cache
    from meta_evo.rundir.layout import default_out

    enable_compilation_cache()
    res = single_run.run(cfg, ns.out or default_out(cfg.task.family, "run"),
                         progress=not ns.quiet)
    if res.interrupted is not None:  # checkpoint saved, message printed
        return res.exit_code
    s = res.summary
    print(f"run finished: {res.out_dir}  generations {s['generations']}  "
          f"best {s['best_fitness']:.4f}  final mean fitness "
          f"{s['final']['fitness_mean']:.4f}  {s['env_steps']} env steps in "
          f"{s['wall_s']:.1f}s")
    return 0


def _cmd_resume(ns, config, overrides) -> int:
    """``resume``: a run, a sweep or a sweep of child sweeps, by what the directory holds."""
    from meta_evo import single_run
    from meta_evo.compilation_cache import enable_compilation_cache
    from meta_evo.config import read_run_config
    from meta_evo.rundir.layout import kind_of
    from meta_evo.rundir.signals import Signals

    enable_compilation_cache()
    run_dir = Path(ns.run_dir)
    kind = kind_of(run_dir)
    if kind == "regions":
        with Signals():
            from meta_evo.child_sweeps import sweep_children

            parent, _ = sweep_children(read_run_config(run_dir), run_dir, progress=not ns.quiet,
                                       resume=True)
        print(f"sweep of child sweeps finished: {parent}  report: {parent / 'report.md'}")
        return 0
    if kind == "sweep":
        from meta_evo.sweep import resume_sweep

        with Signals():  # stop after the next chunk's checkpoint (exit 130/143)
            res = resume_sweep(run_dir, progress=not ns.quiet)
        if res.report is None:  # another process of a multi-host job wrote it
            return 0
        print(f"sweep finished: {res.out_dir}  {res.grid.size} grid points x "
              f"{len(res.arms)} arms  report: {res.out_dir / 'report.md'}")
        return 0
    res = single_run.resume(run_dir, progress=not ns.quiet)
    if res.interrupted is not None:
        return res.exit_code
    s = res.summary
    if res.noop:
        print(f"run already finished at generation {res.generation}; nothing to do: "
              f"{res.out_dir}")
        return 0
    print(f"run finished: {res.out_dir}  resumed from generation {res.resumed_from}  "
          f"generations {s['generations']}  best {s['best_fitness']:.4f}  final mean "
          f"fitness {s['final']['fitness_mean']:.4f}")
    return 0


def _cmd_analyze(ns, config, overrides) -> int:
    """``analyze``: the kernels over a run's saved generations."""
    from meta_evo.analysis import analyze
    from meta_evo.compilation_cache import enable_compilation_cache

    enable_compilation_cache()
    run_dir, steps = _analyze_args(ns)
    res = analyze(run_dir, steps=steps, progress=not ns.quiet, reference=ns.reference)
    print(f"analysis written: {res['path']}  generations {res['generations']}  "
          f"plots in {res['plots_dir']}")
    return 0


def _cmd_sweep(ns, config, overrides) -> int:
    """``sweep``: a new sweep (or start-or-resume), one per region or share where configured."""
    from meta_evo.config import load_config
    from meta_evo.distributed import is_writer, process_count

    default = "sweep_default"
    if config is None:
        default, said = _sweep_default()
        if is_writer():  # one process of a multi-host job tells
            print(f"meta-evo: {said}")
    cfg = load_config(config, overrides, default=default)
    if ns.dry_run:
        return _dry_run(cfg, "sweep", ns.out)
    if ns.resume_if_exists and not ns.out:
        raise _UsageError("--resume-if-exists needs --out: the run directory to start or resume")
    if process_count() > 1 and not ns.out:  # default_out is a timestamp per process
        raise _UsageError("a multi-host sweep needs --out: the one run directory every process "
                          "shares")
    from meta_evo.compilation_cache import enable_compilation_cache
    from meta_evo.rundir.layout import default_out

    enable_compilation_cache()
    out = ns.out or default_out(cfg.task.family, "sweep")
    if ns.resume_if_exists:  # start when absent; else resume, or nothing when finished
        code = _start_or_resume(cfg, Path(out), ns.quiet)
        if code is not None:
            return code
    return _new_sweep(cfg, out, ns.quiet)


def _new_sweep(cfg, out, quiet: bool) -> int:
    from meta_evo.child_sweeps import has_children, sweep_children
    from meta_evo.distributed import is_writer
    from meta_evo.rundir.signals import Signals
    from meta_evo.sweep import sweep

    with Signals():  # stop after the next chunk's checkpoint (exit 130/143)
        if has_children(cfg):  # one sweep per region or coverage share, side by side
            parent, rep = sweep_children(cfg, out, progress=not quiet)
            if is_writer():
                _print_children(parent, rep)
            return 0
        res = sweep(cfg, out, progress=not quiet)
    if is_writer():  # process 0 writes and tells
        _print_sweep(res)
    return 0


COMMANDS = {"config": _cmd_config, "run": _cmd_run, "resume": _cmd_resume,
            "analyze": _cmd_analyze, "sweep": _cmd_sweep}


def main(argv: list[str] | None = None) -> int:
    # the CLI writes figures to files: Agg, unless the user chose a backend (the library
    # chooses none, so a notebook keeps its inline figures)
    os.environ.setdefault("MPLBACKEND", "Agg")
    from meta_evo.cpu_flags import cpu_workaround

    cpu_workaround()  # first: loading a config imports jax (task families), every subcommand
    from meta_evo.distributed import maybe_initialize_distributed

    maybe_initialize_distributed()  # multi-host when the environment asks: before any JAX work
    quiet_third_party()
    ns = _parse(build_parser(), argv)
    from meta_evo.arm_progress import SweepInterrupted
    from meta_evo.config import ConfigError
    from meta_evo.errors import RunDirError

    try:
        config, overrides = _split(getattr(ns, "args", None) or [])
        return COMMANDS[ns.command](ns, config, overrides)
    except (ConfigError, RunDirError, _UsageError) as e:
        sys.stderr.write(f"meta-evo: error: {_one_line(e)}\n")
        return EXIT_USAGE
    except SweepInterrupted as e:  # checkpoint saved, resume command printed
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
