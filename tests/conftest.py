"""Test setup: JAX's persistent compilation cache outside the clone, so a second CI run (and
the subprocess tests) reuse compiled Brax programs instead of paying 10-60 s each."""

import os
from pathlib import Path

import jax

CACHE = os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache" / "meta-evo" / "jax-tests"))
Path(CACHE).mkdir(parents=True, exist_ok=True)
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
