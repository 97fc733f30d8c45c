"""What ``pip install .`` puts in site-packages: the kernels as ``meta_evo.kernels`` and no
top-level package named ``kernels`` (that import name belongs to another published package)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_installation():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree = {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "meta_evo").rglob("__init__.py")}
    assert set(cfg["packages"]) == tree | {"meta_evo.kernels", "meta_evo.configs"}
    assert cfg["package-dir"] == {"meta_evo.kernels": "kernels"}


def test_installed_tree_has_meta_evo_kernels_and_no_top_level_kernels(tmp_path):
    src, target = tmp_path / "src", tmp_path / "site"  # a copy: the build writes build/ in it
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("meta_evo", "kernels"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(src)], check=True, cwd=tmp_path)
    assert (target / "meta_evo" / "kernels" / "power.py").is_file()
    assert (target / "meta_evo" / "configs" / "sweep_default.yaml").is_file()  # the defaults
    assert (target / "meta_evo" / "rundir" / "store.py").is_file()
    assert not (target / "kernels").exists()
    probe = ("import importlib.util, meta_evo.kernels as k; "
             "print(k.__file__); print(importlib.util.find_spec('kernels'))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)}).stdout.split("\n")
    assert out[0].startswith(str(target)) and out[1] == "None"
