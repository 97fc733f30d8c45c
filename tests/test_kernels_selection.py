"""Known answers for selection intensity, the pressure weights and their inverse maps."""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from meta_evo.kernels import (
    beta_for_intensity,
    boltzmann_weights,
    elite_fraction_for_intensity,
    expected_normal_order_statistics,
    selection_intensity,
    truncation_weights,
)
from meta_evo.kernels import selection as selection_module

SQRT_PI = math.sqrt(math.pi)

# Expected maximum of n standard normals (Harter 1961; Teichroew 1956), to 5 decimals.
TABLED_MAXIMA = {10: 1.53875, 20: 1.86748, 50: 2.24907, 100: 2.50759, 200: 2.74604, 1000: 3.24144}


def test_order_statistics_small_n_exact():
    np.testing.assert_allclose(expected_normal_order_statistics(1), [0.0], atol=1e-12)
    np.testing.assert_allclose(
        expected_normal_order_statistics(2), [1 / SQRT_PI, -1 / SQRT_PI], atol=1e-9
    )
    e3 = 3 / (2 * SQRT_PI)  # E[max of 3]
    np.testing.assert_allclose(expected_normal_order_statistics(3), [e3, 0.0, -e3], atol=1e-9)
    # n = 4: E[Z_(1:4)] = 1.029375, E[Z_(2:4)] = 0.297011 (tables).
    np.testing.assert_allclose(
        expected_normal_order_statistics(4), [1.029375, 0.297011, -0.297011, -1.029375], atol=1e-6
    )


@pytest.mark.parametrize("n", sorted(TABLED_MAXIMA))
def test_order_statistics_tabled_maxima(n):
    e = expected_normal_order_statistics(n)
    assert e.shape == (n,)
    assert abs(e[0] - TABLED_MAXIMA[n]) < 1e-5
    assert np.all(np.diff(e) < 0)  # strictly descending, best first
    np.testing.assert_allclose(e, -e[::-1], atol=1e-12)  # symmetric
    assert abs(e.sum()) < 1e-9


def test_order_statistics_large_n_accurate_and_fast():
    n = 4096
    selection_module._order_statistics_f64.cache_clear()
    start = time.process_time()
    e = expected_normal_order_statistics(n)
    elapsed = time.process_time() - start
    assert elapsed < 2.0  # about 0.3 s here; generous for loaded machines
    e_prev = expected_normal_order_statistics(n - 1)
    # The recurrence (n - r) E[X_(r:n)] + r E[X_(r+1:n)] = n E[X_(r:n-1)] holds for every
    # distribution (ascending ranks r); it ties n and n - 1 together with no shared error.
    a, b = e[::-1], e_prev[::-1]
    r = np.arange(1, n)
    residual = (n - r) * a[r - 1] + r * a[r] - n * b[r - 1]
    assert np.max(np.abs(residual)) / n < 1e-8
    # The maximum of 4096 lies between the tabled 1000 and the asymptotic sqrt(2 ln n).
    assert 3.5 < e[0] < math.sqrt(2 * math.log(n))
    assert expected_normal_order_statistics(n) is e  # cached


def test_intensity_known_values():
    assert abs(float(selection_intensity(jnp.array([1.0, 0.0]))) - 1 / SQRT_PI) < 1e-6
    assert abs(float(selection_intensity(jnp.array([1.0, 0.0, 0.0]))) - 3 / (2 * SQRT_PI)) < 1e-6
    assert abs(float(selection_intensity(jnp.array([1.0, 1.0, 0.0, 0.0]))) - 0.6632) < 1e-4
    # Normalized inside: scaling the weights changes nothing.
    assert abs(float(selection_intensity(jnp.array([7.0, 7.0, 0.0, 0.0]))) - 0.6632) < 1e-4
    for n in (2, 5, 64, 1000):
        assert abs(float(selection_intensity(jnp.ones(n)))) < 1e-6


@pytest.mark.parametrize(
    "fraction, limit", [(0.5, 0.798), (0.2, 1.400), (0.1, 1.755), (0.05, 2.063), (0.01, 2.665)]
)
def test_truncation_intensity_large_n(fraction, limit):
    intensity = float(selection_intensity(truncation_weights(4096, fraction)))
    # Finite N sits slightly below the infinite-population value.
    assert limit - 0.01 < intensity <= limit + 1e-3


