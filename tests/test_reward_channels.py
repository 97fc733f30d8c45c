"""Reward channels ``given | shuffled | blind`` (``meta_evo.learners.base.make_lifetime``).

``shuffled`` must keep the distribution of the returns a learner is told and drop its task;
``blind`` must tell it zeros. Known answers on ``analytic`` with a hand-built true optimizer
(an inner ES with phi_0 = 0 and a fixed positive step) and a gru with a nonzero output layer.

The statistical tolerances come from exact properties of the null (see ``_null_facts``) and
from the spread of the statistic over many independent ``tau_fb`` draws, computed in the test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from jax.flatten_util import ravel_pytree
from scipy import stats

from meta_evo import kernels
from meta_evo.agents import DirectAgent
from meta_evo.config import load_config
from meta_evo.learners import GRULearner, InnerES, LearnedES, Learner, make_lifetime
from meta_evo.meta import Meta
from meta_evo.tasks import Analytic

DIM, K, P, N = 4, 20, 16, 6  # phi size, lifetime, candidates, held-out tasks (chance 1/6)
STEP, NOISE = 0.3, 0.3
FAM = Analytic(dim=DIM)
EVAL = FAM.make_evaluator(None, 1)
ES = InnerES(DirectAgent(DIM), K, P, NOISE)
ES_THETA = jnp.concatenate([jnp.zeros(DIM), jnp.array([STEP, np.log(NOISE)], jnp.float32)])
HELDOUT = jax.vmap(FAM.sample_task)(jax.random.split(jax.random.PRNGKey(99), N))  # [N, DIM]
R = 512  # independent draws of (tau_fb, lifetime keys) for the null distributions


def gru_theta(lr, key, out_scale=0.5):
    """A gru theta that responds to its returns: the output kernel drawn N(0, out_scale^2)."""
    params = lr._unravel(lr.init_theta(key))
    params["params"]["out"]["kernel"] = out_scale * jax.random.normal(
        jax.random.fold_in(key, 1), params["params"]["out"]["kernel"].shape)
    return ravel_pytree(params)[0]


def cases():
    """(name, learner, theta) of learners that respond to their returns."""
    agent = DirectAgent(DIM)
    gru = GRULearner(agent, 8, 3, 8)
    les = LearnedES(agent, 8, 8, 0.3, hidden=4)
    les_theta = les.init_theta(jax.random.PRNGKey(0))
    phi0, log_noise, (w1, b1, w2, b2) = les.unpack(les_theta)
    w1 = jnp.zeros_like(w1).at[0, 0].set(1.0)
    w2 = jnp.zeros_like(w2).at[0, 0].set(8.0)
    les_theta = jnp.concatenate([phi0, log_noise[None], w1.ravel(), b1, w2.ravel(), b2])
    return [("es", ES, ES_THETA), ("gru", gru, gru_theta(gru, jax.random.PRNGKey(0))),
            ("learned_es", les, les_theta)]


CASES = cases()


# --- a spy: what the learner is told ------------------------------------------------------------


@struct.dataclass
class SpyState:
    inner: object
    phi: jax.Array  # [D + P]: the inner learner's phi, then the returns told at the last update


class Spy(Learner):
    """Wraps a learner; its ``phi`` carries the returns the learner was last told, so
    ``make_lifetime(..., record_curve=True)`` records them (``phis[1:, D:]``, ``[K, P]``)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = "spy"
        self.lifetime, self.num_candidates = inner.lifetime, inner.num_candidates
        self.phi_size, self.theta_size = inner.phi_size + inner.num_candidates, inner.theta_size

    def init(self, theta):
        s = self.inner.init(theta)
        return SpyState(inner=s, phi=jnp.concatenate([s.phi, jnp.zeros(self.num_candidates)]))

    def ask(self, theta, lstate, key):
        return self.inner.ask(theta, lstate.inner, key)

    def tell(self, theta, lstate, candidates, returns, key, k):
        s = self.inner.tell(theta, lstate.inner, candidates, returns, key, k)
        return SpyState(inner=s, phi=jnp.concatenate([s.phi, returns]))


