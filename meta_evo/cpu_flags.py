"""XLA:CPU flags that must be set before the JAX backend starts (so: no jax-heavy imports here).

Importing ``evosax.algorithms`` (hence ``meta_evo.meta``, ``meta_evo.sweep``,
``meta_evo.single_run``) starts the backend, so the command line calls :func:`cpu_workaround`
first, on every subcommand, before anything imports jax (``meta_evo.cli`` imports only
``meta_evo.config``, which does not).
"""

from __future__ import annotations

import os
import sys

EIGEN_FLAG = "--xla_cpu_multi_thread_eigen=false"


def cpu_workaround() -> bool:
    """Turn off XLA:CPU's multi-threaded Eigen calls before the backend starts; True if set.

    With jax 0.10 on 2 CPU cores, the vmapped measurement program on Brax reacher died with
    SIGSEGV in a ``tf_XLAEigen`` worker thread (3 of 3 runs with the first, five-rollout
    ``make_measure``; 1 of 7 with the batched one), and ran with multi-threaded Eigen off,
    giving the same numbers. The flag must be in ``XLA_FLAGS`` before the backend starts, so
    this acts only when none has (the command line calls it before any import of jax); an
    ``XLA_FLAGS`` that names the flag is left alone. It never affects GPU or TPU programs.
    Before jax is imported it only sets the variable (importing jax to check would cost time).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" in flags:
        return "xla_cpu_multi_thread_eigen=false" in flags
    if "jax" in sys.modules:  # else no backend can have started: nothing to import to check
        try:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return False
        except (ImportError, AttributeError):  # pragma: no cover - private API moved
            return False
    os.environ["XLA_FLAGS"] = f"{flags} {EIGEN_FLAG}".strip()
    return True
