"""The kernels on real physics: `amortized` versus `es` with a hand-set positive step size on
reacher_goal (spring backend, PD agent), on the same held-out targets.

    python examples/reacher_known_learners.py [--step 0.4] [--noise 0.3] [key=value ...]

Prints one row per learner; the figures in the issue-3 closing note come from this script.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

from meta_evo.compilation_cache import enable_compilation_cache
from meta_evo.config import load_config
from meta_evo.measure import SCALARS, make_measure
from meta_evo.meta import Meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", type=float, default=0.4)
    ap.add_argument("--noise", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*")
    ns = ap.parse_args()
    enable_compilation_cache()
    cfg = load_config(None, ["measure.heldout_tasks=6", *ns.overrides])
    rows = {}
    es = Meta(cfg, "es")
    d = es.agent.num_params
    key = jax.random.PRNGKey(ns.seed)
    theta_es = jnp.concatenate([jnp.zeros(d), jnp.array([ns.step, np.log(ns.noise)])])
    rows[f"es (step {ns.step})"] = jax.jit(make_measure(es))(theta_es, key)
    rows["es (step 0)"] = jax.jit(make_measure(es))(theta_es.at[d].set(0.0), key)
    am = Meta(cfg, "amortized")
    rows["amortized (phi_0 = 0)"] = jax.jit(make_measure(am))(jnp.zeros(d), key)
    cols = [k for k in SCALARS]
    print("| learner | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    out = {}
    for name, m in rows.items():
        vals = [float(m[k]) for k in cols]
        out[name] = dict(zip(cols, vals, strict=True))
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