def told(learner, theta, channel, taus, taus_fb, keys):
    """Returns told at every update, ``[B, K, P]``, and phi_K ``[B, D]``, for B lifetimes."""
    spy = Spy(learner)
    life = make_lifetime(spy, EVAL, record_curve=True, channel=channel)
    _, aux = jax.vmap(life, (None, 0, 0, 0))(theta, taus, keys, taus_fb)
    d = learner.phi_size
    return aux["phis"][:, 1:, d:], aux["phis"][:, -1, :d]


# --- the cross-task matrix of a true optimizer, given against shuffled ---------------------------


def _draw(channel, key):
    """One cross-task matrix on the held-out tasks: row a runs the ES on HELDOUT[a], told the
    returns on tau_fb[a] (an independent draw, used only by ``shuffled``); ``(S, accuracy)``."""
    k_fb, k_life = jax.random.split(key)
    taus_fb = jax.vmap(FAM.sample_task)(jax.random.split(k_fb, N))
    life = make_lifetime(ES, EVAL, channel=channel)
    phis, _ = jax.vmap(life, (None, 0, 0, 0))(ES_THETA, HELDOUT, jax.random.split(k_life, N),
                                              taus_fb)
    matrix = jax.vmap(lambda p: jax.vmap(lambda t: EVAL(p, t, None))(HELDOUT))(phis)  # [N, N]
    return kernels.objective_sensitivity(matrix), kernels.behavioral_objective(matrix)[1]


@pytest.fixture(scope="module")
def draws():
    keys = jax.random.split(jax.random.PRNGKey(2024), R)
    out = {}
    for channel in ("given", "shuffled"):
        s, a = jax.jit(jax.vmap(lambda k, c=channel: _draw(c, k)))(keys)
        out[channel] = (np.asarray(s, np.float64), np.asarray(a, np.float64))
    return out


def test_given_es_optimizes_its_own_task(draws):
    """The hand-built ES (20 updates of 16 candidates, step 0.3, noise 0.3, from phi_0 = 0)
    ends near its own task: S > 1 and accuracy >= 5/6 in every one of the R draws (measured:
    S = 1.68 +- 0.006, accuracy 1 in all of them)."""
    s, a = draws["given"]
    assert s.min() > 1.0, s.min()
    assert a.min() >= 5 / 6 - 1e-6, a.min()


def test_shuffled_es_is_at_chance(draws):
    """Under ``shuffled`` row a's result depends on (tau_fb[a], keys[a]) only, i.i.d. across
    rows and independent of the held-out tasks. Then, exactly (average over row permutations,
    which leave std(T) and the joint law unchanged): E[S] = 0 and E[accuracy] = 1/n. The
    tolerances are 4 standard errors of the mean over the R draws (a false alarm rate of 6e-5
    for a correct implementation); the SE is the sample sd / sqrt(R), about 0.3 / sqrt(512) =
    0.013 for S and 0.14 / sqrt(512) = 0.006 for accuracy."""
    s, a = draws["shuffled"]
    se_s, se_a = s.std(ddof=1) / np.sqrt(R), a.std(ddof=1) / np.sqrt(R)
    assert abs(s.mean()) < 4 * se_s, (s.mean(), se_s)
    assert abs(a.mean() - 1 / N) < 4 * se_a, (a.mean(), se_a)
    # "near 0" for a single draw: the shuffled learner never reaches the given learner's
    # sensitivity (null sd about 0.3, its largest |S| in 4000 draws was 1.09; given: 1.65+)
    s_given, _ = draws["given"]
    assert np.quantile(np.abs(s), 0.99) < 1.0
    assert s.max() < s_given.min()
    # and a sensible spread (a constant S would pass the tests above vacuously)
    assert 0.1 < s.std() < 0.6


# --- shuffled: bit for bit --------------------------------------------------------------------


@pytest.mark.parametrize("name,learner,theta", CASES, ids=[c[0] for c in CASES])
def test_shuffled_with_its_own_task_is_given(name, learner, theta):
    keys = jax.random.split(jax.random.PRNGKey(1), 8)
    taus = jax.vmap(FAM.sample_task)(keys)
    given = make_lifetime(learner, EVAL, record_curve=True, channel="given")
    shuffled = make_lifetime(learner, EVAL, record_curve=True, channel="shuffled")
    a = jax.vmap(given, (None, 0, 0, 0))(theta, taus, keys, taus)
    b = jax.vmap(shuffled, (None, 0, 0, 0))(theta, taus, keys, taus)
    np.testing.assert_array_equal(np.asarray(a[1]["phis"]), np.asarray(b[1]["phis"]))
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    # the learner's own reward channel (learner.reward) is what make_lifetime uses by default
    learner.reward = "shuffled"
    try:
        c = jax.vmap(make_lifetime(learner, EVAL), (None, 0, 0, 0))(theta, taus, keys, taus)
    finally:
        learner.reward = "given"
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(c[0]))


