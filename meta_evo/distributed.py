"""Multi-host JAX: :func:`maybe_initialize_distributed` starts ``jax.distributed`` when asked.

Asked by the environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID``, optional ``JAX_LOCAL_DEVICE_IDS``; or ``META_EVO_DISTRIBUTED=1`` for cluster
auto-detection) or a settings mapping. It must run before any other JAX work, so this module
imports nothing heavy: the command line calls it right after the XLA:CPU flags, before a config
(whose task families import Brax) is read.
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
    jax.distributed.initialize(**kw)
    _distributed = True
    return True
