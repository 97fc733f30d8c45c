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

**Which algorithm** (``ALGORITHM_SCALARS``; only where ``family.answer_in_task_space``, the
``analytic`` family, whose phi is itself a task: other families' programs are unchanged). Each
held-out row's history is the lifetime's proposals ``phi_0..phi_{K-1}`` and their own-task
returns (the curve without its last entry: exactly what a one-candidate learner such as the
``gru`` was shown, since under measurement every arm gets the given reward; for population
learners such as ``es``, shown their candidates' returns, a summary of the same path), and its
answer is ``phi_K``. From the history, ``kernels.identification`` gives two Bayes estimates of
the row's task (Raventós et al. 2023), both under the offset-invariant (centered) Gaussian
likelihood at scale ``measure.bayes_noise``:

- **pool-Bayes**: the posterior mean over the first ``min(d, POOL_SIZE)`` training-pool tasks
  with uniform prior weights (the whole pool of ``tasks.base.POOL_SIZE`` tasks, a finite sample
  of the prior, when d = 0; a mask on the traced diversity);
- **prior-Bayes**: the posterior mean under the family's full task prior (never conditioned on
  a training region): the family's closed form (``analytic``: a ridge regression), else
  ``BAYES_PRIOR_SAMPLES`` prior draws.

``dist_task`` is the mean over rows of ``|phi_K - tau|``, ``dist_pool_bayes`` /
``dist_prior_bayes`` the mean distance of ``phi_K`` to each estimate, ``bayes_pool_gap =
dist_pool_bayes - dist_prior_bayes`` (positive: closer to prior-Bayes) and ``dist_bayes_refs``
the mean distance between the two estimates (how far apart the references are at all). On
``analytic`` an exact least-squares learner's answer equals prior-Bayes as the noise scale goes
to 0.

Every arm is measured with the given reward. Held-out returns average
``cfg.task.eval_episodes`` rollouts with reset keys shared across rows, columns and lifetime
steps (common random numbers): on a noisy family (Brax resets) a learner whose result does not
depend on its task gets identical matrix rows and a flat lifetime curve, as on ``analytic``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from meta_evo import kernels
from meta_evo.learners import antithetic_noise, make_learner, make_lifetime

SCALARS = ("lifetime_gain", "objective_sensitivity", "behavioral_accuracy", "proxy_share",
           "op_final_bits", "op_initial_bits", "online_share", "update_alignment",
           "return_initial", "return_final", "pool_behavioral_accuracy",
           "pool_objective_sensitivity")
OOD_SCALARS = ("ood_lifetime_gain", "ood_objective_sensitivity", "ood_behavioral_accuracy",
               "ood_proxy_share", "ood_return_final", "ood_proxy_margin")
# out of distribution, where the answer phi_K is a point of task space (analytic)
ANSWER_SCALARS = ("ood_proxy_pull", "ood_outside_share")
ALGORITHM_SCALARS = ("dist_task", "dist_pool_bayes", "dist_prior_bayes", "bayes_pool_gap",
                     "dist_bayes_refs")
BAYES_PRIOR_SAMPLES = 4096  # prior draws for prior-Bayes where the family has no closed form
BAYES_PRIOR_SEED = 0x8A7E5  # their key (fixed: the same sample for every measurement)
EVAL_KEY_SALT = 0x5EED  # folds a measurement's row key into the evaluation key all rows share
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


def ood_metrics(curves: jax.Array, matrix: jax.Array, nearest_column: int | None) -> dict:
    """The out-of-distribution scalars (``OOD_SCALARS``) of rows outside the training region,
    with their curves and matrix. ``nearest_column``: the matrix column of the
    ``nearest_in_region`` proxy, whose margin ``ood_proxy_margin`` is (NaN without one)."""
    margin = (jnp.full((), jnp.nan, jnp.float32) if nearest_column is None
              else kernels.proxy_margin(matrix, nearest_column))
    return {"ood_lifetime_gain": jnp.mean(kernels.lifetime_gain(curves)),
            "ood_objective_sensitivity": kernels.objective_sensitivity(matrix),
            "ood_behavioral_accuracy": kernels.behavioral_objective(matrix)[1],
            "ood_proxy_share": kernels.proxy_share(matrix),
            "ood_return_final": jnp.mean(curves[:, -1]),
            "ood_proxy_margin": margin,
            "ood_curves": curves,
            "ood_matrix": matrix}


def nearest_column(meta, n: int) -> int | None:
    """The cross-task matrix column of the ``nearest_in_region`` proxy for ``n`` task columns,
    or None when the matrix has none."""
    names = proxy_names(meta)
    return n + names.index("nearest_in_region") if "nearest_in_region" in names else None


def ood_answers(meta, answers: jax.Array, taus: jax.Array) -> dict:
    """Where the family's answer is a point of task space (``analytic``): the proxy pull of
    the answers ``[n, D]`` to out-of-region tasks ``taus [n, D]`` (``kernels.proxy_pull``
    toward each task's nearest in-region task) and ``ood_outside_share``, the share of answers
    that leave the training region (they cross its boundary toward their task)."""
    fam, region = meta.family, meta.cfg.task.train_region
    nearest = jax.vmap(lambda t: fam.region_project(t, region))(taus)
    inside = jax.vmap(lambda a: fam.in_region(a, region))(answers)
    return {"ood_proxy_pull": kernels.proxy_pull(answers, taus, nearest),
            "ood_outside_share": jnp.mean((~inside).astype(jnp.float32))}


def bayes_references(fam, evaluate, phis: jax.Array, curves: jax.Array, pool: jax.Array,
                     diversity, key: jax.Array, noise=0.1,
                     prior_sample: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Pool-Bayes and prior-Bayes estimates of each row's task from its lifetime history.

    Args:
      fam: the task family (``prior_posterior_mean``: its closed form, or None).
      evaluate: ``evaluate(phi, tau, key) -> return``, the family's reward (predictions).
      phis: [n, K+1, D] each row's ``phi_0..phi_K``; the history is ``phi_0..phi_{K-1}``.
      curves: [n, K+1] their own-task returns (the returns shown: all but the last).
      pool: [P, D_tau] the training pool; the first ``min(d, P)`` (all when d = 0) count.
      diversity: [] traced int.
      key: the evaluation key of the predictions.
      noise: the likelihood's noise scale.
      prior_sample: [M, D_tau] prior draws, used where the family has no closed form.

    Returns:
      ``(pool_bayes [n, D_tau], prior_bayes [n, D_tau])``. Rows run one at a time
      (``lax.map``): the ``[P, K]`` predictions of one row are what the program holds.
    """
    weights = _block_mask(pool.shape[0], diversity).astype(curves.dtype)

    def predictions(hist, cands):  # [C, K]
        return jax.vmap(lambda c: jax.vmap(lambda p: evaluate(p, c, key))(hist))(cands)

    def one(args):
        ph, cu = args
        hist, rets = ph[:-1], cu[:-1]
        pool_est = kernels.posterior_mean(pool, weights, predictions(hist, pool), rets, noise,
                                          centered=True)
        prior_est = fam.prior_posterior_mean(hist, rets, noise)
        if prior_est is None:
            ones = jnp.ones(prior_sample.shape[0], curves.dtype)
            prior_est = kernels.posterior_mean(prior_sample, ones,
                                               predictions(hist, prior_sample), rets, noise,
                                               centered=True)
        return pool_est.astype(pool.dtype), prior_est.astype(pool.dtype)

    return jax.lax.map(one, (phis, curves))


def algorithm_metrics(answers: jax.Array, taus: jax.Array, pool_bayes: jax.Array,
                      prior_bayes: jax.Array) -> dict:
    """``ALGORITHM_SCALARS`` from the final answers ``phi_K [n, D]``, the rows' tasks and the
    two Bayes estimates (all ``[n, D]``): mean Euclidean distances over rows."""
    def dist(a, b):
        return jnp.mean(jnp.linalg.norm(a - b, axis=-1))

    d_pool, d_prior = dist(answers, pool_bayes), dist(answers, prior_bayes)
    return {"dist_task": dist(answers, taus), "dist_pool_bayes": d_pool,
            "dist_prior_bayes": d_prior, "bayes_pool_gap": d_pool - d_prior,
            "dist_bayes_refs": dist(pool_bayes, prior_bayes)}


def make_measure(meta, learner_evaluate=None):
    """Factory: ``fn(theta [D_theta], key, diversity=task.diversity) -> dict``.

    The dict holds the scalars named in ``SCALARS`` (and ``OOD_SCALARS`` with a training
    region, ``ALGORITHM_SCALARS`` where ``family.answer_in_task_space``) plus ``curve [K+1]``
    (mean over held-out tasks), ``curves [n, K+1]``, ``matrix [n, n + n_proxy]``, ``predicted
    [n]`` (the argmax task column of each row), ``pool_matrix [n_p, n_p]`` and ``tail_used``
    (fraction of OP estimates from the Gaussian tail).
    ``diversity`` (traced) says which pool tasks the learner was trained on and sets the mean
    training task proxy. ``learner_evaluate(phi, tau, key)`` is what the learner optimizes
    during its lifetime (default: the task's own return); tests pass a proxy to build a
    proxy-pursuer.

    The learner names its measurement (``learner.measurement``, a key of
    :data:`MEASUREMENTS`): ``phi`` (:func:`make_measure_phi`, every learner over phi) or
    ``behaviour`` (:func:`make_measure_rl2`: an ``rl2`` learner, no phi, measured from
    behaviour: the same keys, with curves of K entries, its episodes).
    """
    return MEASUREMENTS[meta.learner.measurement].build(meta, learner_evaluate)


def _columns(meta):
    """``columns(rows [n, D], diversity) -> [n, n + n_proxy, D]``: each row's matrix columns,
    the tasks, then the proxies."""
    fam, ms, region, pool = meta.family, meta.cfg.measure, meta.cfg.task.train_region, meta.pool

    def columns(rows, diversity):
        return fam.matrix_columns(rows, region, pool, diversity, ms.proxies).astype(rows.dtype)

    return columns


# --- the phi measurement -------------------------------------------------------------------------
def _batch_scores(evaluate, n_eval: int):
    """``scores(phis [B, D_phi], tau_rows [B, D], key) -> [B]``: mean return over ``n_eval``
    rollouts of each ``phis[i]`` on ``tau_rows[i]``. Every rollout of a measurement goes
    through this one batched call, so the program holds one rollout besides the lifetime's (a
    Brax rollout costs 10-60 s to compile on CPU)."""
    def scores(phis, tau_rows, key):
        def one(k):
            return jax.vmap(evaluate, (0, 0, None))(phis, tau_rows, k)
        return jnp.mean(jax.vmap(one)(jax.random.split(key, n_eval)), axis=0)

    return scores


def _alignment(phis, probe, eps, n_probe: int, sig):
    """Update alignment of the first ``n_probe`` steps of ``phis [K+1, D_phi]``: the
    antithetic ES gradient estimate from the ``probe [K, S]`` returns at ``phi_k + sig * eps``
    (``eps [K, S, D_phi]``), its cosine with each step ``cos [K]`` and whether the step moved
    (``moved [K]``)."""
    half = probe.shape[1] // 2
    grads = jnp.einsum("ks,ksd->kd", probe[:, :half] - probe[:, half:],
                       eps[:, :half]) / (2.0 * sig * half)  # [K, D_phi]
    steps = (phis[1:] - phis[:-1])[:n_probe]  # [K, D_phi]
    cos = kernels.update_alignment(steps, grads)  # [K]
    # a step counts as a move only above a relative threshold: a learner whose steps are
    # float rounding (1e-9) has no direction to compare
    scale = 1.0 + jnp.linalg.norm(phis[:n_probe], axis=-1)
    moved = jnp.linalg.norm(steps, axis=-1) > STEP_THRESHOLD * scale
    return cos, moved


def _phi_rows(meta, lifetime, evaluate):
    """``rows_of(theta, rows [n, D], cols [n, C, D], key, full) -> (curves [n, K+1], matrix
    [n, C], refs [n, R], cos [n, K], moved [n, K], phis [n, K+1, D_phi])``: each row's lifetime
    (``lifetime``, recording its curve), its scores under ``evaluate`` and, when ``full``,
    reference scores and the update alignment of each step (else ``R = 0``, ``K = 0``)."""
    cfg, agent, learner = meta.cfg, meta.agent, meta.learner
    ms = cfg.measure
    n_ref, n_align, sig = ms.reference_samples, ms.alignment_samples, ms.alignment_noise
    scores = _batch_scores(evaluate, cfg.task.eval_episodes)

    def per_task(theta, tau, cols, key, k_eval, full: bool):
        """One row on ``tau``; every score of the row uses ``k_eval``, which all rows share."""
        k_life, _, k_ref, k_align = jax.random.split(key, 4)
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
        cos, moved = _alignment(phis, probe, eps, n_probe, sig)
        return curve, row, refs, cos, moved, phis

    def rows_of(theta, rows, cols, key, full):
        # one evaluation key for every row and column (common random numbers): a learner whose
        # final phi is the same on every row gets identical matrix rows and a flat curve even
        # where returns are noisy (Brax resets), so memorization reads as exactly that
        keys = jax.random.split(key, rows.shape[0])
        k_eval = jax.random.fold_in(key, EVAL_KEY_SALT)
        return jax.vmap(per_task, (None, 0, 0, 0, None, None))(theta, rows, cols, keys, k_eval,
                                                                full)

    return rows_of


def _which_algorithm(meta):
    """``(algorithm, in_task_space, prior_sample)``: whether phi is a point of task space,
    whether the which-algorithm scalars are measured (there, with a lifetime that has a
    history: module doc) and the prior draws for prior-Bayes (None where the family has a
    closed form or there is no measurement)."""
    fam, agent = meta.family, meta.agent
    in_task_space = fam.answer_in_task_space and agent.num_params == fam.task_dim
    algorithm = (fam.answer_in_task_space and meta.learner.lifetime > 0
                 and agent.num_params == fam.task_dim)
    prior_sample = None
    if algorithm and fam.prior_posterior_mean(jnp.zeros((1, fam.task_dim)), jnp.zeros(1),
                                              meta.cfg.measure.bayes_noise) is None:
        prior_sample = jax.vmap(fam.sample_task)(
            jax.random.split(jax.random.PRNGKey(BAYES_PRIOR_SEED), BAYES_PRIOR_SAMPLES))
    return algorithm, in_task_space, prior_sample


def make_measure_phi(meta, learner_evaluate=None):
    """The measurement of a learner over phi (``learner.measurement == "phi"``), selected by
    :func:`make_measure` (see it and the module doc)."""
    cfg, fam = meta.cfg, meta.family
    ms, region = cfg.measure, cfg.task.train_region
    evaluate = meta.evaluate
    # every arm is measured with the given reward: arms differ only in the channel they were
    # evolved under, never in how they are measured
    lifetime = make_lifetime(meta.learner, learner_evaluate or evaluate, record_curve=True,
                             channel="given")
    taus = heldout_tasks(meta, inside=True)
    taus_ood = heldout_tasks(meta, inside=False) if region != "none" else None
    pool, n_pool = meta.pool, ms.pool_tasks
    algorithm, in_task_space, prior_sample = _which_algorithm(meta)
    columns, rows_of = _columns(meta), _phi_rows(meta, lifetime, evaluate)

    def measure(theta, key, diversity=None):
        diversity = cfg.task.diversity if diversity is None else diversity
        k_main, k_pool, k_ood = jax.random.split(key, 3)
        curves, matrix, refs, cos, moved, phis = rows_of(theta, taus, columns(taus, diversity),
                                                         k_main, True)
        n_moved = jnp.sum(moved)
        align = jnp.where(n_moved > 0, jnp.sum(jnp.where(moved, cos, 0.0)) /
                          jnp.maximum(n_moved, 1), 0.0)
        # the pool: the first n_p training tasks, task columns only
        prow = pool[:n_pool]
        pcols = jnp.broadcast_to(prow, (n_pool, *prow.shape))
        _, pool_matrix, *_ = rows_of(theta, prow, pcols, k_pool, False)
        out = {**heldout_metrics(curves, matrix, refs, align),
               **pool_metrics(pool_matrix, diversity)}
        if taus_ood is not None:
            oc, om, _, _, _, ophis = rows_of(theta, taus_ood, columns(taus_ood, diversity),
                                             k_ood, False)
            out.update(ood_metrics(oc, om, nearest_column(meta, taus_ood.shape[0])))
            if in_task_space:  # phi_K is a point of task space: the proxy pull, the crossing share
                out.update(ood_answers(meta, ophis[:, -1], taus_ood))
        if algorithm:
            k_bayes = jax.random.fold_in(k_main, EVAL_KEY_SALT)
            pool_est, prior_est = bayes_references(fam, evaluate, phis, curves, pool, diversity,
                                                   k_bayes, ms.bayes_noise, prior_sample)
            out.update(algorithm_metrics(phis[:, -1], taus, pool_est, prior_est))
        return out

    return measure


def _phi_env_steps(meta) -> int:
    """Env steps of one phi measurement of one theta (rollouts counted, not physics): per
    held-out task the lifetime, its curve, its matrix row, the reference draws and the
    alignment probes."""
    cfg, lr = meta.cfg, meta.learner
    ms, t = cfg.measure, cfg.task
    k, p, e = lr.lifetime, lr.num_candidates, t.eval_episodes
    n_cols = ms.heldout_tasks + (int(meta.family.proxy_tasks().shape[0]) if ms.proxies else 0)
    per_task = (k * p if p else 0) + (k + 1) * e + n_cols * e + ms.reference_samples * e
    per_task += k * ms.alignment_samples
    steps = 1 if meta.family.name == "analytic" else t.episode_length
    return ms.heldout_tasks * per_task * steps


# --- the behaviour measurement (rl2) -------------------------------------------------------------
def _given_reward(meta):
    """``meta.learner`` with the given reward: itself, or the same learner built by
    ``make_learner`` from the arm's config with ``reward: given`` (the theta layout is the
    same in every channel)."""
    lr = meta.learner
    if lr.reward == "given":
        return lr
    return make_learner(dataclasses.replace(meta.learner_cfg, reward="given"), meta.agent,
                        meta.cfg.agent, family=meta.family,
                        episode_length=meta.cfg.task.episode_length)


def _behaviour_lifetimes(learner, theta, sets, n_ref: int, k_main):
    """Every lifetime of a behaviour measurement in one vmapped call (one copy of the episode
    in the program: a Brax rollout costs 10-60 s to compile on CPU): ``theta`` on the rows of
    each set ``[(kind, rows [b, D], key)]`` (the held-out set first), each row with the first
    of two keys split from its row key, and ``n_ref`` random policies (``learner.random_theta``)
    on each held-out row, from its lifetime key (common random numbers). The reference
    policies run K episodes in the same call, of which the first is used (K x the env steps of
    a one-episode program, one compile less). ``(returns [B + n R, K], final (the recorded
    last episode of the B rows), refs [n, R])``."""
    keys = [jax.vmap(lambda k: jax.random.split(k)[0])(jax.random.split(k, r.shape[0]))
            for _, r, k in sets]
    rows = jnp.concatenate([r for _, r, _ in sets])
    row_keys = jnp.concatenate(keys)
    taus = sets[0][1]
    n_rows, n = rows.shape[0], taus.shape[0]
    ref_thetas = jax.vmap(learner.random_theta)(
        jax.random.split(jax.random.fold_in(k_main, 1), n * n_ref))
    thetas = jnp.concatenate([jnp.broadcast_to(theta, (n_rows, theta.shape[-1])), ref_thetas])
    life = jax.vmap(learner.lifetime)(
        thetas, jnp.concatenate([rows, jnp.repeat(taus, n_ref, 0)]),
        jnp.concatenate([row_keys, jnp.repeat(keys[0], n_ref, 0)]))
    returns, final = life["returns"], life["final"]
    refs = returns[n_rows:, 0].reshape(n, n_ref)  # [n, R]
    final = jax.tree.map(lambda x: x[:n_rows], final)
    return returns, final, refs


def _behaviour_metrics(meta, sets, returns, final, refs, columns, diversity) -> dict:
    """The measurement's dict from :func:`_behaviour_lifetimes`: per set, in order, the matrix
    of its rows (row a: its recorded last episode scored under each of its columns, no rerun)
    and its scalars (``heldout``: the curves are its episode returns; ``pool``: task columns
    only; ``ood``: with the held-out columns)."""
    fam, out, lo = meta.family, {}, 0
    for kind, rows, _ in sets:
        hi = lo + rows.shape[0]
        cols = (jnp.broadcast_to(rows, (rows.shape[0], *rows.shape)) if kind == "pool"
                else columns(rows, diversity))
        traj = jax.tree.map(lambda x, lo=lo, hi=hi: x[lo:hi], final)
        matrix = jax.vmap(lambda tr, cs: jax.vmap(fam.score, (None, 0))(tr, cs))(traj, cols)
        if kind == "heldout":  # update alignment needs a phi: NaN here (no step ever moves)
            out.update(heldout_metrics(returns[lo:hi], matrix, refs,
                                       jnp.full((), jnp.nan, jnp.float32)))
        elif kind == "pool":
            out.update(pool_metrics(matrix, diversity))
        else:
            out.update(ood_metrics(returns[lo:hi], matrix, nearest_column(meta, rows.shape[0])))
        lo = hi
    return out


def make_measure_rl2(meta, learner_evaluate=None):
    """The measurement of an ``rl2`` learner (no ``phi``; ``learner.measurement ==
    "behaviour"``), selected by :func:`make_measure`: ``fn(theta [D_theta], key,
    diversity=task.diversity) -> dict`` with the keys of the phi path, measured from behaviour
    alone (DESIGN "Learners", issue 9):

    - the lifetime curve is the own-task return of each of the K episodes: ``curve [K]`` and
      ``curves [n, K]`` (K entries, not K+1: there is no phi_0 to score before the first
      episode; ``curves[:, 0]`` is the first episode, which ``op_initial_bits`` and
      ``return_initial`` read, ``curves[:, -1]`` the last);
    - matrix row a is the final episode's recorded trajectory scored under every column
      (``family.score(final, column)``, the reward recomputed from the recorded states and
      actions; no rerun), so ``matrix[a, a] == curves[a, -1]`` exactly;
    - reference scores for optimization power: the first episode, from the same reset key as
      the learner's own first episode, of ``measure.reference_samples`` random policies of the
      same network (``RL2.random_theta``), run as whole K-episode lifetimes in the
      measurement's one batched lifetime call (:func:`_behaviour_lifetimes`);
    - update alignment is defined only where there is a phi: NaN here (no step ever moves).

    Every arm is measured with the given reward (``meta.learner``, or the arm's learner built
    with ``reward: given``: the theta layout is the same in every channel).
    ``task.eval_episodes`` is not used: each row is one lifetime, as the fitness is;
    ``learner_evaluate`` neither (there is no phi to evaluate). Pool and out-of-distribution
    rows as for the phi path, with the same lifetimes and scores.
    """
    cfg = meta.cfg
    given = _given_reward(meta)
    taus = heldout_tasks(meta)
    taus_ood = heldout_tasks(meta, inside=False) if cfg.task.train_region != "none" else None
    pool, n_pool, n_ref = meta.pool, cfg.measure.pool_tasks, cfg.measure.reference_samples
    columns = _columns(meta)

    def measure(theta, key, diversity=None):
        diversity = cfg.task.diversity if diversity is None else diversity
        k_main, k_pool, k_ood = jax.random.split(key, 3)
        sets = [("heldout", taus, k_main)] + ([("pool", pool[:n_pool], k_pool)] if n_pool else [])
        sets += [("ood", taus_ood, k_ood)] if taus_ood is not None else []
        returns, final, refs = _behaviour_lifetimes(given, theta, sets, n_ref, k_main)
        return _behaviour_metrics(meta, sets, returns, final, refs, columns, diversity)

    return measure


def _behaviour_env_steps(meta) -> int:
    """Env steps of one behaviour measurement of one theta: per held-out task the lifetime and
    R reference policies (K-episode lifetimes of which the first episode is read; the matrix
    re-scores the recorded last episode: no env steps); per pool or out-of-distribution row a
    lifetime."""
    cfg, lr = meta.cfg, meta.learner
    ms = cfg.measure
    rows = ms.heldout_tasks * (1 + ms.reference_samples) * lr.K
    rows += ms.pool_tasks * lr.K
    if cfg.task.train_region != "none":
        rows += ms.heldout_tasks * lr.K  # the out-of-distribution rows
    return rows * lr.T


class Measurement(NamedTuple):
    """A measurement program: ``build(meta, learner_evaluate) -> fn(theta, key, diversity)``
    (:func:`make_measure`) and ``env_steps(meta)``, the env steps of one call on one theta."""

    build: Callable
    env_steps: Callable


MEASUREMENTS = {"phi": Measurement(make_measure_phi, _phi_env_steps),
                "behaviour": Measurement(make_measure_rl2, _behaviour_env_steps)}
"""The measurement programs by ``learner.measurement``."""


def measure_env_steps(meta) -> int:
    """Env steps of one :func:`make_measure` call on one theta (rollouts counted, not
    physics), as the learner's measurement counts them."""
    return MEASUREMENTS[meta.learner.measurement].env_steps(meta)


def measure_theta(meta, theta, key=None, diversity=None):
    """Convenience: jit and run ``make_measure(meta)`` on one ``theta``; numpy dict back."""
    import numpy as np

    fn = jax.jit(make_measure(meta))
    d = meta.cfg.task.diversity if diversity is None else diversity
    out = fn(jnp.asarray(theta), jax.random.PRNGKey(0) if key is None else key, d)
    return {k: np.asarray(v) for k, v in out.items()}
