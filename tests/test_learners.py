"""Learners: the shared interface, learning off at meta-init, jit/vmap/scan with no retrace."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo.agents import DirectAgent
from meta_evo.learners import Amortized, InnerES, LearnedES, centered_ranks, make_lifetime
from meta_evo.tasks import Analytic

DIM = 4
FAM = Analytic(dim=DIM)
EVAL = FAM.make_evaluator(None, 1)
TAU = jnp.array([1.0, -1.0, 0.5, 2.0])


def learners(lifetime=10):
    agent = DirectAgent(DIM)
    zero = lambda k: jnp.zeros(DIM)
    return [Amortized(agent, lifetime, phi_init=zero),
            InnerES(agent, lifetime, 8, 0.3, phi_init=zero),
            LearnedES(agent, lifetime, 8, 0.3, hidden=4, phi_init=zero)]


def test_centered_ranks_known_values():
    r = centered_ranks(jnp.array([3.0, jnp.nan, 1.0, 2.0, 10.0]))
    np.testing.assert_allclose(np.asarray(r), [0.25, -0.5, -0.25, 0.0, 0.5])


@pytest.mark.parametrize("learner", learners(), ids=lambda x: x.name)
def test_meta_init_does_not_learn(learner):
    theta = learner.init_theta(jax.random.PRNGKey(0))
    assert theta.shape == (learner.theta_size,)
    phi_k, aux = jax.jit(make_lifetime(learner, EVAL))(theta, TAU, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(phi_k), np.asarray(learner.init(theta).phi))
    assert int(aux["nan"]) == 0


def test_amortized_leaves_phi_unchanged():
    am = learners()[0]
    theta = jnp.array([0.3, -0.2, 1.0, 4.0])
    phi_k, _ = make_lifetime(am, EVAL)(theta, TAU, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(phi_k), np.asarray(theta))


def test_es_with_positive_step_improves_within_one_lifetime():
    es = learners(lifetime=20)[1]
    theta = jnp.concatenate([jnp.zeros(DIM), jnp.array([0.3, jnp.log(0.3)])])
    phi_k, _ = jax.jit(make_lifetime(es, EVAL))(theta, TAU, jax.random.PRNGKey(0))
    before, after = float(EVAL(jnp.zeros(DIM), TAU, None)), float(EVAL(phi_k, TAU, None))
    assert before == pytest.approx(-6.25)
    assert after > before + 4.0  # most of the way to the optimum (0) in 20 updates
    # a negative step descends the given reward
    theta_neg = theta.at[DIM].set(-0.3)
    phi_neg, _ = make_lifetime(es, EVAL)(theta_neg, TAU, jax.random.PRNGKey(0))
    assert float(EVAL(phi_neg, TAU, None)) < before


def test_learned_es_can_learn_when_its_output_layer_is_set():
    les = learners(lifetime=20)[2]
    theta = les.init_theta(jax.random.PRNGKey(0))
    # output weight on the centered-rank feature via a hidden unit: u_i ~ rank_i (an ES)
    phi0, log_noise, (w1, b1, w2, b2) = les.unpack(theta)
    w1 = jnp.zeros_like(w1).at[0, 0].set(1.0)
    w2 = jnp.zeros_like(w2).at[0, 0].set(8.0)
    flat = jnp.concatenate([phi0, log_noise[None], w1.ravel(), b1, w2.ravel(), b2])
    phi_k, _ = make_lifetime(les, EVAL)(flat, TAU, jax.random.PRNGKey(0))
    assert float(EVAL(phi_k, TAU, None)) > float(EVAL(phi0, TAU, None)) + 2.0


@pytest.mark.parametrize("learner", learners(lifetime=3), ids=lambda x: x.name)
def test_jit_vmap_scan_no_retrace(learner):
    life = make_lifetime(learner, EVAL)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def batch(thetas, key):
        def body(c, k):
            phis, _ = jax.vmap(life, (0, None, None))(thetas, TAU, k)
            return c + jnp.sum(phis), None
        return jax.lax.scan(body, 0.0, jax.random.split(key, 2))[0]

    thetas = jax.vmap(learner.init_theta)(jax.random.split(jax.random.PRNGKey(0), 5))
    a = batch(thetas, jax.random.PRNGKey(1))
    b = batch(thetas + 0.01, jax.random.PRNGKey(2))  # second call: same shapes, no retrace
    assert np.isfinite(float(a)) and np.isfinite(float(b))
    chex.clear_trace_counter()
