"""Issue 3 behavioural tests on the analytic family: a true optimizer, a memorizer and a
proxy-pursuer land where the definitions say."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ANALYTIC, cfg

from meta_evo.measure import make_measure
from meta_evo.meta import Meta

C = cfg(ANALYTIC, "learner.lifetime=20", "learner.candidates=16")


@pytest.fixture(scope="module")
def es_meta():
    return Meta(C)


def _measure(meta, theta, **kw):
    out = jax.jit(make_measure(meta, **kw))(theta, jax.random.PRNGKey(0))
    return {k: np.asarray(v) for k, v in out.items()}


def test_true_optimizer(es_meta):
    d = es_meta.agent.num_params
    theta = jnp.concatenate([jnp.zeros(d), jnp.array([0.5, jnp.log(0.3)])])
    m = _measure(es_meta, theta)
    n = C.measure.heldout_tasks
    assert m["matrix"].shape == (n, n + 1) and m["curve"].shape == (21,)
    assert m["lifetime_gain"] > 2.0
    assert m["objective_sensitivity"] > 1.0
    assert m["behavioral_accuracy"] >= 5 / 6
    assert m["online_share"] > 0.4
    assert m["update_alignment"] > 0.3
    assert m["proxy_share"] <= 1 / 6


def test_memorizer(es_meta):
    am = Meta(C, "amortized")
    d = am.agent.num_params
    m = _measure(am, jnp.zeros(d))  # phi_0 at the optimum of the mean task
    n = C.measure.heldout_tasks
    assert m["lifetime_gain"] == 0.0 and m["online_share"] == 0.0
    assert m["objective_sensitivity"] == pytest.approx(0.0, abs=1e-6)  # identical rows
    assert m["update_alignment"] == 0.0
    # its behavioral objective is the mean task: the proxy column, every row
    assert m["proxy_share"] == 1.0
    # without proxy columns: all rows pick the same column, chance accuracy exactly 1/n
    acc = np.mean(np.argmax(m["matrix"][:, :n], axis=1) == np.arange(n))
    assert acc == pytest.approx(1 / n)


def test_proxy_pursuer(es_meta):
    d = es_meta.agent.num_params
    theta = jnp.concatenate([jnp.full(d, 1.5), jnp.array([0.5, jnp.log(0.3)])])
    proxy = es_meta.family.proxy_tasks()[0]
    m = _measure(es_meta, theta,
                 learner_evaluate=lambda phi, tau, key: es_meta.evaluate(phi, proxy, key))
    assert m["lifetime_gain"] > 0.5  # it optimizes, and that helps on the given task on average
    assert m["proxy_share"] >= 5 / 6  # but what it pursues is the proxy column
    assert m["behavioral_accuracy"] <= 1 / 6
    # rows differ only by lifetime noise: sensitivity near 0 (the true optimizer scores > 1)
    assert abs(m["objective_sensitivity"]) < 0.1


def test_measure_vmaps_over_theta(es_meta):
    d = es_meta.agent.num_params
    thetas = jnp.stack([jnp.concatenate([jnp.zeros(d), jnp.array([s, jnp.log(0.3)])])
                        for s in (0.0, 0.5)])
    out = jax.jit(jax.vmap(make_measure(es_meta), (0, None)))(thetas, jax.random.PRNGKey(0))
    one = _measure(es_meta, thetas[1])
    np.testing.assert_allclose(np.asarray(out["objective_sensitivity"][1]),
                               one["objective_sensitivity"], rtol=1e-5)
    assert float(out["lifetime_gain"][0]) == 0.0
