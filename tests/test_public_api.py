"""The names ``import meta_evo`` offers are the functions the README shows, on every access,
even where a submodule of the same name (``meta_evo.sweep``, ``meta_evo.rollout``) is imported
on the way. Run in a fresh interpreter: nothing imported before."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import meta_evo
names = ["run", "resume", "sweep", "load_sweep", "rollout", "analyze", "load_run",
         "enable_compilation_cache", "Meta", "load_config"]
first = {n: getattr(meta_evo, n) for n in names}
from meta_evo.sweep import arms_of  # binds nothing over meta_evo.sweep now
import meta_evo.rollout
for n in names:
    again = getattr(meta_evo, n)
    assert again is first[n] and callable(again) and not isinstance(again, type(meta_evo)), n
assert set(names) - {"Meta"} <= set(meta_evo.__all__) | {"load_config"}
print("ok")
"""


def test_public_names_stay_functions():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
