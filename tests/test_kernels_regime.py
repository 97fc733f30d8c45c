"""Known answers for the regime kernel: hand-built learners on the analytic family.

R_tau(phi) = -|phi - tau|^2. Each learner sees only the reward of its task (the evaluator),
never tau directly; the cross-task matrices are built here with the analytic evaluator (no
meta-evolution): rows = tasks a learner ran on, columns = the same tasks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from meta_evo.kernels import regime as rg
from meta_evo.kernels.objective import objective_sensitivity

from meta_evo.tasks import Analytic

FAM = Analytic(dim=4)
EVALUATE = FAM.make_evaluator(None, 1)
KEY = jax.random.PRNGKey(0)
D_POOL, N_HELD, SEEDS = 3, 8, 8


def reward(phi, tau):
    return EVALUATE(phi, tau, KEY)


def matrix(learner, taus):
    """M[a, b] = R_{tau_b}(learner(R_{tau_a})) for tasks ``taus [n, D]``."""
    phis = jax.vmap(lambda t: learner(lambda phi: reward(phi, t)))(taus)
    return jax.vmap(lambda p: jax.vmap(lambda t: reward(p, t))(taus))(phis)


def seed_tasks(seed):
    pool = FAM.train_pool(seed)[:D_POOL]
    held = FAM.heldout_tasks(jax.random.PRNGKey(1000 + seed), N_HELD)
    return pool, held


def matrices(make_learner):
    """Pool and held-out matrices per seed: ``[S, 3, 3]``, ``[S, 8, 8]``."""
    pools, helds = [], []
    for seed in range(SEEDS):
        pool, held = seed_tasks(seed)
        learner = make_learner(pool)
        pools.append(matrix(learner, pool))
        helds.append(matrix(learner, held))
    return jnp.stack(pools), jnp.stack(helds)


# --- the learners: each gets R (a function of phi) and returns phi_K ---------------------------
def memorizer(pool):
    stored = jnp.mean(pool, axis=0)  # one stored solution: the mean training task
    return lambda r: stored


def identifier(pool):
    # query each of the d training tasks, keep the one with the best return
    return lambda r: pool[jnp.argmax(jax.vmap(r)(pool))]


def exact_step(pool, lr=0.5):
    # one gradient step from phi_0 = 0; lr = 0.5 lands on tau exactly (the Hessian is -2 I)
    return lambda r: jnp.zeros(FAM.task_dim) + lr * jax.grad(r)(jnp.zeros(FAM.task_dim))


def inner_es(pool, steps=60, pairs=16, sigma=0.1, lr=0.2):
    """Antithetic ES from phi_0 = 0 with a positive step: uses reward values only."""
    def learn(r):
        def step(phi, key):
            eps = jax.random.normal(key, (pairs, FAM.task_dim))
            diff = jax.vmap(lambda e: r(phi + sigma * e) - r(phi - sigma * e))(eps)
            grad = jnp.mean(diff[:, None] * eps, axis=0) / (2 * sigma)
            return phi + lr * grad, None
        phi, _ = jax.lax.scan(step, jnp.zeros(FAM.task_dim),
                              jax.random.split(jax.random.PRNGKey(7), steps))
        return phi
    return learn


def anti_learner(pool):
    return exact_step(pool, lr=-0.5)  # descends the reward: phi_K = -tau


def sensitivity_by_hand(taus):
    """S of the optimizer's matrix -|tau_a - tau_b|^2: diag 0, numerator = mean off-diagonal
    squared distance, over the std of all n^2 entries."""
    t = np.asarray(taus, np.float64)
    m = -np.sum((t[:, None] - t[None]) ** 2, axis=-1)
    n = len(t)
    off = -m[~np.eye(n, dtype=bool)].mean()
    return off / (m.std() + 1e-8)


# --- known answers ----------------------------------------------------------------------------
def test_memorizer_is_memorization():
    pool_m, held_m = matrices(memorizer)
    res = rg.regime_from_matrices(pool_m, held_m)
    # identical rows: sensitivity and spread exactly 0, one row right (the argmax column's own)
    for m in (pool_m, held_m):
        assert np.all(np.asarray(jax.vmap(objective_sensitivity)(m)) == 0.0)
        assert np.all(np.asarray(rg.row_spread(m)) == 0.0)
    np.testing.assert_allclose(rg.task_accuracy(pool_m), 1 / D_POOL, rtol=1e-6)
    np.testing.assert_allclose(rg.task_accuracy(held_m), 1 / N_HELD, rtol=1e-6)
    np.testing.assert_allclose(res.pool_skill, 0.0, atol=1e-6)
    np.testing.assert_allclose(res.heldout_skill, 0.0, atol=1e-6)
    assert np.all(np.asarray(res.regime) == rg.MEMORIZATION)
    assert int(res.modal) == rg.MEMORIZATION
    assert float(res.confidence) == 1.0
    # Wilson at k = n = 8: lower = n / (n + z^2), z = 1.959964
    z2 = 1.959963984540054 ** 2
    np.testing.assert_allclose(res.confidence_interval, [8 / (8 + z2), 1.0], rtol=1e-5)
    np.testing.assert_array_equal(res.counts, [8, 0, 0, 0])


def test_lookup_of_training_tasks_is_identification():
    pool_m, held_m = matrices(identifier)
    res = rg.regime_from_matrices(pool_m, held_m)
    # on a pool task the lookup returns that task: accuracy exactly 1, S as derived by hand
    np.testing.assert_array_equal(rg.task_accuracy(pool_m), np.ones(SEEDS))
    for seed in range(SEEDS):
        pool, _ = seed_tasks(seed)
        assert float(objective_sensitivity(pool_m[seed])) == pytest.approx(
            sensitivity_by_hand(pool), rel=1e-5)
    # held out, it can only return one of d = 3 tasks: at most 3 of 8 rows right, so the
    # skill is at most (3/8 - 1/8) / (7/8) = 2/7, below the margin whatever the draw
    assert np.all(np.asarray(rg.task_accuracy(held_m)) <= D_POOL / N_HELD + 1e-7)
    assert np.all(np.asarray(res.heldout_skill) <= 2 / 7 + 1e-6)
    assert np.all(np.asarray(res.regime) == rg.IDENTIFICATION)
    assert int(res.modal) == rg.IDENTIFICATION and float(res.confidence) == 1.0


@pytest.mark.parametrize("learner", [exact_step, inner_es], ids=["exact_step", "inner_es"])
def test_reward_optimizer_is_general_learning(learner):
    pool_m, held_m = matrices(learner)
    res = rg.regime_from_matrices(pool_m, held_m)
    np.testing.assert_array_equal(rg.task_accuracy(held_m), np.ones(SEEDS))
    np.testing.assert_array_equal(rg.task_accuracy(pool_m), np.ones(SEEDS))
    if learner is exact_step:  # phi_K = tau exactly: the matrix is -|tau_a - tau_b|^2
        for seed in range(SEEDS):
            _, held = seed_tasks(seed)
            assert float(objective_sensitivity(held_m[seed])) == pytest.approx(
                sensitivity_by_hand(held), rel=1e-5)
    assert np.all(np.asarray(res.regime) == rg.GENERAL_LEARNING)
    assert float(res.confidence) == 1.0
    assert float(res.margin) == rg.DEFAULT_MARGIN


def test_reward_descender_is_none():
    pool_m, held_m = matrices(anti_learner)
    res = rg.regime_from_matrices(pool_m, held_m)
    # phi_K = -tau: rows differ (not a memorizer); row a serves the task nearest -tau_a, and
    # its own task lies at distance 2 |tau_a|: no fit anywhere, negative sensitivity
    assert np.all(np.asarray(jax.vmap(objective_sensitivity)(held_m)) < 0)
    assert not np.any(np.asarray(res.pool_fit)) and not np.any(np.asarray(res.heldout_fit))
    assert np.all(np.asarray(res.identical_rows) == 0)
    assert np.all(np.asarray(res.regime) == rg.NO_REGIME)


def test_mixed_seeds_give_shares_and_intervals():
    # per-seed stats built by hand: 5 general, 2 identification, 1 memorization (n = 6, d = 4)
    pool_acc = jnp.array([1, 1, 1, 1, 1, 1, 1, 0.25])
    held_acc = jnp.array([1, 1, 1, 5 / 6, 4 / 6, 2 / 6, 1 / 6, 1 / 6])
    sens = jnp.array([1.5, 1.5, 1.5, 1.2, 1.0, 0.6, 0.4, 0.0])
    spread = jnp.array([0.9] * 7 + [0.0])
    res = rg.classify_regime(pool_acc, sens, held_acc, sens, spread, 1 / 4, 1 / 6)
    # 4/6 right of 6: skill (4/6 - 1/6) / (5/6) = 0.6 > 0.5; 2/6: 0.2
    np.testing.assert_array_equal(res.regime, [2, 2, 2, 2, 2, 1, 1, 0])
    np.testing.assert_array_equal(res.counts, [1, 2, 5, 0])
    assert int(res.modal) == rg.GENERAL_LEARNING
    assert float(res.confidence) == pytest.approx(5 / 8)
    lo, hi = np.asarray(res.confidence_interval)
    # Wilson 5/8 at 95 %: (0.3057, 0.8632)
    assert lo == pytest.approx(0.30574, abs=1e-4) and hi == pytest.approx(0.86322, abs=1e-4)
    # a stricter margin, with the binomial reading off (4 of 6 passes it: P = 0.0087), moves
    # the 4/6 seed to identification
    strict = rg.classify_regime(pool_acc, sens, held_acc, sens, spread, 1 / 4, 1 / 6,
                                margin=0.7, fit_alpha=0.0)
    assert int(strict.regime[4]) == rg.IDENTIFICATION
    assert float(strict.margin) == pytest.approx(0.7)


def test_single_training_task_and_nan():
    # d = 1: chance 1 -> skill 0, so a perfect pool score still reads memorization
    res = rg.classify_regime(jnp.ones(2), jnp.zeros(2), jnp.array([1 / 6, jnp.nan]),
                             jnp.zeros(2), jnp.array([0.0, 0.0]), 1.0, 1 / 6)
    assert float(res.pool_skill[0]) == 0.0
    np.testing.assert_array_equal(res.regime, [rg.MEMORIZATION, rg.MEMORIZATION])
    nan = rg.classify_regime(jnp.full(1, jnp.nan), jnp.ones(1), jnp.ones(1), jnp.ones(1),
                             jnp.full(1, jnp.nan), 1 / 3, 1 / 6)
    assert int(nan.regime[0]) == rg.NO_REGIME


def test_wilson_interval_known_values():
    iv = np.asarray(rg.wilson_interval(jnp.array([0, 4, 8]), jnp.array([8, 8, 8])))
    z2 = 1.959963984540054 ** 2
    np.testing.assert_allclose(iv[0], [0.0, z2 / (8 + z2)], rtol=1e-5)
    np.testing.assert_allclose(iv[2], [8 / (8 + z2), 1.0], rtol=1e-5)
    np.testing.assert_allclose(iv[1], [0.21521, 0.78479], atol=1e-4)  # symmetric about 1/2
    np.testing.assert_array_equal(rg.wilson_interval(0, 0), [0.0, 1.0])


def test_vmaps_over_grid_points():
    pool_m, held_m = matrices(exact_step)
    grid = jax.vmap(rg.regime_from_matrices)(jnp.stack([pool_m, pool_m]),
                                             jnp.stack([held_m, held_m]))
    assert grid.regime.shape == (2, SEEDS) and grid.share_interval.shape == (2, 4, 2)


def test_binomial_above_chance_known_answers():
    """"Accurate" is a one-sided exact binomial test over the n = 1/chance rows. By hand, with
    n = 6 and chance 1/6: P[X >= 4] = 15 (1/6)^4 (5/6)^2 + 6 (1/6)^5 (5/6) + (1/6)^6 = 0.0087
    (passes at 0.05) and P[X >= 3] = 0.0623 (does not); one task (chance 1) never passes."""
    from meta_evo.kernels.regime import binomial_above_chance

    p4 = 15 * (1 / 6) ** 4 * (5 / 6) ** 2 + 6 * (1 / 6) ** 5 * (5 / 6) + (1 / 6) ** 6
    assert abs(p4 - 0.0087) < 1e-4
    acc = jnp.array([4 / 6, 3 / 6, 1 / 6, 0.0, 1.0])
    got = binomial_above_chance(acc, jnp.full(5, 1 / 6))
    assert got.tolist() == [True, False, False, False, True]
    assert not bool(binomial_above_chance(jnp.float32(1.0), jnp.float32(1.0)))
    # the classification takes either reading: 4 of 16 (skill 0.2, p 0.011) is high by the
    # test, 2 of 2 (p 0.25) by the effect size, 1 of 2 by neither
    r = rg.classify_regime(jnp.array([1.0, 0.5, 0.25]), jnp.ones(3), jnp.array([0.25, 0.25, 1.0]),
                           jnp.ones(3), jnp.ones(3), jnp.array([0.5, 0.5, 1 / 16]), 1 / 16)
    assert r.pool_fit.tolist() == [True, False, True]
    assert r.heldout_fit.tolist() == [True, True, True]
    # the threshold moves with alpha: P[X >= 3] = 0.0623 passes at 0.1
    assert bool(binomial_above_chance(jnp.float32(0.5), jnp.float32(1 / 6), alpha=0.1))
