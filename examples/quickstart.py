# %% [markdown]
# # meta-evo in a notebook: load a sweep, plot it, look inside one evolved learner
#
# This file is a notebook in the percent format (Jupyter with jupytext, VS Code, or plain
# `python examples/quickstart.py`); `examples/quickstart.ipynb` is the same cells
# (`python examples/make_notebook.py` writes it from this file).
#
# It reads a finished sweep. By default that is the built-in default sweep in `runs/default`
# (`meta-evo sweep --out runs/default`, about 10 minutes on 2 CPU cores); if the directory does
# not exist, the cell below runs that sweep there first. `META_EVO_SWEEP` names another
# directory, and `META_EVO_OVERRIDES` (space-separated `key=value`) changes the config of the
# sweep it runs (the test suite runs this file on a tiny sweep that way).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import meta_evo
from meta_evo.report.plots import lifetime_curves, phase_diagram

RUN = Path(os.environ.get("META_EVO_SWEEP", "runs/default"))
if not (RUN / "sweep.npz").is_file():
    default = Path(meta_evo.__file__).parent / "configs" / "sweep_default.yaml"
    overrides = os.environ.get("META_EVO_OVERRIDES", "").split()
    meta_evo.sweep(meta_evo.load_config(default, overrides), RUN)
sw = meta_evo.load_sweep(RUN)
print(sw)

# %% [markdown]
# ## The measurements as a table
#
# `sw.table` has one row per arm, grid point, measured generation and metric. Here: the
# lifetime gain (held-out return after the lifetime minus before it) at the last measured
# generation, mean over seeds, by arm, diversity and intensity. `sw.table.to_pandas()` gives a
# DataFrame where pandas is installed.

# %%
last = sw.generations()[-1]
gain = sw.table.where(metric="lifetime_gain", generation=last)
for arm in sw.arms:
    for d in np.unique(gain["diversity"]):
        rows = gain.where(arm=arm, diversity=d)
        means = [rows.where(intensity=i)["value"].mean() for i in np.unique(rows["intensity"])]
        print(f"{arm:8s} d = {d}:", "  ".join(f"{m:+.3f}" for m in means))

# %% [markdown]
# The report's per-level tests of the lifetime gain (learner minus control, paired by seed),
# with 95 % intervals; `significant` is the decision in the test's family (primary or
# exploratory, Holm-corrected as a whole).

# %%
tests = sw.tests.where(metric="lifetime_gain")
for r in tests.rows():
    print(f"{r['role']:11s} d = {r['diversity']}  i = {r['intensity']:g}  "
          f"difference {r['difference']:+.3f} "
          f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]  p {r['p_level']:.4f}  "
          f"significant {r['significant']}")

# %% [markdown]
# ## The report's figures, inline
#
# Every figure function returns its Figure and can draw into axes you give it.

# %%
fig = phase_diagram(sw.report)
fig = lifetime_curves(sw.report)

# %% [markdown]
# ## One evolved learner, step by step
#
# The learner evolved at the highest intensity on fresh tasks (d = 0), seed 0, and its control
# at the same point, each run for one lifetime on the same held-out task: the return of each
# proposal `phi_k`, and the learner's hidden state. Both are told the task's own returns, as in
# the measurement; a shuffled control was evolved on returns that carry no information about
# its task, so whatever path it takes, it takes on every task (one task cannot show this: the
# table above, over many tasks, does).

# %%
top = float(sw.points["intensity"].max())
point = {"intensity": top, "diversity": 0, "seed": 0}
task = sw.heldout_tasks(1, key=7)[0]
mine = sw.rollout(point, task, key=3)
ctrl = sw.rollout(point, task, arm=sw.arms[1], key=3)

fig, (a_ret, a_h) = plt.subplots(1, 2, figsize=(10, 3.6))
a_ret.plot(mine.returns, "o-", label=f"learner (i = {top:g})")
a_ret.plot(ctrl.returns, "s--", label=f"{sw.arms[1]} at the same point")
a_ret.set_xlabel("update k")
a_ret.set_ylabel("return of phi_k on the task")
a_ret.legend()
if mine.hidden is not None:
    im = a_h.imshow(mine.hidden.T, aspect="auto", cmap="coolwarm")
    a_h.set_xlabel("update k")
    a_h.set_ylabel("hidden unit")
    a_h.set_title("learner's hidden state")
    fig.colorbar(im, ax=a_h)
fig.tight_layout()
fig.savefig(RUN / "quickstart_rollout.png", dpi=110)
print(f"gain on this task: learner {mine.returns[-1] - mine.returns[0]:+.3f}, "
      f"{sw.arms[1]} {ctrl.returns[-1] - ctrl.returns[0]:+.3f}")
