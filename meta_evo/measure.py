"""From an evolved ``theta`` to the measurement kernels' inputs, and the kernels' outputs.

For held-out tasks ``tau_1..tau_n`` (fixed by ``cfg.measure.seed``) this runs, in one jittable
program that vmaps over many ``theta``:

- the lifetime on each task, recording ``phi_0..phi_K`` (``[n, K+1, D_phi]``);
- the lifetime curves ``curve[a, k] = R_{tau_a}(phi_k^(a))`` (``[n, K+1]``);
- the cross-task matrix ``M[a, b] = R_{col_b}(phi_K^(a))`` with the family's proxy objectives as
  extra columns (``[n, n + n_proxy]``);
- reference scores of draws from the agent's initializer on each task (``[n, R]``);
- an antithetic ES estimate of the gradient of ``R_tau`` at each ``phi_k`` for update alignment;

and applies the kernels: lifetime gain, objective sensitivity, behavioral objective (accuracy,
proxy share), optimization power of phi_K and phi_0 in bits and the online share, and the mean
update alignment. Held-out returns average ``cfg.task.eval_episodes`` rollouts with reset keys
shared across columns (common random numbers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import kernels
from meta_evo.learners import antithetic_noise, make_lifetime

SCALARS = ("lifetime_gain", "objective_sensitivity", "behavioral_accuracy", "proxy_share",
           "op_final_bits", "op_initial_bits", "online_share", "update_alignment",
           "return_initial", "return_final")


def heldout_tasks(meta) -> jax.Array:
    """The held-out tasks ``[n, task_dim]``, fixed by ``cfg.measure.seed``."""
    ms = meta.cfg.measure
    keys = jax.random.split(jax.random.PRNGKey(ms.seed), ms.heldout_tasks)
    return jax.vmap(meta.family.sample_task)(keys)


def make_measure(meta, learner_evaluate=None):
    """Factory: ``fn(theta [D_theta], key) -> dict``.

    The dict holds the scalars named in ``SCALARS`` plus ``curve [K+1]`` (mean over held-out
    tasks), ``curves [n, K+1]``, ``matrix [n, n + n_proxy]``, ``predicted [n]`` (the argmax
    column of each row) and ``tail_used`` (fraction of OP estimates from the Gaussian tail).
    ``learner_evaluate(phi, tau, key)`` is what the learner optimizes during its lifetime
    (default: the task's own return); tests pass a proxy to build a proxy-pursuer.
    """
    cfg, fam, agent, learner = meta.cfg, meta.family, meta.agent, meta.learner
    ms = cfg.measure
    evaluate = meta.evaluate
    # every arm is measured with the given reward: arms differ only in the channel they were
    # evolved under, never in how they are measured
    lifetime = make_lifetime(learner, learner_evaluate or evaluate, record_curve=True,
                             channel="given")
    taus = heldout_tasks(meta)
    proxies = fam.proxy_tasks() if ms.proxies else jnp.zeros((0, fam.task_dim))
    columns = jnp.concatenate([taus, proxies.astype(taus.dtype)])  # [n + n_proxy, task_dim]
    n_eval, n_ref, n_align, sig = (cfg.task.eval_episodes, ms.reference_samples,
                                   ms.alignment_samples, ms.alignment_noise)

    def scores(phis, tau_rows, key):
        """Mean return over ``n_eval`` rollouts of each ``phis[i]`` on ``tau_rows[i]``: ``[B]``.
        Every rollout of a measurement goes through this one batched call, so the program holds
        one rollout besides the lifetime's (a Brax rollout costs 10-60 s to compile on CPU)."""
        def one(k):
            return jax.vmap(evaluate, (0, 0, None))(phis, tau_rows, k)
        return jnp.mean(jax.vmap(one)(jax.random.split(key, n_eval)), axis=0)

    def per_task(theta, tau, key):
        k_life, k_eval, k_ref, k_align = jax.random.split(key, 4)
        _, aux = lifetime(theta, tau, k_life)
        phis = aux["phis"]  # [K+1, D_phi]
        n_k, d = phis.shape[0] - 1, phis.shape[1]
        n_col = columns.shape[0]
        ref_phis = jax.vmap(agent.init)(jax.random.split(k_ref, n_ref))  # [R, D_phi]
        # antithetic probes around each phi_k, k < K, for the ES gradient estimate (none for a
        # learner that never moves: its alignment is 0 by definition)
        n_probe = n_k if learner.num_candidates > 0 else 0
        eps = jax.vmap(lambda k: antithetic_noise(k, n_align, d))(
            jax.random.split(k_align, max(n_probe, 1))[:n_probe])  # [K, S, D_phi]
        probes = (phis[:n_probe, None, :] + sig * eps).reshape(-1, d)  # [K*S, D_phi]
        batch = jnp.concatenate([phis, jnp.broadcast_to(phis[-1], (n_col, d)), ref_phis, probes])
        tau_b = jnp.broadcast_to(tau, (batch.shape[0], tau.shape[-1]))
        tau_b = tau_b.at[n_k + 1:n_k + 1 + n_col].set(columns)
        out = scores(batch, tau_b, k_eval)
        curve = out[:n_k + 1]  # [K+1]
        row = out[n_k + 1:n_k + 1 + n_col]  # [n + n_proxy]
        refs = out[n_k + 1 + n_col:n_k + 1 + n_col + n_ref]  # [R]
        probe = out[n_k + 1 + n_col + n_ref:].reshape(n_probe, n_align)  # [K, S]
        half = n_align // 2
        grads = jnp.einsum("ks,ksd->kd", probe[:, :half] - probe[:, half:],
                           eps[:, :half]) / (2.0 * sig * half)  # [K, D_phi]
        steps = (phis[1:] - phis[:-1])[:n_probe]  # [K, D_phi]
        cos = kernels.update_alignment(steps, grads)  # [K]
        moved = jnp.linalg.norm(steps, axis=-1) > 0
        return curve, row, refs, cos, moved

    def measure(theta, key):
        n = taus.shape[0]
        keys = jax.random.split(key, n)
        curves, matrix, refs, cos, moved = jax.vmap(per_task, (None, 0, 0))(theta, taus, keys)
        op_f, tail_f = jax.vmap(kernels.optimization_power_bits)(curves[:, -1], refs)
        op_i, tail_i = jax.vmap(kernels.optimization_power_bits)(curves[:, 0], refs)
        op_f, op_i = jnp.mean(op_f), jnp.mean(op_i)
        predicted, accuracy = kernels.behavioral_objective(matrix)
        n_moved = jnp.sum(moved)
        align = jnp.where(n_moved > 0, jnp.sum(jnp.where(moved, cos, 0.0)) /
                          jnp.maximum(n_moved, 1), 0.0)
        return {
            "lifetime_gain": jnp.mean(kernels.lifetime_gain(curves)),
            "objective_sensitivity": kernels.objective_sensitivity(matrix),
            "behavioral_accuracy": accuracy,
            "proxy_share": kernels.proxy_share(matrix),
            "op_final_bits": op_f,
            "op_initial_bits": op_i,
            "online_share": kernels.online_share(op_f, op_i),
            "update_alignment": align,
            "return_initial": jnp.mean(curves[:, 0]),
            "return_final": jnp.mean(curves[:, -1]),
            "tail_used": jnp.mean(jnp.concatenate([tail_f, tail_i]).astype(jnp.float32)),
            "curve": jnp.mean(curves, axis=0),
            "curves": curves,
            "matrix": matrix,
            "predicted": predicted,
        }

    return measure


def measure_theta(meta, theta, key=None):
    """Convenience: jit and run ``make_measure(meta)`` on one ``theta``; numpy dict back."""
    import numpy as np

    fn = jax.jit(make_measure(meta))
    out = fn(jnp.asarray(theta), jax.random.PRNGKey(0) if key is None else key)
    return {k: np.asarray(v) for k, v in out.items()}
