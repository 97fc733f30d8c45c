"""Sweep progress in orbax: what ``meta-evo resume`` of a sweep continues from.

``RUN_DIR/sweep_state/{arm}/<n>/`` is the ``n``-th checkpoint of one arm (written after every
chunk; the newest :data:`KEEP` are kept). It holds two orbax items:

- ``arrays``: every array of the progress payload, a flat ``{"a00000": ndarray, ...}``
  (``StandardSave``): the group states (the vmapped ``MetaState``, PRNG keys included) and the
  histories, measurements and thetas gathered so far;
- ``extra``: JSON with the payload's structure (dicts, lists, ints, floats written exactly as
  ``float.hex``, and references into ``arrays``), the shape and dtype of every array, the
  resolved config and a SHA-256 digest over both items, checked on restore.

Loading reads JSON and raw array bytes only: nothing in a directory someone hands over can run
code (there is no pickle here). A ``MetaState`` is rebuilt from the arm's own structure
(``jax.eval_shape(meta.init)``) after checking that the stored leaf paths match it. A damaged
newest checkpoint is reported in one warning, moved to ``sweep_state.damaged/`` (never deleted)
and the previous one used. Writes are synchronous and atomic (orbax renames a finished temporary
directory), so a process killed while saving leaves a partial write that is moved aside, not a
checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

from meta_evo.checkpoint import CheckpointError, _one_line, _quiet, check_config, state_digest

FORMAT = 1
KEEP = 2  # checkpoints kept per arm: the newest and the one a damaged newest falls back to
ARRAYS, EXTRA = "arrays", "extra"
STATE_DIR, DAMAGED = "sweep_state", "sweep_state.damaged"


class UnknownStructure(RuntimeError):
    """A programming error, not damage: no state structure is known for an arm."""


class SweepInterrupted(RuntimeError):
    """The sweep stopped after a checkpoint: a signal (``signum``), or the ``stop_after`` test
    hook (``signum`` None). ``meta-evo resume RUN_DIR`` continues it."""

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """``128 + signum`` (130 SIGINT, 143 SIGTERM); 1 for the test hook."""
        return 128 + int(self.signum) if self.signum is not None else 1


# --- payload <-> (JSON structure, flat arrays) ---------------------------------------------------
def encode(payload) -> tuple[object, dict[str, np.ndarray]]:
    """Split a payload into a JSON-ready structure and ``{name: ndarray}``.

    Nodes: ``["n"]`` None, ``["b", x]`` bool, ``["i", x]`` int, ``["f", hex]`` float, ``["s", x]``
    str, ``["a", name]`` array, ``["g", name]`` numpy scalar, ``["z", dtype, shape]`` empty
    array, ``["d", [[key_kind, key, node], ...]]`` dict (str or int keys), ``["l", [...]]`` list,
    ``["t", [...]]`` tuple, ``["p", [leaf path, ...], [node, ...]]`` a pytree of the arm's state
    structure (rebuilt on load from a template).
    """
    arrays: dict[str, np.ndarray] = {}

    def array(a: np.ndarray, tag: str = "a"):
        if a.dtype == object:
            raise TypeError("object arrays cannot be stored")
        if a.size == 0:
            return ["z", a.dtype.str, list(a.shape)]
        name = f"a{len(arrays):05d}"
        arrays[name] = a if a.flags.c_contiguous else np.ascontiguousarray(a)  # keeps 0-d
        return [tag, name]

    def node(x):
        if x is None:
            return ["n"]
        if isinstance(x, jax.Array):
            x = np.asarray(jax.device_get(x))
        if isinstance(x, np.generic):  # before float: np.float64 is a float
            return array(np.asarray(x), "g")
        if isinstance(x, bool):
            return ["b", x]
        if isinstance(x, int):
            return ["i", x]
        if isinstance(x, float):
            return ["f", x.hex()]
        if isinstance(x, str):
            return ["s", x]
        if isinstance(x, np.ndarray):
            return array(x)
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"dict key {k!r}: only str and int keys can be stored")
                items.append(["s" if isinstance(k, str) else "i", k, node(v)])
            return ["d", items]
        if isinstance(x, list):
            return ["l", [node(v) for v in x]]
        if isinstance(x, tuple):
            return ["t", [node(v) for v in x]]
        leaves = jax.tree_util.tree_flatten_with_path(x)[0]  # e.g. a flax-struct MetaState
        return ["p", [jax.tree_util.keystr(p) for p, _ in leaves],
                [array(np.asarray(jax.device_get(v))) for _, v in leaves]]

    return node(payload), arrays  # (not jax.device_get(payload): it would sort dict keys)


def decode(structure, arrays: dict[str, np.ndarray], template=None):
    """Inverse of :func:`encode`. ``template()``: the treedef and leaf paths of a ``["p"]`` node
    (the arm's state), called only when one is present. Raises CheckpointError."""

    def node(n):
        tag = n[0]
        if tag == "n":
            return None
        if tag in ("b", "i", "s"):
            return n[1]
        if tag == "f":
            return float.fromhex(n[1])
        if tag == "a":
            return arrays[n[1]]
        if tag == "g":
            return arrays[n[1]][()]
        if tag == "z":
            if np.dtype(n[1]).kind not in "biufc":
                raise CheckpointError("holds a non-numeric array")
            return np.zeros(n[2], np.dtype(n[1]))
        if tag == "d":
            return {(k if kind == "s" else int(k)): node(v) for kind, k, v in n[1]}
        if tag == "l":
            return [node(v) for v in n[1]]
        if tag == "t":
            return tuple(node(v) for v in n[1])
        if tag == "p":
            if template is None:
                raise CheckpointError("holds a state but no state structure was given")
            treedef, paths = template()
            if list(n[1]) != list(paths):
                raise CheckpointError("the stored state's structure differs from this "
                                      "version's (leaf paths do not match)")
            return jax.tree_util.tree_unflatten(treedef, [node(v) for v in n[2]])
        raise CheckpointError(f"unknown node {tag!r}")

    try:
        return node(structure)
    except (CheckpointError, UnknownStructure):
        raise
    except Exception as e:  # noqa: BLE001 - a malformed structure is a damaged checkpoint
        raise CheckpointError(f"malformed structure ({_one_line(e)})") from None


def _digest(structure, specs: dict, arrays: dict) -> str:
    h = hashlib.sha256(state_digest(arrays).encode())
    h.update(json.dumps([structure, specs], sort_keys=True).encode())
    return h.hexdigest()


# --- the store ------------------------------------------------------------------------------------
class SweepCheckpoint:
    """Per-arm sweep progress under ``RUN_DIR/sweep_state/{arm}/`` (orbax), written after every
    chunk by :func:`meta_evo.sweep.run_arm` through :meth:`save` and read back by :meth:`load`.

    ``cfg``: the sweep's config (recorded with every checkpoint, checked on load); ``metas``:
    ``{arm: Meta}``, whose ``init`` gives the structure a stored state is rebuilt into;
    ``stop_after``: raise :class:`SweepInterrupted` after that many saves (tests). After every
    save, a SIGINT/SIGTERM caught by an entered :class:`meta_evo.runs.Signals` stops the sweep
    the same way (with the resume command on stderr).

    In a multi-host job every process holds one (each counts its saves and stops alike), but
    only the writer (``write=True``, process 0) writes; on load the writer goes first (moving
    damage aside) and the others read after it (:func:`meta_evo.distributed.barrier`), each
    through its own orbax manager.
    """

    def __init__(self, root: str | Path, cfg=None, metas: dict | None = None,
                 stop_after: int | None = None, warn=None, write: bool = True):
        from meta_evo.distributed import process_count

        self.root = Path(root).absolute()
        self.write = write
        self.processes = process_count()
        if write:
            self.root.mkdir(exist_ok=True)
        self.cfg, self.metas = cfg, dict(metas or {})
        self.saves = 0
        self.stop_after = stop_after
        self.warn = warn or (lambda m: sys.stderr.write(f"meta-evo: warning: {m}\n"))
        self._mgrs: dict = {}
        self._templates: dict = {}

    # --- orbax ----------------------------------------------------------------------------------
    def _mgr(self, arm: str):
        if arm not in self._mgrs:
            import orbax.checkpoint as ocp
            from orbax.checkpoint import checkpoint_managers as cm

            multi = {}
            if self.processes > 1:  # this process alone: no barrier with the others
                import jax

                me = jax.process_index()
                multi["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                    primary_host=me, active_processes={me})
            if self.write:  # made here: orbax cannot create it for one of several processes
                (self.root / arm).mkdir(parents=True, exist_ok=True)
            with _quiet():
                opts = ocp.CheckpointManagerOptions(
                    enable_async_checkpointing=False, create=False,
                    preservation_policy=cm.LatestN(n=KEEP), cleanup_tmp_directories=False,
                    **multi)
                self._mgrs[arm] = ocp.CheckpointManager(self.root / arm,
                                                        item_names=(ARRAYS, EXTRA), options=opts)
        return self._mgrs[arm]

    def steps(self, arm: str) -> list[int]:
        mgr = self._mgr(arm)
        mgr.reload()
        return sorted(int(s) for s in mgr.all_steps())

    def _template(self, arm: str):
        if arm not in self._templates:
            meta = self.metas.get(arm) or next(
                (m for m in self.metas.values() if getattr(m.learner, "name", None) == arm), None)
            if meta is None:  # a programming error, not damage: never discard the progress
                raise UnknownStructure(f"sweep checkpoint: no state structure known for arm "
                                       f"{arm!r} (known: {sorted(self.metas)})")
            shapes = jax.eval_shape(meta.init, jax.random.PRNGKey(0))
            leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
            self._templates[arm] = (treedef, [jax.tree_util.keystr(p) for p, _ in leaves])
        return self._templates[arm]

    # --- writing --------------------------------------------------------------------------------
    def save(self, arm: str, payload: dict) -> None:
        """Write the next checkpoint of ``arm`` (blocking, atomic; prunes to :data:`KEEP`)."""
        import orbax.checkpoint as ocp

        from meta_evo.distributed import agreed_signal
        from meta_evo.runs import signal_received

        if self.write:
            structure, arrays = encode(payload)
            specs = {k: [a.dtype.str, list(a.shape)] for k, a in arrays.items()}
            extra = {"format": FORMAT, "arm": arm, "structure": structure, "specs": specs,
                     "config": self.cfg.to_dict() if self.cfg is not None else None,
                     "sha256": _digest(structure, specs, arrays)}
            steps = self.steps(arm)
            step = steps[-1] + 1 if steps else 0
            mgr = self._mgr(arm)
            mgr.save(step, force=True, args=ocp.args.Composite(
                **{ARRAYS: ocp.args.StandardSave(arrays), EXTRA: ocp.args.JsonSave(extra)}))
            mgr.wait_until_finished()
        self.saves += 1
        signum = agreed_signal(signal_received())
        if signum is not None:
            run_dir = shlex.quote(str(self.root.parent))
            sys.stderr.write(f"meta-evo: sweep interrupted in the {arm} arm; resume with: "
                             f"meta-evo resume {run_dir}\n")
            sys.stderr.flush()
            raise SweepInterrupted(f"stopped by signal {signum}", signum)
        if self.stop_after is not None and self.saves >= self.stop_after:
            raise SweepInterrupted(f"stopped after {self.saves} checkpoints")

    # --- reading --------------------------------------------------------------------------------
    def read_extra(self, arm: str, step: int) -> dict:
        """The JSON item of checkpoint ``step`` of ``arm``. Raises CheckpointError."""
        import orbax.checkpoint as ocp

        try:
            with _quiet():
                out = self._mgr(arm).restore(step, args=ocp.args.Composite(
                    **{EXTRA: ocp.args.JsonRestore()}))
            extra = dict(out[EXTRA])
        except Exception as e:  # noqa: BLE001 - any failure means this checkpoint is unusable
            raise CheckpointError(_one_line(e)) from None
        if extra.get("format") != FORMAT or extra.get("arm") != arm:
            raise CheckpointError(f"metadata does not describe a sweep checkpoint of {arm}")
        return extra

    def restore(self, arm: str, step: int, extra: dict) -> dict:
        """The payload of checkpoint ``step``, verified against its digest."""
        import orbax.checkpoint as ocp

        try:
            specs = extra["specs"]
            if any(np.dtype(dt).kind not in "biufc" for dt, _ in specs.values()):
                raise CheckpointError("holds a non-numeric array")
            target = {k: np.empty(shape, np.dtype(dt)) for k, (dt, shape) in specs.items()}
            if target:
                with _quiet():
                    out = self._mgr(arm).restore(step, args=ocp.args.Composite(
                        **{ARRAYS: ocp.args.StandardRestore(target)}))
                arrays = {k: np.asarray(v) for k, v in out[ARRAYS].items()}
            else:  # pragma: no cover - every payload holds arrays
                arrays = {}
            digest = _digest(extra["structure"], specs, arrays)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(_one_line(e)) from None
        if digest != extra.get("sha256"):
            raise CheckpointError("bytes do not match the stored SHA-256 digest")
        payload = decode(extra["structure"], arrays, lambda: self._template(arm))
        if not isinstance(payload, dict) or "gi" not in payload:
            raise CheckpointError("not a sweep progress payload")
        return payload

    def partial_writes(self, arm: str) -> list[Path]:
        d = self.root / arm
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if ".orbax-checkpoint-tmp" in p.name)

    def quarantine(self, arm: str, path_or_step) -> Path:
        """Move a damaged checkpoint (or partial write) of ``arm`` to
        ``sweep_state.damaged/{arm}/``; never deleted. Returns the new path."""
        src = self.root / arm / str(path_or_step) if isinstance(path_or_step, int) else \
            Path(path_or_step)
        dest_dir = self.root.parent / DAMAGED / arm
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest, i = dest_dir / src.name, 1
        while dest.exists():
            dest, i = dest_dir / f"{src.name}.{i}", i + 1
        shutil.move(str(src), str(dest))
        self._mgr(arm).reload()
        return dest

    def load(self, arm: str) -> dict | None:
        """The newest good payload of ``arm``, or None when it has none (the arm starts over).

        A damaged checkpoint is reported (one warning), moved aside and the previous one used;
        a checkpoint whose config differs from ``cfg`` raises RunDirError.
        """
        if self.processes == 1:
            return self._load(arm)
        from meta_evo.distributed import barrier

        if not self.write:
            barrier(f"meta-evo sweep state {arm}")  # the writer has moved any damage aside
            return self._load(arm)
        try:
            return self._load(arm)
        finally:  # also when it raises: the others are not left waiting
            barrier(f"meta-evo sweep state {arm}")

    def _load(self, arm: str) -> dict | None:
        if not (self.root / arm).is_dir():
            return None
        for p in self.partial_writes(arm):
            dest = self.quarantine(arm, p)
            self.warn(f"{STATE_DIR}/{arm}/{p.name}: unfinished checkpoint write (process "
                      f"killed while saving); moved to {dest}")
        steps = self.steps(arm)
        where = self.root.parent
        for i, step in enumerate(reversed(steps)):
            try:
                extra = self.read_extra(arm, step)
                if self.cfg is not None:
                    check_config(where, f"sweep checkpoint {arm}/{step}", extra.get("config"),
                                 self.cfg)
                return self.restore(arm, step, extra)
            except CheckpointError as e:
                older = steps[len(steps) - 2 - i] if i + 1 < len(steps) else None
                dest = self.quarantine(arm, step)
                nxt = (f"using the previous one ({arm}/{older})" if older is not None
                       else f"no older one: the {arm} arm starts over")
                self.warn(f"sweep checkpoint {arm}/{step} is damaged ({e}); moved to {dest}; "
                          f"{nxt}")
        return None

    def close(self) -> None:
        for mgr in self._mgrs.values():
            mgr.close()
        self._mgrs.clear()


def check_resumable(run_dir: str | Path, cfg) -> None:
    """Refuse to resume the sweep in ``run_dir`` (RunDirError, one line) when its config.yaml
    differs from the config recorded with any arm's newest readable checkpoint (naming the
    key), or when its progress was written in the old pickle format (never loaded: unpickling
    can run code). Damaged checkpoints are skipped silently here; :meth:`SweepCheckpoint.load`
    reports them."""
    from meta_evo.runs import RunDirError

    run_dir = Path(run_dir)
    root = run_dir / STATE_DIR
    arms = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not arms and any(root.glob("*.pkl")):
        raise RunDirError(f"{run_dir}: the sweep progress was written by an older meta-evo "
                          "(pickle files, which are not loaded since they can run code); "
                          "start the sweep again")
    store = SweepCheckpoint(root, cfg)
    try:
        for arm in arms:
            for step in reversed(store.steps(arm)):
                try:
                    extra = store.read_extra(arm, step)
                except CheckpointError:
                    continue
                check_config(run_dir, f"sweep checkpoint {arm}/{step}", extra.get("config"),
                             cfg)
                break
    finally:
        store.close()
