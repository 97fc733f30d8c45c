"""Known answers for lifetime gain, the cross-task matrix kernels and update alignment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from meta_evo.kernels import (
    behavioral_objective,
    lifetime_gain,
    objective_sensitivity,
    proxy_share,
    update_alignment,
)


def test_lifetime_gain():
    curve = jnp.array([[0.0, 1.0, 3.0], [2.0, 1.0, 0.5]])
    np.testing.assert_allclose(lifetime_gain(curve), [3.0, -1.5])
    assert lifetime_gain(jnp.zeros((4, 5, 11))).shape == (4, 5)
    assert float(lifetime_gain(jnp.array([1.0, 4.0]))) == 3.0


def test_identical_rows_are_insensitive_and_at_chance():
    n = 5
    row = jax.random.normal(jax.random.PRNGKey(3), (n,)) * 0.37 + 1.3
    matrix = jnp.tile(row, (n, 1))
    assert float(objective_sensitivity(matrix)) == 0.0
    best, accuracy = behavioral_objective(matrix)
    assert best.dtype == jnp.int32 and np.all(np.asarray(best) == int(jnp.argmax(row)))
    assert float(accuracy) == pytest.approx(1 / n, abs=1e-7)
    assert float(proxy_share(matrix)) == 0.0


def test_diagonal_dominant_matrix():
    matrix = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    # mean diag 1, mean offdiag 0, std of {1, 0, 0, 1} = 0.5
    assert float(objective_sensitivity(matrix)) == pytest.approx(2.0, rel=1e-6)
    noise = 0.1 * jax.random.normal(jax.random.PRNGKey(0), (6, 6))
    matrix = 2.0 * jnp.eye(6) + noise
    assert float(objective_sensitivity(matrix)) > 1.0
    best, accuracy = behavioral_objective(matrix)
    np.testing.assert_array_equal(best, np.arange(6))
    assert float(accuracy) == 1.0


def test_proxy_column_wins():
    tasks = jnp.eye(4)
    proxy = jnp.full((4, 1), 5.0)
    matrix = jnp.concatenate([tasks, proxy], axis=1)  # [4, 5]
    # accuracy is over the task columns only: each row still serves its own task best
    # among the tasks, although the proxy column beats every task
    best, accuracy = behavioral_objective(matrix)
    np.testing.assert_array_equal(best, [0, 1, 2, 3])
    assert float(accuracy) == 1.0
    assert float(proxy_share(matrix)) == 1.0
    # a proxy-pursuer that also ignores its task: identical rows, chance accuracy exactly 1/n
    pursuer = jnp.concatenate([jnp.tile(jnp.array([[0.3, 0.1, 0.2, 0.0]]), (4, 1)), proxy], 1)
    best, accuracy = behavioral_objective(pursuer)
    np.testing.assert_array_equal(best, [0, 0, 0, 0])
    assert float(accuracy) == pytest.approx(1 / 4, abs=1e-7)
    assert float(proxy_share(pursuer)) == 1.0
    # Sensitivity reads the task block only.
    assert float(objective_sensitivity(matrix)) == pytest.approx(
        float(objective_sensitivity(tasks)), rel=1e-6
    )


def test_accuracy_ignores_proxy_columns_at_chance():
    # rows that ignore their task (identical rows) score exactly 1/n, however often a proxy
    # column wins; an argmax over all columns would score 0 whenever a proxy wins
    n, num = 4, 256
    keys = jax.random.split(jax.random.PRNGKey(11), num)

    def ignorant(k):
        row = jax.random.normal(k, (n + 2,)).at[n:].add(1.0)  # proxies usually win
        return jnp.tile(row, (n, 1))

    mats = jax.vmap(ignorant)(keys)
    _, acc = jax.jit(jax.vmap(behavioral_objective))(mats)
    np.testing.assert_allclose(acc, 1 / n, atol=1e-7)
    assert float(jnp.mean(jax.vmap(proxy_share)(mats))) > 0.5


def test_nan_ranks_worst_and_bad_shapes():
    matrix = jnp.array([[jnp.nan, 0.0, 1.0], [0.0, 1.0, jnp.nan]])
    best, accuracy = behavioral_objective(matrix)
    np.testing.assert_array_equal(best, [1, 1])  # task columns 0, 1 only
    assert float(accuracy) == 0.5 and float(proxy_share(matrix)) == 0.5
    with pytest.raises(ValueError):
        objective_sensitivity(jnp.zeros((3, 2)))
    with pytest.raises(ValueError):
        behavioral_objective(jnp.zeros((1, 1)))


def test_matrix_kernels_jit_and_vmap():
    base = jnp.eye(3)[None] * jnp.array([0.0, 1.0, 2.0])[:, None, None]
    matrices = jnp.concatenate([base, jnp.zeros((3, 3, 1))], axis=2) + 0.5  # [3, 3, 4]
    s = jax.jit(jax.vmap(objective_sensitivity))(matrices)
    # Scaling the task block leaves S unchanged; a constant matrix has S = 0.
    np.testing.assert_allclose(s, [0.0, 1 / np.std(np.eye(3)), 1 / np.std(np.eye(3))], rtol=1e-5)
    best, acc = jax.jit(jax.vmap(behavioral_objective))(matrices)
    assert best.shape == (3, 3)
    np.testing.assert_allclose(acc, [1 / 3, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(proxy_share)(matrices), [0.0, 0.0, 0.0])
    gains = jax.jit(jax.vmap(lifetime_gain))(jnp.arange(12.0).reshape(3, 4))
    np.testing.assert_allclose(gains, [3.0, 3.0, 3.0])


def test_update_alignment():
    v = jnp.array([1.0, -2.0, 3.0])
    assert float(update_alignment(v, 2.5 * v)) == pytest.approx(1.0, abs=1e-6)
    assert float(update_alignment(v, -v)) == pytest.approx(-1.0, abs=1e-6)
    assert float(update_alignment(jnp.array([1.0, 0.0]), jnp.array([0.0, 3.0]))) == 0.0
    assert float(update_alignment(jnp.zeros(3), v)) == 0.0
    assert float(update_alignment(v, jnp.zeros(3))) == 0.0
    assert float(update_alignment(1e30 * v, 1e-30 * v)) == pytest.approx(1.0, abs=1e-6)
    steps = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    grads = jnp.array([[2.0, 0.0], [0.0, -1.0], [1.0, 0.0], [1.0, 0.0]])
    expected = [1.0, -1.0, 1 / np.sqrt(2), 0.0]
    np.testing.assert_allclose(update_alignment(steps, grads), expected, atol=1e-6)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(update_alignment))(steps, grads), expected, atol=1e-6
    )
