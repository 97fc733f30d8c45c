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


# public name -> the module that owns it (imported on first use: importing meta_evo stays cheap,
# no brax import, for the CLI)
_LAZY = {"run": "single_run", "resume": "single_run", "analyze": "analysis",
         "enable_compilation_cache": "compilation_cache", "load_run": "run_reader",
         "sweep": "sweep", "load_sweep": "results", "rollout": "rollout", "Meta": "meta"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(name)
    value = getattr(importlib.import_module(f"meta_evo.{_LAZY[name]}"), name)
    # bound here, over the submodule that importing ``meta_evo.sweep`` (or ``.rollout``) binds to
    # the same name, so ``meta_evo.sweep`` stays the function on every later access
    globals()[name] = value
    return value
