"""What a checkpoint holds, and how it is read back: a progress payload (a ``MetaState``, a
sweep's gathered histories and measurements) as a JSON structure plus flat numpy arrays, for the
one store of :mod:`meta_evo.rundir.store`.

:func:`save` writes a payload as checkpoint ``step``; :func:`load` returns the newest good one,
rebuilding any state from its structure (``jax.eval_shape(meta.init)``) after checking that the
stored leaf paths match, and refusing (RunDirError, one line naming the key) a checkpoint whose
config differs from the run directory's.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from meta_evo.errors import RunDirError
from meta_evo.rundir.store import CheckpointError, Store, one_line


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
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - a malformed structure is a damaged checkpoint
        raise CheckpointError(f"malformed structure ({one_line(e)})") from None


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
    their defaults on both sides and do not count as a difference; keys that the chosen family,
    agent and learner do not read (:func:`meta_evo.config.applicable`) do not count either.
    """
    from meta_evo.config import ConfigError, applicable, config_from_dict

    want = json.loads(json.dumps(applicable(cfg)))
    try:
        theirs = json.loads(json.dumps(applicable(config_from_dict(saved))))
    except (ConfigError, TypeError, AttributeError) as e:
        raise RunDirError(f"{where}: the config of {what} is not valid for this version of "
                          f"meta-evo ({e}); refusing to resume") from None
    diff = config_diff(theirs, want)
    if diff:
        more = f" (and {len(diff) - 1} more)" if len(diff) > 1 else ""
        raise RunDirError(f"{where}: config.yaml differs from the config of {what} "
                          f"({diff[0]}{more}); refusing to resume")


def state_template(meta):
    """``template()`` for :func:`decode`: the treedef and leaf paths of ``meta.init``'s state."""
    def template():
        shapes = jax.eval_shape(meta.init, jax.random.PRNGKey(0))
        leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
        return treedef, [jax.tree_util.keystr(p) for p, _ in leaves]
    return template


def save(store: Store, step: int, payload, cfg, **fields) -> None:
    """Write ``payload`` as checkpoint ``step`` of ``store``, with the config and ``fields``."""
    structure, arrays = encode(payload)
    store.save(step, arrays, {**fields, "config": cfg.to_dict(), "structure": structure,
                              "backend": jax.default_backend()})


def load(store: Store, cfg, template, warn, label, check=None):
    """``(step, payload, extra)`` of the newest good checkpoint of ``store``, or None.

    ``template``: for :func:`decode` (a callable, built only when a state is met); ``check(step,
    extra, payload)``: raises CheckpointError when the payload is not what the caller expects.
    A checkpoint whose config differs from ``cfg`` raises RunDirError (checked before its
    arrays are decoded)."""
    where = store.directory.parent

    def accept(step, extra, arrays):
        check_config(where, label(step), extra.get("config"), cfg)
        payload = decode(extra.get("structure"), arrays, template)
        if check is not None:
            check(step, extra, payload)
        return payload, extra

    found = store.newest_good(accept, warn, label)
    return None if found is None else (found[0], *found[1])


# --- a single run: RUN_DIR/checkpoints/<generation>/ ---------------------------------------------
def run_store(run_dir: Path, cfg=None, write: bool = True) -> Store:
    """The checkpoints of a single run: the newest ``checkpoint.keep`` and generation 0 (the
    meta-init, a baseline for analysis) are kept; ``cfg`` None opens for reading only."""
    keep = cfg.checkpoint.keep if cfg is not None else None
    return Store(run_dir / "checkpoints", run_dir / "checkpoints.damaged", keep=keep,
                 keep_steps=(0,), write=write)


def save_run(store: Store, generation: int, state, lines: list[str], cfg) -> None:
    """Checkpoint ``generation`` of a run: its ``MetaState`` and the ``metrics.jsonl`` lines
    written so far (verbatim, so a resumed run rewrites the file byte for byte)."""
    save(store, generation, {"state": state, "metrics": list(lines)}, cfg, kind="run",
         generation=int(generation))


def check_run(step: int, extra: dict, payload) -> None:
    """CheckpointError unless the payload is a run's checkpoint of generation ``step``."""
    if extra.get("kind") != "run" or extra.get("generation") != step:
        raise CheckpointError(f"metadata does not describe generation {step} of a run")
    if not isinstance(payload, dict) or len(payload.get("metrics", ())) != step:
        raise CheckpointError(f"does not hold the {step} metrics rows of generation {step}")
    if int(np.asarray(payload["state"].generation)) != step:
        raise CheckpointError(f"state is at generation "
                              f"{int(np.asarray(payload['state'].generation))}, not {step}")


def run_label(step: int) -> str:
    return f"checkpoint at generation {step}"


def read_run(store: Store, step: int, meta) -> tuple:
    """``(state, metrics lines)`` of checkpoint ``step`` (analysis; no config check, nothing
    moved). Raises CheckpointError."""
    extra = store.read_extra(step)
    payload = decode(extra.get("structure"), store.read(step, extra), state_template(meta))
    check_run(step, extra, payload)
    return payload["state"], payload["metrics"]
