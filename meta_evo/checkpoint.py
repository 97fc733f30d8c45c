"""Orbax checkpoints of a run: the ``MetaState`` pytree, the metrics so far, the config.

``RUN_DIR/checkpoints/<generation>/`` holds two orbax items:

- ``state``: the :class:`~meta_evo.meta.MetaState` (``es_state``, ``key [2]``, ``generation []``,
  ``best_theta [D_theta]``, ``best_fitness []``), written with ``StandardSave``;
- ``extra``: JSON with the generation, the resolved config, the ``metrics.jsonl`` lines written so
  far (verbatim, so a resumed run rewrites the file byte for byte) and a SHA-256 digest of the
  state's bytes, checked on restore (orbax itself does not notice every damaged data file).

Writes are synchronous and atomic: orbax writes into ``<gen>.orbax-checkpoint-tmp-*`` and renames
it when complete, so a write killed half-way never looks like a checkpoint. Retention keeps the
``keep`` newest checkpoints plus generation 0 (the meta-init, a baseline for analysis).

Restores use an abstract target built from the config (``jax.eval_shape(meta.init, key)``) placed
on this process's first device, so a checkpoint written on a GPU restores on a CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

FORMAT = 1
STATE, EXTRA = "state", "extra"
DAMAGED = "checkpoints.damaged"  # sibling of checkpoints/ that receives unreadable checkpoints


class CheckpointError(RuntimeError):
    """One checkpoint cannot be used (partial, corrupted, inconsistent). One-line message."""


def state_digest(state) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes (host copies)."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def abstract_state(meta, seed: int):
    """The shape/dtype tree of ``meta.init`` placed on the first local device (no compute)."""
    shapes = jax.eval_shape(meta.init, jax.random.PRNGKey(seed))
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                        shapes)


def _one_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    text = f"{type(e).__name__}: {text}" if not isinstance(e, CheckpointError) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _quiet():
    """Silence orbax/tensorstore chatter (absl log lines, unraisable coroutine errors) while
    probing checkpoints that may be damaged: the caller reports one line itself."""
    loggers = [logging.getLogger(n) for n in ("absl", "orbax")]
    levels = [lg.level for lg in loggers]
    hook = sys.unraisablehook
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda *_: None
    try:
        yield
    finally:
        import gc
        gc.collect()  # finalize abandoned coroutines while the hook is muted
        sys.unraisablehook = hook
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


class Checkpoints:
    """The checkpoints of one run directory, over an orbax ``CheckpointManager``.

    ``keep``: newest checkpoints kept (generation 0 is kept as well); ``None`` with
    ``read_only=True`` opens for reading only (analysis).
    """

    def __init__(self, directory: str | Path, keep: int | None = None, read_only: bool = False):
        import orbax.checkpoint as ocp
        from orbax.checkpoint import checkpoint_managers as cm

        self.ocp = ocp
        self.directory = Path(directory).absolute()
        policy = None
        if keep is not None:
            policy = cm.AnyPreservationPolicy([cm.LatestN(n=keep), cm.CustomSteps(steps=[0])])
        with _quiet():  # read_only logs a warning about save_interval_steps
            opts = ocp.CheckpointManagerOptions(
                enable_async_checkpointing=False, create=not read_only, read_only=read_only,
                preservation_policy=policy, cleanup_tmp_directories=False)
            self.mgr = ocp.CheckpointManager(self.directory, item_names=(STATE, EXTRA),
                                             options=opts)

    # --- writing --------------------------------------------------------------------------------
    def save(self, generation: int, state, metrics_lines: list[str], config: dict) -> None:
        """Write the checkpoint of ``generation`` (blocking; atomic; prunes old ones)."""
        ocp = self.ocp
        extra = {"format": FORMAT, "generation": int(generation), "config": config,
                 "metrics": list(metrics_lines), "state_sha256": state_digest(state),
                 "backend": jax.default_backend()}
        self.mgr.save(int(generation), force=True, args=ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(state), EXTRA: ocp.args.JsonSave(extra)}))
        self.mgr.wait_until_finished()

    # --- reading --------------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """Generations of the finalized checkpoints on disk, ascending."""
        self.mgr.reload()
        return sorted(int(s) for s in self.mgr.all_steps())

    def partial_writes(self) -> list[Path]:
        """Unfinished writes (orbax temporary directories) left by a killed process."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if ".orbax-checkpoint-tmp" in p.name)

    def read_extra(self, step: int) -> dict:
        """The JSON item of ``step`` (config, metrics lines, digest). Raises CheckpointError."""
        ocp = self.ocp
        try:
            with _quiet():
                out = self.mgr.restore(step, args=ocp.args.Composite(
                    **{EXTRA: ocp.args.JsonRestore()}))
            extra = dict(out[EXTRA])
        except Exception as e:  # noqa: BLE001 - any failure means this checkpoint is unusable
            raise CheckpointError(_one_line(e)) from None
        if extra.get("format") != FORMAT or extra.get("generation") != step:
            raise CheckpointError(f"metadata does not describe generation {step}")
        if len(extra.get("metrics", ())) != step:
            raise CheckpointError(f"holds {len(extra.get('metrics', ()))} metrics rows, "
                                  f"expected {step}")
        return extra

    def restore(self, step: int, target, extra: dict | None = None):
        """``(state, extra)`` of ``step``, restored into ``target`` (from :func:`abstract_state`)
        and verified against the stored digest. Raises CheckpointError."""
        ocp = self.ocp
        extra = self.read_extra(step) if extra is None else extra
        try:
            with _quiet():
                out = self.mgr.restore(step, args=ocp.args.Composite(
                    **{STATE: ocp.args.StandardRestore(target)}))
            state = out[STATE]
            digest = state_digest(state)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(_one_line(e)) from None
        if digest != extra["state_sha256"]:
            raise CheckpointError("state bytes do not match the stored SHA-256 digest")
        if int(state.generation) != step:
            raise CheckpointError(f"state is at generation {int(state.generation)}, not {step}")
        return state, extra

    def quarantine(self, path_or_step) -> Path:
        """Move a damaged checkpoint (or a partial write) to ``checkpoints.damaged/``: out of
        orbax's way, never deleted. Returns the new path."""
        src = self.directory / str(path_or_step) if isinstance(path_or_step, int) else \
            Path(path_or_step)
        dest_dir = self.directory.parent / DAMAGED
        dest_dir.mkdir(exist_ok=True)
        dest, i = dest_dir / src.name, 1
        while dest.exists():
            dest, i = dest_dir / f"{src.name}.{i}", i + 1
        shutil.move(str(src), str(dest))
        self.mgr.reload()
        return dest

    def close(self) -> None:
        self.mgr.close()


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts, ``key: a != b``."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        key = f"{prefix}{k}"
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, key + ".")
        elif json.dumps(va) != json.dumps(vb):
            out.append(f"{key}: {va!r} != {vb!r}")
    return out


def check_config(where, what: str, saved: dict, cfg) -> None:
    """Refuse (RunDirError, one line naming the first differing key) when ``saved`` (the config
    recorded with checkpoint ``what``) differs from ``cfg`` (the run directory's config.yaml).

    Both go through today's schema first, so keys added since the checkpoint was written take
    their defaults on both sides and do not count as a difference.
    """
    from meta_evo.config import ConfigError, config_from_dict
    from meta_evo.runs import RunDirError

    want = json.loads(json.dumps(cfg.to_dict()))
    try:
        theirs = json.loads(json.dumps(config_from_dict(saved).to_dict()))
    except (ConfigError, TypeError, AttributeError) as e:
        raise RunDirError(f"{where}: the config of {what} is not valid for this version of "
                          f"meta-evo ({e}); refusing to resume") from None
    diff = config_diff(theirs, want)
    if diff:
        more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
        raise RunDirError(f"{where}: config.yaml differs from the config of {what} "
                          f"({diff[0]}{more}); refusing to resume")
