"""``meta-evo``: the command line, a thin layer over :mod:`meta_evo.api`.

Every user error (bad config, bad argument, existing run directory, a directory another process
is writing) is one line on stderr and exit code 2; nothing is created or overwritten. Before
anything imports jax, :func:`main` sets the XLA:CPU flags (:mod:`meta_evo.cpu_flags`) and
silences known third-party warnings a user can do nothing about (:func:`quiet_third_party`).
"""

from __future__ import annotations

import argparse
import sys
import warnings

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
        sys.stderr.write(f"meta-evo: error: {_one_line(message)}\n")
        raise SystemExit(EXIT_USAGE)


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
    p = _Parser(prog="meta-evo", description="Meta-evolve base optimizers on Brax physics and "
                "measure when they become learned optimizers.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run one meta-evolution (default: configs/quickstart.yaml)")
    r.add_argument("args", nargs="*", metavar="[CONFIG] [key=value ...]")
    r.add_argument("--out", help="run directory to create (must not exist)")
    r.add_argument("--quiet", action="store_true", help="no progress line")
    rs = sub.add_parser("resume", help="continue a killed or interrupted run from its latest "
                        "good checkpoint (exit 130/143 if interrupted again)")
    rs.add_argument("run_dir", metavar="RUN_DIR")
    rs.add_argument("--quiet", action="store_true", help="no progress line")
    an = sub.add_parser("analyze", help="rerun the measurement kernels on a run's checkpoints; "
                        "writes RUN_DIR/analysis.json and RUN_DIR/analysis/*.png")
    an.add_argument("run_dir", metavar="RUN_DIR")
    an.add_argument("--step", type=int, nargs="+", action="extend", metavar="N",
                    help="checkpoint generations to analyze (default: all kept checkpoints)")
    an.add_argument("--quiet", action="store_true", help="no progress output")
    sw = sub.add_parser("sweep", help="sweep selection pressure (x seeds x task diversity) with "
                        "a reward-channel control arm; writes report.json, report.md and plots "
                        "(default by platform: on CPU the analytic gru sweep, ~5 min on 2 cores; "
                        "on an accelerator the Brax reacher_goal gru sweep)")
    sw.add_argument("args", nargs="*", metavar="[CONFIG] [key=value ...]")
    sw.add_argument("--out", help="run directory to create (must not exist)")
    sw.add_argument("--quiet", action="store_true", help="no progress line")
    return p