@pytest.mark.parametrize("name,learner,theta", CASES, ids=[c[0] for c in CASES])
def test_shuffled_is_given_on_the_feedback_task(name, learner, theta):
    """A shuffled lifetime on tau, told tau_fb's returns, is bit for bit the given lifetime on
    tau_fb: it carries no information about tau (and tells exactly what a given learner is
    told on a task from the same distribution)."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
    taus = jax.vmap(FAM.sample_task)(jax.random.split(k1, 8))
    taus_fb = jax.vmap(FAM.sample_task)(jax.random.split(k2, 8))
    keys = jax.random.split(k3, 8)
    r_sh, phi_sh = told(learner, theta, "shuffled", taus, taus_fb, keys)
    r_gv, phi_gv = told(learner, theta, "given", taus_fb, taus, keys)
    np.testing.assert_array_equal(np.asarray(phi_sh), np.asarray(phi_gv))
    np.testing.assert_array_equal(np.asarray(r_sh), np.asarray(r_gv))
    # and it does not depend on its own task at all
    r_other, phi_other = told(learner, theta, "shuffled", taus[::-1], taus_fb, keys)
    np.testing.assert_array_equal(np.asarray(phi_sh), np.asarray(phi_other))
    # while the given lifetime does (the learner responds: the check above is not vacuous)
    _, phi_own = told(learner, theta, "given", taus, taus_fb, keys)
    assert not np.array_equal(np.asarray(phi_own), np.asarray(phi_sh))


def test_shuffled_tells_returns_with_the_given_distribution():
    """The returns a shuffled ES is told, over 1024 tasks, have the distribution of those a
    given ES is told (independent tasks, so two independent samples): per update, the means
    agree within 4 standard errors of their difference, and a two-sample Kolmogorov-Smirnov
    test of the per-lifetime mean return does not reject at 1e-3. The same KS test does reject
    an ES with step 0 (the distribution of a non-learner's returns), so it has power here."""
    n = 1024
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    taus_a = jax.vmap(FAM.sample_task)(jax.random.split(k1, n))
    taus_b = jax.vmap(FAM.sample_task)(jax.random.split(k2, n))
    taus_fb = jax.vmap(FAM.sample_task)(jax.random.split(k3, n))
    keys = jax.random.split(k4, n)
    given, _ = told(ES, ES_THETA, "given", taus_a, taus_a, keys)
    shuffled, _ = told(ES, ES_THETA, "shuffled", taus_b, taus_fb, keys)
    given, shuffled = np.asarray(given, np.float64), np.asarray(shuffled, np.float64)
    assert given.shape == (n, K, P)
    g_k, s_k = given.mean(axis=2), shuffled.mean(axis=2)  # [n, K] mean return per update
    se = np.sqrt(g_k.var(axis=0, ddof=1) / n + s_k.var(axis=0, ddof=1) / n)
    assert np.all(np.abs(g_k.mean(axis=0) - s_k.mean(axis=0)) < 4 * se)
    # the returns rise over the lifetime in both (the ES learns from what it is told)
    assert g_k.mean(axis=0)[-1] > g_k.mean(axis=0)[0] + 3.0
    assert s_k.mean(axis=0)[-1] > s_k.mean(axis=0)[0] + 3.0
    g_life, s_life = g_k.mean(axis=1), s_k.mean(axis=1)
    assert stats.ks_2samp(g_life, s_life).pvalue > 1e-3
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        # quantiles: the share of given's sample below shuffled's q-quantile is q within 4
        # standard errors (the sd of that share is about sqrt(2 q (1 - q) / n), two samples)
        share = np.mean(g_life <= np.quantile(s_life, q))
        assert abs(share - q) < 4 * np.sqrt(2 * q * (1 - q) / n), (q, share)
    still = ES_THETA.at[DIM].set(0.0)
    frozen, _ = told(ES, still, "given", taus_b, taus_b, keys)
    f_life = np.asarray(frozen, np.float64).mean(axis=(1, 2))
    assert stats.ks_2samp(g_life, f_life).pvalue < 1e-6


# --- blind --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,learner,theta", CASES, ids=[c[0] for c in CASES])
def test_blind_tells_zeros(name, learner, theta):
    keys = jax.random.split(jax.random.PRNGKey(4), 8)
    taus = jax.vmap(FAM.sample_task)(keys)
    rets, phi_k = told(learner, theta, "blind", taus, taus[::-1], keys)
    np.testing.assert_array_equal(np.asarray(rets), 0.0)
    # so the lifetime cannot depend on the task (same keys, other tasks: the same phi_K)
    _, phi_other = told(learner, theta, "blind", taus[::-1], taus, keys)
    np.testing.assert_array_equal(np.asarray(phi_k), np.asarray(phi_other))


def test_blind_es_never_moves():
    """All-equal returns carry no ranking: their centered ranks are all 0, so the ES step is
    exactly 0 and phi_K == phi_0 whatever the step size, noise and keys."""
    keys = jax.random.split(jax.random.PRNGKey(5), 8)
    taus = jax.vmap(FAM.sample_task)(keys)
    life = make_lifetime(ES, EVAL, record_curve=True, channel="blind")
    for step in (0.3, 5.0, -2.0):
        theta = ES_THETA.at[DIM].set(step)
        phi_k, aux = jax.vmap(life, (None, 0, 0))(theta, taus, keys)
        np.testing.assert_array_equal(np.asarray(aux["phis"]), 0.0)
        np.testing.assert_array_equal(np.asarray(phi_k), 0.0)


def test_blind_and_shuffled_keep_the_compute_and_the_nan_count():
    """Every channel evaluates the same candidates' returns (blind throws them away after the
    NaN count): a NaN return counts in every channel."""
    def nan_eval(phi, tau, key):
        return jnp.where(phi[0] > 0, jnp.nan, EVAL(phi, tau, key))
    counts = {}
    for channel in ("given", "shuffled", "blind"):
        life = make_lifetime(ES, nan_eval, channel=channel)
        _, aux = life(ES_THETA.at[DIM].set(0.0), HELDOUT[0], jax.random.PRNGKey(0), HELDOUT[1])
        counts[channel] = int(aux["nan"])
    assert counts["given"] == counts["shuffled"] == counts["blind"] > 0


def test_unknown_channel_is_refused():
    with pytest.raises(ValueError, match="learner.reward"):
        make_lifetime(ES, EVAL, channel="bogus")


# --- the meta level: the control consumes the same keys ---------------------------------------

GRU_ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=4",
                "learner.kind=gru", "learner.lifetime=6", "learner.candidates=2",
                "learner.hidden=8", "meta.population=6", "log.progress=false"]


