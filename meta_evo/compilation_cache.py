"""JAX's persistent compilation cache, turned on by every command: a Brax program compiled once
is reused by later processes (see the README's troubleshooting note on the XLA:CPU AOT loader's
log lines)."""

from __future__ import annotations

import os
from pathlib import Path

import jax

DEFAULT_CACHE = Path.home() / ".cache" / "meta-evo" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache (``$JAX_COMPILATION_CACHE_DIR`` or
    ``~/.cache/meta-evo/jax``): a Brax program compiled once is reused by later processes.

    ``META_EVO_COMPILATION_CACHE=off`` (or ``0``) leaves it off and returns None: no cache
    loads, so none of the XLA:CPU AOT loader's log lines (README, troubleshooting), at the
    cost of compiling every program in every process."""
    if path is None and os.environ.get("META_EVO_COMPILATION_CACHE", "").lower() in (
            "0", "off", "false", "no"):
        return None
    where = str(path or os.environ.get("JAX_COMPILATION_CACHE_DIR") or DEFAULT_CACHE)
    Path(where).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return where
