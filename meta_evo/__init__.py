"""meta-evo: meta-evolution of base optimizers on Brax physics, with jitted kernels that measure
when the evolved base optimizers become learned optimizers, across selection pressure.

Public API: ``load_config``, ``run``, ``sweep``, ``resume``, ``analyze``, ``load_run``,
``Config``, ``ConfigError``, ``Meta``.
"""

from meta_evo.config import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config", "run", "Meta", "enable_compilation_cache",
           "resume", "analyze", "load_run", "sweep"]
__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing meta_evo stays cheap (no brax import) for the CLI
    if name in ("run", "enable_compilation_cache", "resume"):
        from meta_evo import api
        return getattr(api, name)
    if name in ("analyze", "load_run"):
        from meta_evo import analysis
        return getattr(analysis, name)
    if name == "sweep":
        from meta_evo.sweep import sweep
        return sweep
    if name == "Meta":
        from meta_evo.meta import Meta
        return Meta
    raise AttributeError(name)
