"""Noise-aware measurement on Brax: every score of a measurement shares one evaluation key
(reset noise), so the regime verdict reads physics as it reads ``analytic``.

Hand-built learners on ``reacher_goal`` (spring, PD agent), measured by ``make_measure`` and
classified per learner by the report's regime function (``kernels.regime``):

- a fixed-angle memorizer (the inner ES with step 0: phi_K = phi_0 on every task): its matrix
  rows are identical bit for bit, so it reads memorization (with a reset key per row its rows
  differed by the reset noise alone);
- the inner ES with a hand-set step 0.4 (``es``, K = 8 updates of 8 candidates): general
  learning (4 of 6 held-out rows serve their own target best; steps 0.8 and 1.6 overshoot and
  read none, 0.2 reads identification, in a probe with these keys);
- the same ES fed the returns of the mirrored target (``learner_evaluate``: what a control
  that optimizes someone else's reward does with its own task's rows): none.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import REACHER_TINY
from helpers import cfg as make_cfg

from meta_evo.measure import make_measure
from meta_evo.meta import Meta
from meta_evo.report.classify import classify_regimes

NOISY = [*REACHER_TINY, "task.episode_length=50", "learner.lifetime=8", "learner.candidates=8",
         "learner.init_noise=0.3", "measure.heldout_tasks=6", "measure.pool_tasks=4",
         "measure.reference_samples=4", "measure.alignment_samples=2", "task.diversity=4"]
KEY = jax.random.PRNGKey(0)


def _regime(out: dict) -> str:
    meas = {k: np.asarray(v)[None] for k, v in out.items()}
    r = classify_regimes(meas)
    from meta_evo.kernels.regime import REGIME_NAMES
    return REGIME_NAMES[int(r["result"].regime[0])]


@pytest.fixture(scope="module")
def es_meta():
    return Meta(make_cfg(NOISY, "learner.kind=es"))


@pytest.fixture(scope="module")
def es_measure(es_meta):
    return jax.jit(make_measure(es_meta))  # one compile for the memorizer and the inner ES


def test_a_fixed_angle_memorizer_reads_memorization_on_physics(es_meta, es_measure):
    out = es_measure(_es_theta(es_meta, 0.0), KEY, 4)
    m = np.asarray(out["matrix"])
    np.testing.assert_array_equal(m, np.broadcast_to(m[:1], m.shape))  # identical rows
    pm = np.asarray(out["pool_matrix"])
    np.testing.assert_array_equal(pm, np.broadcast_to(pm[:1], pm.shape))
    assert float(out["lifetime_gain"]) == 0.0 and float(out["objective_sensitivity"]) == 0.0
    assert _regime(out) == "memorization"


def _es_theta(meta, step):
    d = meta.agent.num_params
    return jnp.concatenate([jnp.zeros(d), jnp.array([step, np.log(0.3)])])


def test_an_inner_es_reads_general_learning_on_physics(es_meta, es_measure):
    out = es_measure(_es_theta(es_meta, 0.4), KEY, 4)
    assert float(out["objective_sensitivity"]) > 0.1
    assert _regime(out) == "general_learning", {k: float(out[k]) for k in (
        "behavioral_accuracy", "objective_sensitivity", "pool_behavioral_accuracy")}


def test_an_es_on_someone_elses_reward_reads_none(es_meta):
    evaluate = es_meta.evaluate

    def mirrored(phi, tau, key):  # the returns the same phi earns on the mirrored target
        return evaluate(phi, -tau, key)

    out = jax.jit(make_measure(es_meta, learner_evaluate=mirrored))(
        _es_theta(es_meta, 0.4), KEY, 4)
    assert float(out["objective_sensitivity"]) < 0.1
    assert _regime(out) == "none"
