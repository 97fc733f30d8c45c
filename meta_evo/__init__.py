"""meta-evo: meta-evolution of base optimizers on Brax physics, with jitted kernels that measure
when the evolved base optimizers become learned optimizers, across selection pressure.

Public API: ``load_config``, ``run``, ``sweep``, ``resume``, ``analyze``, ``load_run``,
``load_sweep`` (a finished sweep as tables, thetas and rollouts), ``rollout`` (one lifetime of
a learner, step by step), ``Config``, ``ConfigError``, ``Meta``.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path


class _CheckoutKernels(importlib.abc.MetaPathFinder):
    """Finds ``meta_evo.kernels`` in a source checkout, where it is the folder ``kernels/`` beside
    ``meta_evo/`` (an installed copy has it at ``meta_evo/kernels``, mapped by pyproject)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, name, path=None, target=None):
        if name != "meta_evo.kernels":
            return None
        return importlib.util.spec_from_file_location(
            name, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)])


_here = Path(__file__).resolve().parent
if not (_here / "kernels").is_dir() and (_here.parent / "kernels" / "__init__.py").is_file():
    sys.meta_path.append(_CheckoutKernels(_here.parent / "kernels"))

from meta_evo.config import Config, ConfigError, load_config  # noqa: E402

__all__ = ["Config", "ConfigError", "load_config", "run", "Meta", "enable_compilation_cache",
           "resume", "analyze", "load_run", "sweep", "load_sweep", "rollout"]
__version__ = "0.1.0"


def __getattr__(name):  # lazy: importing meta_evo stays cheap (no brax import) for the CLI
    if name in ("run", "resume"):
        from meta_evo import single_run
        return getattr(single_run, name)
    if name == "enable_compilation_cache":
        from meta_evo.compilation_cache import enable_compilation_cache
        return enable_compilation_cache
    if name == "analyze":
        from meta_evo.analysis import analyze
        return analyze
    if name == "load_run":
        from meta_evo.run_reader import load_run
        return load_run
    if name == "sweep":
        from meta_evo.sweep import sweep
        return sweep
    if name == "load_sweep":
        from meta_evo.results import load_sweep
        return load_sweep
    if name == "rollout":
        from meta_evo.rollout import rollout
        return rollout
    if name == "Meta":
        from meta_evo.meta import Meta
        return Meta
    raise AttributeError(name)
