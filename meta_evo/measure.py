"""From an evolved ``theta`` to the measurement kernels' inputs, and the kernels' outputs.

For held-out tasks ``tau_1..tau_n`` (fixed by ``cfg.measure.seed``; inside the training region
when ``task.train_region`` is set) this runs, in one jittable program that vmaps over many
``theta``:

- the lifetime on each task, recording ``phi_0..phi_K`` (``[n, K+1, D_phi]``);
- the lifetime curves ``curve[a, k] = R_{tau_a}(phi_k^(a))`` (``[n, K+1]``);
- the cross-task matrix ``M[a, b] = R_{col_b}(phi_K^(a))`` (``[n, n + n_proxy]``): the n tasks,
  then the family's proxy objectives, which may depend on the row (the nearest in-region task,
  the mean training task);
- reference scores of draws from the agent's initializer on each task (``[n, R]``);
- an antithetic ES estimate of the gradient of ``R_tau`` at each ``phi_k`` for update alignment;

and applies the kernels: lifetime gain, objective sensitivity, behavioral objective (accuracy
over the task columns, proxy share), optimization power of phi_K and phi_0 in bits and the
online share, and the mean update alignment over the steps that moved. Two more sets of rows
use the same lifetimes and scores:

- **pool** (``measure.pool_tasks`` rows, the first tasks of the training pool): a task-columns
  matrix ``pool_matrix [n_p, n_p]``, of which the first ``b = min(diversity, n_p)`` rows and
  columns are tasks the learner was trained on (all ``n_p`` when diversity is 0);
  ``pool_behavioral_accuracy`` (chance ``1 / b``) and ``pool_objective_sensitivity`` are taken
  over that block. A task identifier is accurate here and at chance on held-out tasks
  (Kirsch et al. 2022).
- **out of distribution** (only with a training region): held-out tasks outside the region,
  with the same columns, giving ``ood_*`` scalars and ``ood_matrix``.

Every arm is measured with the given reward. Held-out returns average
``cfg.task.eval_episodes`` rollouts with reset keys shared across columns (common random
numbers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import kernels
from meta_evo.learners import antithetic_noise, make_lifetime

SCALARS = ("lifetime_gain", "objective_sensitivity", "behavioral_accuracy", "proxy_share",
           "op_final_bits", "op_initial_bits", "online_share", "update_alignment",
           "return_initial", "return_final", "pool_behavioral_accuracy",
           "pool_objective_sensitivity")
OOD_SCALARS = ("ood_lifetime_gain", "ood_objective_sensitivity", "ood_behavioral_accuracy",
               "ood_proxy_share", "ood_return_final")
STEP_THRESHOLD = 1e-6  # a step counts as a move when |step| > this times (1 + |phi_k|)


def heldout_tasks(meta, inside: bool = True) -> jax.Array:
    """The held-out tasks ``[n, task_dim]``, fixed by ``cfg.measure.seed``: from the whole
    distribution, or inside (``inside``) / outside the training region when one is set."""
    ms = meta.cfg.measure
    region = meta.cfg.task.train_region
    if region == "none":
        keys = jax.random.split(jax.random.PRNGKey(ms.seed), ms.heldout_tasks)
        return jax.vmap(meta.family.sample_task)(keys)
    key = jax.random.fold_in(jax.random.PRNGKey(ms.seed), 0 if inside else 1)
    return meta.family.heldout_tasks(key, ms.heldout_tasks, region, inside)


def proxy_names(meta) -> tuple[str, ...]:
    """Names of the proxy columns of the cross-task matrix, in order."""
    ms, t = meta.cfg.measure, meta.cfg.task
    return tuple(meta.family.matrix_proxy_names(t.train_region, ms.proxies))


def _block_mask(n: int, diversity) -> jax.Array:
    """``[n]`` bool: the pool rows the learner was trained on (all when diversity is 0)."""
    d = jnp.asarray(diversity, jnp.int32)
    size = jnp.where(d > 0, jnp.minimum(d, n), n)
    return jnp.arange(n) < size


def block_accuracy(matrix: jax.Array, valid: jax.Array) -> jax.Array:
    """Accuracy over the valid block of a square task matrix ``[n, n]``: for each valid row,
    whether its best valid column is its own task (chance ``1 / sum(valid)``)."""
    n = matrix.shape[0]
    clean = jnp.where(jnp.isnan(matrix) | ~valid[None, :], -jnp.inf, matrix)
    hit = (jnp.argmax(clean, axis=-1) == jnp.arange(n)) & valid
    return jnp.sum(hit) / jnp.maximum(jnp.sum(valid), 1)


def block_sensitivity(matrix: jax.Array, valid: jax.Array) -> jax.Array:
    """``kernels.objective_sensitivity`` over the valid block (0 for a block of one task)."""
    b = jnp.sum(valid)
    pair = valid[:, None] & valid[None, :]
    centered = jnp.where(pair, matrix - matrix[:1, :], 0.0)
    eye = jnp.eye(matrix.shape[0], dtype=bool)
    mean_diag = jnp.sum(jnp.where(eye, centered, 0.0)) / jnp.maximum(b, 1)
    mean_off = jnp.sum(jnp.where(eye, 0.0, centered)) / jnp.maximum(b * (b - 1), 1)
    vals = jnp.where(pair, matrix, 0.0)
    mean = jnp.sum(vals) / jnp.maximum(b * b, 1)
    std = jnp.sqrt(jnp.sum(jnp.where(pair, jnp.square(matrix - mean), 0.0)) /
                   jnp.maximum(b * b, 1))
    return jnp.where(b >= 2, (mean_diag - mean_off) / (std + 1e-8), 0.0)


def heldout_metrics(curves: jax.Array, matrix: jax.Array, refs: jax.Array,
                    alignment: jax.Array) -> dict:
    """The held-out scalars of ``SCALARS`` (but the pool ones) from the lifetime curves
    ``[n, K(+1)]``, the cross-task matrix ``[n, n + n_proxy]``, the reference scores ``[n, R]``
    and the mean update alignment, with the arrays the report draws."""
    op_f, tail_f = jax.vmap(kernels.optimization_power_bits)(curves[:, -1], refs)
    op_i, tail_i = jax.vmap(kernels.optimization_power_bits)(curves[:, 0], refs)
    op_f, op_i = jnp.mean(op_f), jnp.mean(op_i)
    predicted, accuracy = kernels.behavioral_objective(matrix)
    return {
        "lifetime_gain": jnp.mean(kernels.lifetime_gain(curves)),
        "objective_sensitivity": kernels.objective_sensitivity(matrix),
        "behavioral_accuracy": accuracy,
        "proxy_share": kernels.proxy_share(matrix),
        "op_final_bits": op_f,
        "op_initial_bits": op_i,
        "online_share": kernels.online_share(op_f, op_i),
        "update_alignment": alignment,
        "return_initial": jnp.mean(curves[:, 0]),
        "return_final": jnp.mean(curves[:, -1]),
        "tail_used": jnp.mean(jnp.concatenate([tail_f, tail_i]).astype(jnp.float32)),
        "curve": jnp.mean(curves, axis=0),
        "curves": curves,
        "matrix": matrix,
        "predicted": predicted,
    }


def pool_metrics(pool_matrix: jax.Array, diversity) -> dict:
    """The training-pool scalars over the block the learner was trained on, and the matrix."""
    valid = _block_mask(pool_matrix.shape[0], diversity)
    return {"pool_behavioral_accuracy": block_accuracy(pool_matrix, valid),
            "pool_objective_sensitivity": block_sensitivity(pool_matrix, valid),
            "pool_size": jnp.sum(valid).astype(jnp.int32),
            "pool_matrix": pool_matrix}


def ood_metrics(curves: jax.Array, matrix: jax.Array) -> dict:
    """The out-of-distribution scalars (``OOD_SCALARS``) of rows outside the training region,
    with their curves and matrix."""
    return {"ood_lifetime_gain": jnp.mean(kernels.lifetime_gain(curves)),
            "ood_objective_sensitivity": kernels.objective_sensitivity(matrix),
            "ood_behavioral_accuracy": kernels.behavioral_objective(matrix)[1],
            "ood_proxy_share": kernels.proxy_share(matrix),
            "ood_return_final": jnp.mean(curves[:, -1]),
            "ood_curves": curves,
            "ood_matrix": matrix}


def make_measure(meta, learner_evaluate=None):
    """Factory: ``fn(theta [D_theta], key, diversity=task.diversity) -> dict``.

    The dict holds the scalars named in ``SCALARS`` (and ``OOD_SCALARS`` with a training
    region) plus ``curve [K+1]`` (mean over held-out tasks), ``curves [n, K+1]``, ``matrix
    [n, n + n_proxy]``, ``predicted [n]`` (the argmax task column of each row), ``pool_matrix
    [n_p, n_p]`` and ``tail_used`` (fraction of OP estimates from the Gaussian tail).
    ``diversity`` (traced) says which pool tasks the learner was trained on and sets the mean
    training task proxy. ``learner_evaluate(phi, tau, key)`` is what the learner optimizes
    during its lifetime (default: the task's own return); tests pass a proxy to build a
    proxy-pursuer. An ``rl2`` learner (no phi) is measured from behaviour by
    :func:`make_measure_rl2`: the same keys, with curves of K entries (its episodes).
    """
    if getattr(meta.learner, "name", "") == "rl2":  # no phi: measured from behaviour
        return make_measure_rl2(meta)
    cfg, fam, agent, learner = meta.cfg, meta.family, meta.agent, meta.learner
    ms, region = cfg.measure, cfg.task.train_region
    evaluate = meta.evaluate
    # every arm is measured with the given reward: arms differ only in the channel they were
    # evolved under, never in how they are measured
    lifetime = make_lifetime(learner, learner_evaluate or evaluate, record_curve=True,
                             channel="given")
    taus = heldout_tasks(meta, inside=True)
    taus_ood = heldout_tasks(meta, inside=False) if region != "none" else None
    pool = meta.pool
    n_pool = ms.pool_tasks
    n_eval, n_ref, n_align, sig = (cfg.task.eval_episodes, ms.reference_samples,
                                   ms.alignment_samples, ms.alignment_noise)

    def columns(rows, diversity):
        """Per-row columns ``[n, n + n_proxy, task_dim]``: the tasks, then the proxies."""
        return fam.matrix_columns(rows, region, pool, diversity, ms.proxies).astype(rows.dtype)

    def scores(phis, tau_rows, key):
        """Mean return over ``n_eval`` rollouts of each ``phis[i]`` on ``tau_rows[i]``: ``[B]``.
        Every rollout of a measurement goes through this one batched call, so the program holds
        one rollout besides the lifetime's (a Brax rollout costs 10-60 s to compile on CPU)."""
        def one(k):
            return jax.vmap(evaluate, (0, 0, None))(phis, tau_rows, k)
        return jnp.mean(jax.vmap(one)(jax.random.split(key, n_eval)), axis=0)

    def per_task(theta, tau, cols, key, full: bool):
        """One row: the lifetime on ``tau``, its curve, its matrix row over ``cols [C, D]``
        and, when ``full``, reference scores and the update alignment of each step."""
        k_life, k_eval, k_ref, k_align = jax.random.split(key, 4)
        _, aux = lifetime(theta, tau, k_life)
        phis = aux["phis"]  # [K+1, D_phi]
        n_k, d = phis.shape[0] - 1, phis.shape[1]
        n_col = cols.shape[0]
        parts = [phis, jnp.broadcast_to(phis[-1], (n_col, d))]
        n_ref_used = n_ref if full else 0
        # antithetic probes around each phi_k, k < K, for the ES gradient estimate (none for a
        # learner that never moves: its alignment is 0 by definition)
        n_probe = n_k if (full and learner.num_candidates > 0) else 0
        if full:
            parts.append(jax.vmap(agent.init)(jax.random.split(k_ref, n_ref)))  # [R, D_phi]
        eps = jax.vmap(lambda k: antithetic_noise(k, n_align, d))(
            jax.random.split(k_align, max(n_probe, 1))[:n_probe])  # [K, S, D_phi]
        parts.append((phis[:n_probe, None, :] + sig * eps).reshape(-1, d))  # [K*S, D_phi]
        batch = jnp.concatenate(parts)
        tau_b = jnp.broadcast_to(tau, (batch.shape[0], tau.shape[-1]))
        tau_b = tau_b.at[n_k + 1:n_k + 1 + n_col].set(cols)
        out = scores(batch, tau_b, k_eval)
        curve = out[:n_k + 1]  # [K+1]
        row = out[n_k + 1:n_k + 1 + n_col]  # [C]
        refs = out[n_k + 1 + n_col:n_k + 1 + n_col + n_ref_used]  # [R]
        probe = out[n_k + 1 + n_col + n_ref_used:].reshape(n_probe, n_align)  # [K, S]
        half = n_align // 2
        grads = jnp.einsum("ks,ksd->kd", probe[:, :half] - probe[:, half:],
                           eps[:, :half]) / (2.0 * sig * half)  # [K, D_phi]
        steps = (phis[1:] - phis[:-1])[:n_probe]  # [K, D_phi]
        cos = kernels.update_alignment(steps, grads)  # [K]
        # a step counts as a move only above a relative threshold: a learner whose steps are
        # float rounding (1e-9) has no direction to compare
        scale = 1.0 + jnp.linalg.norm(phis[:n_probe], axis=-1)
        moved = jnp.linalg.norm(steps, axis=-1) > STEP_THRESHOLD * scale
        return curve, row, refs, cos, moved

    def rows_of(theta, rows, cols, key, full):
        keys = jax.random.split(key, rows.shape[0])
        return jax.vmap(per_task, (None, 0, 0, 0, None))(theta, rows, cols, keys, full)

    def measure(theta, key, diversity=None):
        diversity = cfg.task.diversity if diversity is None else diversity
        k_main, k_pool, k_ood = jax.random.split(key, 3)
        curves, matrix, refs, cos, moved = rows_of(theta, taus, columns(taus, diversity),
                                                   k_main, True)
        n_moved = jnp.sum(moved)
        align = jnp.where(n_moved > 0, jnp.sum(jnp.where(moved, cos, 0.0)) /
                          jnp.maximum(n_moved, 1), 0.0)
        # the pool: the first n_p training tasks, task columns only
        prow = pool[:n_pool]
        pcols = jnp.broadcast_to(prow, (n_pool, *prow.shape))
        _, pool_matrix, _, _, _ = rows_of(theta, prow, pcols, k_pool, False)
        out = {**heldout_metrics(curves, matrix, refs, align),
               **pool_metrics(pool_matrix, diversity)}
        if taus_ood is not None:
            oc, om, _, _, _ = rows_of(theta, taus_ood, columns(taus_ood, diversity), k_ood, False)
            out.update(ood_metrics(oc, om))
        return out

    return measure


def make_measure_rl2(meta):
    """The measurement of an ``rl2`` learner (no ``phi``), selected by :func:`make_measure`:
    ``fn(theta [D_theta], key, diversity=task.diversity) -> dict`` with the keys of the phi
    path, measured from behaviour alone (DESIGN "Learners", issue 9):

    - the lifetime curve is the own-task return of each of the K episodes: ``curve [K]`` and
      ``curves [n, K]`` (K entries, not K+1: there is no phi_0 to score before the first
      episode; ``curves[:, 0]`` is the first episode, which ``op_initial_bits`` and
      ``return_initial`` read, ``curves[:, -1]`` the last);
    - matrix row a is the final episode's recorded trajectory scored under every column
      (``family.score(final, column)``, the reward recomputed from the recorded states and
      actions; no rerun), so ``matrix[a, a] == curves[a, -1]`` exactly;
    - reference scores for optimization power: the first episode, from the same reset key as
      the learner's own first episode, of ``measure.reference_samples`` random policies of the
      same network: GRU weights drawn as ``init_theta`` draws them, the output layer (zero at
      meta-init, so every action would be 0) drawn lecun-normal as flax's Dense initializer
      does, bias 0 (they run whole K-episode lifetimes in the measurement's one batched
      lifetime call, of which the first episode is read: K times the env steps of a
      one-episode program, and one Brax rollout less to compile);
    - update alignment is defined only where there is a phi: NaN here (no step ever moves).

    Every arm is measured with the given reward (an rl2 learner built with ``reward: given``;
    the theta layout is the same in every channel). ``task.eval_episodes`` is not used: each
    row is one lifetime, as the fitness is. Pool and out-of-distribution rows as for the phi
    path, with the same lifetimes and scores.
    """
    import flax.linen as nn
    from jax.flatten_util import ravel_pytree

    from meta_evo.learners.rl2 import RL2

    cfg, fam, lr = meta.cfg, meta.family, meta.learner
    ms = cfg.measure
    region = getattr(cfg.task, "train_region", "none")
    given = lr if lr.reward == "given" else RL2(fam, lr.K, lr.T, lr.hidden, reward="given")
    taus = heldout_tasks(meta)
    taus_ood = heldout_tasks(meta, inside=False) if region != "none" else None
    pool = meta.pool
    n_pool = getattr(ms, "pool_tasks", 0)
    n_ref = ms.reference_samples

    def columns(rows, diversity):
        return fam.matrix_columns(rows, region, pool, diversity, ms.proxies).astype(rows.dtype)

    def random_theta(key):
        k_net, k_out = jax.random.split(key)
        params = given.unravel(given.init_theta(k_net))
        out = params["params"]["out"]
        kernel = nn.initializers.lecun_normal()(k_out, out["kernel"].shape, out["kernel"].dtype)
        params = {**params, "params": {**params["params"], "out": {**out, "kernel": kernel}}}
        return ravel_pytree(params)[0]

    def lifetimes(thetas, rows, keys):
        """Every lifetime of a measurement in one vmapped call (one copy of the episode in the
        program: a Brax rollout costs 10-60 s to compile on CPU): ``(returns [B, K], final)``."""
        life = jax.vmap(given.lifetime)(thetas, rows, keys)
        return life["returns"], life["final"]

    def measure(theta, key, diversity=None):
        diversity = cfg.task.diversity if diversity is None else diversity
        k_main, k_pool, k_ood = jax.random.split(key, 3)
        sets = [(taus, k_main)] + ([(pool[:n_pool], k_pool)] if n_pool else [])
        sets += [(taus_ood, k_ood)] if taus_ood is not None else []
        # each row's lifetime key: the first of two split from the row key
        keys = [jax.vmap(lambda k: jax.random.split(k)[0])(jax.random.split(k, r.shape[0]))
                for r, k in sets]
        rows = jnp.concatenate([r for r, _ in sets])
        row_keys = jnp.concatenate(keys)
        n_rows, n = rows.shape[0], taus.shape[0]
        # the reference policies play the first episode of each held-out row's lifetime, from
        # its reset key (common random numbers); they run K episodes in the same call, of which
        # the first is used (K x the env steps of a one-episode program, one compile less)
        ref_thetas = jax.vmap(random_theta)(jax.random.split(jax.random.fold_in(k_main, 1),
                                                              n * n_ref))
        thetas = jnp.concatenate([jnp.broadcast_to(theta, (n_rows, theta.shape[-1])),
                                  ref_thetas])
        returns, final = lifetimes(thetas, jnp.concatenate([rows, jnp.repeat(taus, n_ref, 0)]),
                                   jnp.concatenate([row_keys, jnp.repeat(keys[0], n_ref, 0)]))
        refs = returns[n_rows:, 0].reshape(n, n_ref)  # [n, R]
        final = jax.tree.map(lambda x: x[:n_rows], final)

        def matrix_of(lo, hi, cols):
            traj = jax.tree.map(lambda x: x[lo:hi], final)
            # row a: its recorded last episode scored under each of its columns (no rerun)
            return jax.vmap(lambda tr, cs: jax.vmap(fam.score, (None, 0))(tr, cs))(traj, cols)

        curves = returns[:n]  # [n, K]
        matrix = matrix_of(0, n, columns(taus, diversity))
        # update alignment needs a phi: NaN here (no step ever moves)
        out = heldout_metrics(curves, matrix, refs, jnp.full((), jnp.nan, jnp.float32))
        lo = n
        if n_pool:
            prow = pool[:n_pool]
            pool_matrix = matrix_of(lo, lo + n_pool, jnp.broadcast_to(prow, (n_pool, *prow.shape)))
            lo += n_pool
            out.update(pool_metrics(pool_matrix, diversity))
        if taus_ood is not None:
            oc = returns[lo:lo + taus_ood.shape[0]]
            om = matrix_of(lo, lo + taus_ood.shape[0], columns(taus_ood, diversity))
            out.update(ood_metrics(oc, om))
        return out

    return measure


def measure_theta(meta, theta, key=None, diversity=None):
    """Convenience: jit and run ``make_measure(meta)`` on one ``theta``; numpy dict back."""
    import numpy as np

    fn = jax.jit(make_measure(meta))
    d = meta.cfg.task.diversity if diversity is None else diversity
    out = fn(jnp.asarray(theta), jax.random.PRNGKey(0) if key is None else key, d)
    return {k: np.asarray(v) for k, v in out.items()}