def main(argv: list[str] | None = None) -> int:
    from meta_evo.cpu_flags import cpu_workaround

    cpu_workaround()  # first: loading a config imports jax (task families), every subcommand
    from meta_evo.distributed import maybe_initialize_distributed

    maybe_initialize_distributed()  # multi-host when the environment asks: before any JAX work
    quiet_third_party()
    parser = build_parser()
    ns = parser.parse_args(argv)
    from meta_evo.config import ConfigError, load_config
    from meta_evo.runs import RunDirError, Signals
    from meta_evo.sweep_state import SweepInterrupted

    try:
        config, overrides = _split(getattr(ns, "args", []))
        if ns.command == "run":
            cfg = load_config(config, overrides, default="quickstart")
            from meta_evo import api
            from meta_evo.runs import default_out

            api.enable_compilation_cache()
            out = ns.out or default_out(cfg, "run")
            res = api.run(cfg, out, progress=not ns.quiet)
            if res.interrupted is not None:  # checkpoint saved, message printed
                return res.exit_code
            s = res.summary
            print(f"run finished: {res.out_dir}  generations {s['generations']}  "
                  f"best {s['best_fitness']:.4f}  final mean fitness "
                  f"{s['final']['fitness_mean']:.4f}  {s['env_steps']} env steps in "
                  f"{s['wall_s']:.1f}s")
            return 0
        if ns.command == "resume":
            from pathlib import Path

            from meta_evo import api

            api.enable_compilation_cache()
            from meta_evo.runs import read_run_config

            run_dir = Path(ns.run_dir)
            try:  # a region sweep's parent: config with regions, no state of its own
                parent = ((run_dir / "config.yaml").is_file()
                          and not (run_dir / "checkpoints").exists()
                          and not (run_dir / "sweep_state").exists())
            except (OSError, ValueError):  # an unusable path: read_run_config says so below
                parent = False
            if parent and read_run_config(run_dir).sweep.train_regions:
                from meta_evo.regions import sweep_regions

                cfg = read_run_config(Path(ns.run_dir))
                with Signals():
                    parent, _ = sweep_regions(cfg, ns.run_dir, progress=not ns.quiet,
                                              resume=True)
                print(f"region sweep finished: {parent}  report: {parent / 'report.md'}")
                return 0
            if (Path(ns.run_dir) / "sweep_state").is_dir():  # a sweep directory
                from meta_evo.sweep import resume_sweep

                with Signals():  # stop after the next chunk's checkpoint (exit 130/143)
                    res = resume_sweep(ns.run_dir, progress=not ns.quiet)
                if res.report is None:  # another process of a multi-host job wrote it
                    return 0
                print(f"sweep finished: {res.out_dir}  {res.grid.size} grid points x "
                      f"{len(res.arms)} arms  report: {res.out_dir / 'report.md'}")
                return 0
            res = api.resume(ns.run_dir, progress=not ns.quiet)
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
        if ns.command == "analyze":
            from meta_evo import api
            from meta_evo.analysis import analyze

            api.enable_compilation_cache()
            res = analyze(ns.run_dir, steps=ns.step, progress=not ns.quiet)
            print(f"analysis written: {res['path']}  generations {res['generations']}  "
                  f"plots in {res['plots_dir']}")
            return 0
        if ns.command == "sweep":
            default = "sweep_default"
            from meta_evo.distributed import is_writer, process_count

            if config is None:
                import jax

                platform = jax.default_backend()  # after cpu_workaround: flags already set
                if platform != "cpu":
                    default = "sweep_default_gpu"
                    said = (f"meta-evo: no config given; on {platform} the built-in default is "
                            "the Brax reacher_goal gru sweep (sweep_default_gpu)")
                else:
                    said = ("meta-evo: no config given; on cpu the built-in default is the "
                            "analytic gru sweep (the Brax reacher_goal one needs an accelerator: "
                            "configs/reacher_goal_gru.yaml)")
                if is_writer():  # one process of a multi-host job tells
                    print(said)
            cfg = load_config(config, overrides, default=default)
            from meta_evo import api
            from meta_evo.runs import default_out
            from meta_evo.sweep import sweep

            api.enable_compilation_cache()
            if process_count() > 1 and not ns.out:  # default_out is a timestamp per process
                raise _UsageError("a multi-host sweep needs --out: the one run directory "
                                  "every process shares")
            out = ns.out or default_out(cfg, "sweep")
            if cfg.sweep.train_regions:  # one sweep per training region, side by side
                from meta_evo.regions import sweep_regions

                with Signals():
                    parent, rep = sweep_regions(cfg, out, progress=not ns.quiet)
                if not is_writer():
                    return 0
                print(f"region sweep finished: {parent}  {len(rep['regions'])} regions  "
                      f"report: {parent / 'report.md'}")
                for s in rep["regions"]:
                    for o in s["onsets"]:
                        print(f"  {s['region']}: {o['metric']} (primary) d={o['diversity']:<3} "
                              f"{o['summary']}")
                return 0
            with Signals():  # stop after the next chunk's checkpoint (exit 130/143)
                res = sweep(cfg, out, progress=not ns.quiet)
            if not is_writer():  # process 0 writes and tells
                return 0
            print(f"sweep finished: {res.out_dir}  {res.grid.size} grid points x "
                  f"{len(res.arms)} arms  {res.env_steps:,} env steps in {res.wall_s:.1f}s")
            for o in res.report["onsets"]:
                if o.get("role") == "primary":
                    print(f"  {o['metric']} (primary) d={o['diversity']:<3} {o['summary']}")
            print(f"  report: {res.out_dir / 'report.md'}")
            return 0
    except (ConfigError, RunDirError, _UsageError) as e:
        sys.stderr.write(f"meta-evo: error: {_one_line(e)}\n")
        return EXIT_USAGE
    except SweepInterrupted as e:  # checkpoint saved, resume command printed
        return e.exit_code
    return EXIT_USAGE  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
