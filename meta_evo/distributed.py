"""Multi-host JAX: :func:`maybe_initialize_distributed` starts ``jax.distributed`` when asked.

Asked by the environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``, optional ``JAX_LOCAL_DEVICE_IDS``; or ``META_EVO_DISTRIBUTED=1`` for cluster
auto-detection) or a settings mapping. It must run before any other JAX work, so this module
imports nothing heavy: the command line calls it right after the XLA:CPU flags, before a config
(whose task families import Brax) is read.

A multi-host job is SPMD: every process runs the same command on the same run directory
(a shared file system); the engine's mesh spans every process's devices, each process computes
its share of every group and the outputs are gathered to all (:class:`meta_evo.engine.GridProgram`);
process 0 alone writes the run directory (:func:`is_writer`), after the others wait for it to
exist (:func:`barrier`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_distributed = False


def _settings_get(settings, key):
    if settings is None:
        return None
    if isinstance(settings, Mapping):
        return settings.get(key)
    return getattr(settings, key, None)


def maybe_initialize_distributed(settings=None, env: Mapping[str, str] | None = None) -> bool:
    """Start multi-host JAX when asked; return whether this process runs distributed.

    Asked by ``settings`` (a mapping or object with ``coordinator_address``, ``num_processes``,
    ``process_id`` and optionally ``local_device_ids``; ``enabled=True`` alone means cluster
    auto-detection), else by the environment: ``JAX_COORDINATOR_ADDRESS`` (with
    ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, ``JAX_LOCAL_DEVICE_IDS`` as comma-separated ints),
    or ``META_EVO_DISTRIBUTED=1`` for auto-detection (SLURM, Open MPI, cloud TPU). Nothing asked:
    returns False and touches nothing. Idempotent. Must run before any other JAX computation.
    """
    import jax  # importing jax starts no backend

    global _distributed
    if _distributed or jax.distributed.is_initialized():
        _distributed = True
        return True
    env = os.environ if env is None else env
    kw: dict = {}
    addr = _settings_get(settings, "coordinator_address") or env.get("JAX_COORDINATOR_ADDRESS")
    enabled = bool(_settings_get(settings, "enabled")) or env.get(
        "META_EVO_DISTRIBUTED", "").lower() in ("1", "true", "yes")
    if not addr and not enabled:
        return False
    if addr:
        kw["coordinator_address"] = addr
        n = _settings_get(settings, "num_processes") or env.get("JAX_NUM_PROCESSES")
        pid = _settings_get(settings, "process_id")
        pid = env.get("JAX_PROCESS_ID") if pid is None else pid
        if n is not None:
            kw["num_processes"] = int(n)
        if pid is not None:
            kw["process_id"] = int(pid)
    ids = _settings_get(settings, "local_device_ids") or env.get("JAX_LOCAL_DEVICE_IDS")
    if ids:
        kw["local_device_ids"] = ([int(i) for i in ids.split(",")] if isinstance(ids, str)
                                  else list(ids))
    # XLA:CPU has cross-process collectives only through gloo (GPUs and TPUs bring their own);
    # the engine gathers each group's outputs to every process with one
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kw)
    _distributed = True
    return True


# --- the processes of a multi-host job -----------------------------------------------------------
def process_count() -> int:
    """Processes of the job (1 unless ``jax.distributed`` was started)."""
    import jax

    return jax.process_count()


def process_index() -> int:
    import jax

    return jax.process_index()


def is_writer() -> bool:
    """True on the one process that writes the run directory (process 0): every process runs
    the same programs on its share of every group (SPMD), and gets every output."""
    return process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches ``name`` (no-op in a single process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def agreed_signal(signum: int | None) -> int | None:
    """The signal every process acts on: in a multi-host job each process passes what it caught
    and all get the first one caught anywhere (a collective, so every process stops after the
    same checkpoint, none is left waiting in the next chunk); a single process gets its own."""
    if process_count() == 1:
        return signum
    import numpy as np
    from jax.experimental import multihost_utils

    caught = np.asarray(multihost_utils.process_allgather(np.int32(signum or 0)))
    caught = caught[caught > 0]
    return int(caught[0]) if caught.size else None