def test_truncation_weights():
    for n, k in [(10, 3), (16, 8), (7, 1), (5, 5)]:
        w = np.asarray(truncation_weights(n, k / n))
        assert w.shape == (n,)
        np.testing.assert_allclose(w[:k], 1 / k, rtol=1e-6)
        assert np.all(w[k:] == 0)
        assert abs(w.sum() - 1) < 1e-6
    w = np.asarray(truncation_weights(10, 0.25))  # k = 2.5: 1, 1, 0.5 over 2.5
    np.testing.assert_allclose(w[:4], [0.4, 0.4, 0.2, 0.0], atol=1e-7)
    np.testing.assert_allclose(truncation_weights(10, 1e-6), np.eye(10)[0])  # k clipped to 1
    np.testing.assert_allclose(truncation_weights(10, 1.0), np.full(10, 0.1), rtol=1e-6)
    # Continuous and monotone: intensity falls as the elite fraction grows.
    fractions = jnp.linspace(1.5 / 64, 1.0, 200)  # k from 1.5 to 64
    i = jax.vmap(lambda f: selection_intensity(truncation_weights(64, f)))(fractions)
    assert np.all(np.diff(np.asarray(i)) < 0)


def test_boltzmann_weights():
    np.testing.assert_allclose(boltzmann_weights(8, 0.0), np.full(8, 1 / 8), rtol=1e-6)
    w = np.asarray(boltzmann_weights(8, 2.0))
    assert abs(w.sum() - 1) < 1e-6 and np.all(np.diff(w) < 0)
    betas = jnp.linspace(0.0, 20.0, 100)
    i = np.asarray(jax.vmap(lambda b: selection_intensity(boltzmann_weights(32, b)))(betas))
    assert abs(i[0]) < 1e-6 and np.all(np.diff(i) > 0)
    assert i[-1] < expected_normal_order_statistics(32)[0]


@pytest.mark.parametrize("n", [2, 10, 100, 4096])
def test_inverse_maps_round_trip(n):
    top = float(expected_normal_order_statistics(n)[0])
    targets = jnp.array([0.0, 0.05, 0.3, 0.5, 1.0, 2.0, 3.0]) * (top / 3.0)
    fractions = jax.jit(jax.vmap(lambda i: elite_fraction_for_intensity(n, i)))(targets)
    betas = jax.jit(jax.vmap(lambda i: beta_for_intensity(n, i)))(targets)
    got_t = jax.vmap(lambda f: selection_intensity(truncation_weights(n, f)))(fractions)
    got_b = jax.vmap(lambda b: selection_intensity(boltzmann_weights(n, b)))(betas)
    np.testing.assert_allclose(got_t, targets, atol=1e-3)
    np.testing.assert_allclose(got_b[:-1], targets[:-1], atol=1e-3)  # the max needs beta = inf
    assert abs(float(got_b[-1]) - top) < 1e-3
    assert abs(float(fractions[-1]) - 1 / n) < 1e-6  # max intensity = the best alone
    assert abs(float(fractions[0]) - 1.0) < 1e-6 and abs(float(betas[0])) < 1e-6


def test_inverse_maps_clip_to_attainable_range():
    n = 16
    assert abs(float(elite_fraction_for_intensity(n, -1.0)) - 1.0) < 1e-6
    assert abs(float(elite_fraction_for_intensity(n, 99.0)) - 1 / n) < 1e-6
    assert float(beta_for_intensity(n, -1.0)) < 1e-6
    assert float(beta_for_intensity(n, 99.0)) > 100.0


def test_jit_and_vmap_of_intensity():
    weights = jax.random.uniform(jax.random.PRNGKey(0), (5, 12))
    batched = jax.jit(jax.vmap(selection_intensity))(weights)
    one_by_one = [float(selection_intensity(w)) for w in weights]
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(selection_intensity(weights), one_by_one, rtol=1e-5, atol=1e-6)
    # Traced pressures compile once and give per-pressure weights.
    w = jax.jit(jax.vmap(lambda f: truncation_weights(10, f)))(jnp.array([0.1, 0.5, 1.0]))
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    b = jax.jit(jax.vmap(lambda x: boltzmann_weights(10, x)))(jnp.array([0.0, 1.0, 5.0]))
    np.testing.assert_allclose(b.sum(-1), 1.0, rtol=1e-6)


def test_effective_population_size():
    from meta_evo.kernels import effective_population_size

    n = 16
    assert float(effective_population_size(jnp.ones(n))) == pytest.approx(n, rel=1e-6)
    assert float(effective_population_size(jnp.zeros(n).at[0].set(1.0))) == pytest.approx(1.0)
    # truncation to the top k (integer k): exactly k parents; weights need not sum to 1
    for k in (1, 2, 4, 8):
        w = truncation_weights(n, k / n)
        assert float(effective_population_size(w)) == pytest.approx(k, rel=1e-5)
        assert float(effective_population_size(3.0 * w)) == pytest.approx(k, rel=1e-5)
    # Boltzmann: beta 0 is no selection; N_eff falls as beta grows; batched over betas
    betas = jnp.array([0.0, 0.5, 1.0, 2.0, 8.0])
    ne = jax.jit(jax.vmap(lambda b: effective_population_size(boltzmann_weights(n, b))))(betas)
    assert float(ne[0]) == pytest.approx(n, rel=1e-5)
    assert np.all(np.diff(np.asarray(ne)) < 0) and float(ne[-1]) >= 1.0