def test_meta_fitness_of_the_shuffled_control():
    """``Meta.fitness`` draws the feedback tasks in every channel: with one fixed task
    (diversity 1) tau_fb == tau, so the shuffled control's fitness equals the given learner's
    bit for bit; with varying tasks they differ, and blind differs from both."""
    cfg = load_config(None, GRU_ANALYTIC)
    metas = {r: Meta(cfg, reward=r) for r in ("given", "shuffled", "blind")}
    lr = metas["given"].learner
    thetas = jax.vmap(lambda k: gru_theta(lr, k))(jax.random.split(jax.random.PRNGKey(0), 6))
    key = jax.random.PRNGKey(1)
    fit = {(r, d): np.asarray(jax.jit(m.fitness)(thetas, key, jnp.int32(d))[0])
           for r, m in metas.items() for d in (0, 1)}
    # equal up to float rounding: the lifetimes (phi_K) are bit for bit the same (checked
    # separately), but the two channels are two XLA programs (given drops the tau_fb draw),
    # whose final reductions may round differently (1 ulp seen on CPU)
    np.testing.assert_allclose(fit[("given", 1)], fit[("shuffled", 1)], rtol=1e-6, atol=0)
    assert not np.array_equal(fit[("given", 0)], fit[("shuffled", 0)])
    assert not np.array_equal(fit[("given", 0)], fit[("blind", 0)])
    assert not np.array_equal(fit[("given", 1)], fit[("blind", 1)])
