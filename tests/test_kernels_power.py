"""Known answers for optimization power in bits and the online share."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from meta_evo.kernels import online_share, optimization_power_bits


def gaussian_tail_bits(z):
    return -math.log2(0.5 * math.erfc(z / math.sqrt(2)))


@pytest.fixture(scope="module")
def reference():
    return jax.random.normal(jax.random.PRNGKey(0), (100_000,))


def test_inside_sample_matches_gaussian_probability(reference):
    bits, used_tail = optimization_power_bits(2.0, reference)
    assert bits.dtype == jnp.float32 and bits.shape == () and used_tail.dtype == jnp.bool_
    assert not bool(used_tail)
    assert abs(float(bits) - gaussian_tail_bits(2.0)) < 0.1  # -log2(0.02275) = 5.458


def test_beyond_sample_uses_gaussian_tail(reference):
    bits, used_tail = optimization_power_bits(6.0, reference)
    assert bool(used_tail)
    assert abs(float(bits) - gaussian_tail_bits(6.0)) < 0.5  # -log2(1 - Phi(6)) = 29.92
    far, _ = optimization_power_bits(40.0, reference)  # stable far in the tail
    assert np.isfinite(float(far)) and abs(float(far) - 1157) < 10


def test_below_and_at_the_sample(reference):
    bits, used_tail = optimization_power_bits(-10.0, reference)
    assert float(bits) == 0.0 and not bool(used_tail)
    ref = jnp.array([1.0, 2.0, 3.0, 4.0])
    bits, _ = optimization_power_bits(2.5, ref)  # 2 of 4 at least as good: (2+1)/(4+1)
    assert abs(float(bits) - math.log2(5 / 3)) < 1e-6
    bits, used_tail = optimization_power_bits(4.0, ref)  # the sample max: (1+1)/(4+1)
    assert abs(float(bits) - math.log2(5 / 2)) < 1e-6 and not bool(used_tail)


def test_bits_never_decrease_with_score():
    ref = jax.random.normal(jax.random.PRNGKey(1), (200,))
    scores = jnp.linspace(-4.0, 8.0, 500)
    bits, used_tail = jax.vmap(optimization_power_bits, (0, None))(scores, ref)
    assert np.all(np.diff(np.asarray(bits)) >= 0)
    assert bool(used_tail[-1]) and not bool(used_tail[0])
    assert float(bits[np.argmax(np.asarray(used_tail))]) >= math.log2(201) - 1e-5


def test_degenerate_reference():
    ref = jnp.zeros(8)
    bits, used_tail = optimization_power_bits(jnp.array([0.0, 1.0]), ref)
    assert float(bits[0]) == 0.0 and not bool(used_tail[0])
    assert math.isinf(float(bits[1])) and bool(used_tail[1])


def test_jit_and_vmap(reference):
    scores = jnp.array([-1.0, 0.0, 2.0, 6.0])
    bits, tail = jax.jit(jax.vmap(optimization_power_bits, (0, None)))(scores, reference)
    for s, b, t in zip(scores, bits, tail, strict=True):
        b1, t1 = optimization_power_bits(s, reference)
        assert abs(float(b) - float(b1)) < 1e-4 and bool(t) == bool(t1)
    # A batch of reference samples too (one per task).
    refs = jnp.stack([reference[:1000], reference[1000:2000] + 1.0])
    bits, _ = jax.vmap(optimization_power_bits)(jnp.array([1.0, 2.0]), refs)
    assert abs(float(bits[0]) - float(bits[1])) < 0.3


def test_online_share():
    assert abs(float(online_share(10.0, 2.0)) - 0.8) < 1e-6
    assert float(online_share(10.0, 10.0)) == 0.0
    assert float(online_share(0.0, 3.0)) == 0.0  # no power to share: defined as 0
    assert abs(float(online_share(2.0, 5.0)) + 1.5) < 1e-6  # the lifetime lost power
    assert float(online_share(jnp.inf, 3.0)) == 1.0
    shares = jax.jit(jax.vmap(online_share))(jnp.array([4.0, 0.0]), jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(shares, [0.75, 0.0])
