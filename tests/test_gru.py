"""``gru``, the black-box learned optimizer: its theta layout and inputs, jit/vmap with one
compile per shape, no learning at meta-init (the amortized control, whatever the returns),
the amortized control embedding, NaN returns, the ``last_half`` meta-fitness, and (at the
end) what selection makes of it on ``analytic``: given against shuffled reward, varying
against fixed tasks."""

import os
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from meta_evo import engine
from meta_evo.agents import DirectAgent
from meta_evo.config import load_config
from meta_evo.learners import Amortized, GRULearner, InnerES, make_lifetime
from meta_evo.learners.gru import symlog
from meta_evo.meta import Meta
from meta_evo.tasks import Analytic

DIM, K, HIDDEN = 4, 12, 16
FAM = Analytic(dim=DIM)
EVAL = FAM.make_evaluator(None, 1)
TAU = jnp.array([1.0, -1.0, 0.5, 2.0])
PHI0 = jnp.array([0.3, -0.7, 1.1, 0.0])


def gru(p=1, lifetime=K, hidden=HIDDEN):
    return GRULearner(DirectAgent(DIM), lifetime, p, hidden, phi_init=lambda k: PHI0)


def with_weights(learner, key, out_scale=0.0, scale=1.0):
    """A theta of ``learner`` with every GRU weight drawn N(0, scale^2) and the output kernel
    drawn N(0, out_scale^2) (0: the meta-init output layer), bias B = phi_0 tiled."""
    params = learner._unravel(learner.init_theta(jax.random.PRNGKey(0)))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    params = jax.tree.unflatten(tree, [scale * jax.random.normal(k, x.shape)
                                       for k, x in zip(keys, leaves, strict=True)])
    k_out = jax.random.fold_in(key, 7)
    params["params"]["out"]["kernel"] = out_scale * jax.random.normal(
        k_out, params["params"]["out"]["kernel"].shape)
    params["params"]["out"]["bias"] = jnp.tile(PHI0, learner.num_candidates)
    return ravel_pytree(params)[0]


def noisy_eval(phi, tau, key):
    """Returns unrelated to phi's quality: huge, signed, random (a stress of the z-scores)."""
    return 1e6 * jax.random.normal(key) + jnp.sum(phi) * 1e3


def nan_eval(phi, tau, key):
    """NaN for about half the candidates, +-inf for some, else the analytic return."""
    u = jax.random.uniform(jax.random.fold_in(key, jnp.sum(jnp.abs(phi) * 1e3).astype(
        jnp.int32)))
    r = EVAL(phi, tau, key)
    return jnp.where(u < 0.5, jnp.nan, jnp.where(u < 0.6, jnp.inf, jnp.where(u < 0.7,
                                                                             -jnp.inf, r)))


# --- layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 3])
def test_theta_is_the_flat_network(p):
    lr = gru(p)
    theta = lr.init_theta(jax.random.PRNGKey(0))
    assert theta.shape == (lr.theta_size,) and theta.dtype == jnp.float32
    params = lr._unravel(theta)
    n_weights = sum(x.size for x in jax.tree.leaves(params))
    assert lr.theta_size == n_weights
    # the cell sees, per candidate, its D parameters and two views of its return, plus k/K
    assert lr.in_size == p * (DIM + 2) + 1
    for gate in ("ir", "iz", "in"):
        assert params["params"]["gru"][gate]["kernel"].shape == (lr.in_size, HIDDEN)
    out = params["params"]["out"]
    assert out["kernel"].shape == (HIDDEN, p * DIM)
    np.testing.assert_array_equal(np.asarray(out["kernel"]), 0.0)  # meta-init: W = 0
    np.testing.assert_array_equal(np.asarray(out["bias"]), np.tile(np.asarray(PHI0), p))
    np.testing.assert_array_equal(np.asarray(lr.phi0(theta)), np.asarray(PHI0))
    assert float(lr.describe(theta)["out_norm"]) == 0.0


def test_default_phi0_draws_from_the_agent():
    lr = GRULearner(DirectAgent(DIM), K, 2, HIDDEN)
    a, b = (lr.init_theta(jax.random.PRNGKey(s)) for s in (0, 1))
    assert not np.array_equal(np.asarray(lr.phi0(a)), np.asarray(lr.phi0(b)))


# --- jit, vmap, one compile per shape -------------------------------------------------------


@pytest.mark.parametrize("p", [1, 3])
def test_jit_vmap_over_theta_compiles_once(p):
    lr = gru(p, lifetime=4)
    life = make_lifetime(lr, EVAL, record_curve=True)
    traces = []

    @jax.jit
    @chex.assert_max_traces(n=1)
    def batch(thetas, taus, key):
        traces.append(1)
        keys = jax.random.split(key, thetas.shape[0])
        return jax.vmap(life)(thetas, taus, keys)  # over theta (and task, key)

    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    thetas = jax.vmap(lambda k: with_weights(lr, k, out_scale=0.3))(keys)
    taus = jax.vmap(FAM.sample_task)(keys)
    phi_k, aux = batch(thetas, taus, jax.random.PRNGKey(1))
    assert phi_k.shape == (5, DIM) and aux["phis"].shape == (5, 5, DIM)
    # second call, new values, same shapes: no retrace, no recompile
    phi_k2, _ = batch(thetas * 0.5, taus + 1.0, jax.random.PRNGKey(2))
    assert len(traces) == 1 and batch._cache_size() == 1
    assert np.all(np.isfinite(np.asarray(phi_k))) and np.all(np.isfinite(np.asarray(phi_k2)))
    assert not np.array_equal(np.asarray(phi_k), np.asarray(phi_k2))
    # vmapped == one at a time (the batch axis does not mix members)
    one, _ = jax.jit(life)(thetas[2], taus[2], jax.random.split(jax.random.PRNGKey(1), 5)[2])
    np.testing.assert_allclose(np.asarray(phi_k[2]), np.asarray(one), rtol=1e-5, atol=1e-6)
    chex.clear_trace_counter()


# --- meta-init: the amortized control, whatever the returns ---------------------------------


@pytest.mark.parametrize("p", [1, 3])
@pytest.mark.parametrize("evaluate", [EVAL, noisy_eval, nan_eval],
                         ids=["analytic", "noise", "nan"])
def test_meta_init_proposes_phi0_whatever_the_returns(p, evaluate):
    """Output kernel 0 (however large the other weights): every proposal is phi_0 exactly, the
    same lifetime as the ``amortized`` learner with theta = phi_0; the lifetime curve is flat."""
    lr = gru(p)
    am = Amortized(DirectAgent(DIM), K)
    for theta in (lr.init_theta(jax.random.PRNGKey(3)),
                  with_weights(lr, jax.random.PRNGKey(4), out_scale=0.0, scale=3.0)):
        phi_k, aux = jax.jit(make_lifetime(lr, evaluate, record_curve=True))(
            theta, TAU, jax.random.PRNGKey(5))
        phis = np.asarray(aux["phis"])
        assert phis.shape == (K + 1, DIM)
        np.testing.assert_array_equal(phis, np.broadcast_to(np.asarray(PHI0), phis.shape))
        am_k, am_aux = make_lifetime(am, evaluate, record_curve=True)(
            PHI0, TAU, jax.random.PRNGKey(5))
        np.testing.assert_array_equal(np.asarray(phi_k), np.asarray(am_k))
        np.testing.assert_array_equal(phis, np.asarray(am_aux["phis"]))
        curve = np.asarray(jax.vmap(EVAL, (0, None, None))(aux["phis"], TAU, None))
        assert np.all(curve == curve[0])


def test_control_embedding_of_amortized_never_moves():
    lr = gru(3)
    am = Amortized(DirectAgent(DIM), K)
    embed = lr.control_embedding(am)
    assert embed is not None
    phi0s = jax.random.normal(jax.random.PRNGKey(0), (6, DIM)) * 2.0
    thetas = embed(phi0s)
    assert thetas.shape == (6, lr.theta_size)
    life = jax.jit(jax.vmap(make_lifetime(lr, EVAL, record_curve=True), (0, 0, None)))
    taus = jax.vmap(FAM.sample_task)(jax.random.split(jax.random.PRNGKey(1), 6))
    phi_k, aux = life(thetas, taus, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(np.asarray(phi_k), np.asarray(phi0s))
    np.testing.assert_array_equal(
        np.asarray(aux["phis"]), np.broadcast_to(np.asarray(phi0s)[:, None], (6, K + 1, DIM)))
    # only the amortized learner (theta = phi_0) embeds
    assert lr.control_embedding(InnerES(DirectAgent(DIM), K, 4)) is None
    assert lr.control_embedding(Amortized(DirectAgent(DIM + 1), K)) is None


# --- what the cell receives -------------------------------------------------------------------


def test_cell_receives_the_candidates_and_their_returns():
    """With P = 3 the cell's input at update k is [the P candidates (P*D), their z-scores
    against the lifetime's running statistics (P), symlog of their returns (P), k / K], and it
    proposes P new candidates."""
    p = 3
    lr = gru(p)
    theta = with_weights(lr, jax.random.PRNGKey(0), out_scale=0.5)
    seen = []
    real_step = lr._step

    def spy(theta, h, x):
        seen.append(np.asarray(x))
        return real_step(theta, h, x)

    lr._step = spy  # eager calls below: x is concrete
    state = lr.init(theta)
    cands = lr.ask(theta, state, None)
    assert cands.shape == (p, DIM)
    np.testing.assert_array_equal(np.asarray(cands), np.tile(np.asarray(PHI0), (p, 1)))
    history = []
    for k in range(3):
        cands = lr.ask(theta, state, None)
        rets = jax.vmap(EVAL, (0, None, None))(cands, TAU, None)
        history.append(np.asarray(rets))
        state = lr.tell(theta, state, cands, rets, None, k)
        x = seen[-1]
        assert x.shape == (p * (DIM + 2) + 1,)
        np.testing.assert_array_equal(x[:p * DIM], np.asarray(cands).ravel())
        allr = np.concatenate(history)
        z = (np.asarray(rets) - allr.mean()) / (allr.std(ddof=1) + 1e-8)
        np.testing.assert_allclose(x[p * DIM:p * DIM + p], np.clip(z, -5, 5), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(x[p * DIM + p:p * DIM + 2 * p], np.asarray(symlog(rets)),
                                   rtol=1e-6)
        assert x[-1] == pytest.approx(k / K)
        assert state.cands.shape == (p, DIM)
        np.testing.assert_array_equal(np.asarray(state.phi), np.asarray(state.cands[0]))
    # after an update the P proposals differ (a nonzero output layer), and each candidate's
    # return and parameters reach the next proposal
    assert len({tuple(r) for r in np.asarray(state.cands)}) == p
    lr._step = real_step
    cands = state.cands
    rets = jax.vmap(EVAL, (0, None, None))(cands, TAU, None)

    def nxt(c, r):
        return lr.tell(theta, state, c, r, None, 3).cands

    d_ret = np.asarray(jax.jacobian(nxt, argnums=1)(cands, rets))  # [P, D, P]
    d_cand = np.asarray(jax.jacobian(nxt, argnums=0)(cands, rets))  # [P, D, P, D]
    for j in range(p):
        assert np.abs(d_ret[..., j]).max() > 1e-6, j
        assert np.abs(d_cand[:, :, j, :]).max() > 1e-6, j


def test_lifetime_evaluates_p_candidates_per_update():
    p = 3
    lr = gru(p)
    theta = with_weights(lr, jax.random.PRNGKey(0), out_scale=0.3)
    _, aux = make_lifetime(lr, lambda phi, tau, key: jnp.nan)(theta, TAU, jax.random.PRNGKey(0))
    assert int(aux["nan"]) == K * p


# --- NaN returns --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 4])
def test_nan_returns_do_not_make_proposals_nan(p):
    lr = gru(p)
    thetas = jax.vmap(lambda k: with_weights(lr, k, out_scale=1.0))(
        jax.random.split(jax.random.PRNGKey(0), 8))
    evals = {"some": nan_eval, "all": lambda phi, tau, key: jnp.nan,
             "inf": lambda phi, tau, key: -jnp.inf}
    for name, ev in evals.items():
        life = jax.jit(jax.vmap(make_lifetime(lr, ev, record_curve=True), (0, None, None)))
        phi_k, aux = life(thetas, TAU, jax.random.PRNGKey(1))
        assert np.all(np.isfinite(np.asarray(aux["phis"]))), name
        assert np.all(np.asarray(aux["nan"]) > 0), name
    # a NaN return reads as the worst (z = -5, symlog = -10), not as information that is lost:
    # all-NaN and all--inf lifetimes propose the same
    a, _ = make_lifetime(lr, evals["all"])(thetas[0], TAU, jax.random.PRNGKey(1))
    b, _ = make_lifetime(lr, evals["inf"])(thetas[0], TAU, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --- last_half fitness ------------------------------------------------------------------------

GRU_ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=3",
                "task.eval_episodes=1", "learner.kind=gru", f"learner.lifetime={K}",
                "learner.candidates=1", f"learner.hidden={HIDDEN}", "meta.population=4",
                "log.progress=false"]


def _meta(fitness, *extra):
    return Meta(load_config(None, [*GRU_ANALYTIC, f"learner.fitness={fitness}", *extra]))


def test_last_half_at_meta_init_equals_final():
    """At meta-init every proposal is phi_0, so last_half = final = -|phi_0 - tau|^2."""
    last, final = _meta("last_half"), _meta("final")
    assert last.last_half and not final.last_half
    theta = last.learner.init_theta(jax.random.PRNGKey(0))
    phi0 = np.asarray(last.learner.phi0(theta), np.float64)
    for s in range(3):
        tau = FAM.sample_task(jax.random.PRNGKey(10 + s))
        want = -np.sum((phi0 - np.asarray(tau, np.float64)) ** 2)
        r_last, _ = jax.jit(last.score)(theta, tau, jax.random.PRNGKey(s))
        r_final, _ = jax.jit(final.score)(theta, tau, jax.random.PRNGKey(s))
        assert float(r_last) == pytest.approx(want, rel=1e-5)
        assert float(r_final) == pytest.approx(want, rel=1e-5)


def test_last_half_is_the_mean_over_the_last_half_of_the_proposals():
    """With a nonzero output layer: last_half = mean of R(phi_k), k = K//2..K (K//2 + 1 = 7
    proposals for K = 12), computed here by stepping the learner by hand; final = R(phi_K)."""
    last, final = _meta("last_half"), _meta("final")
    lr = last.learner
    params = lr._unravel(lr.init_theta(jax.random.PRNGKey(0)))
    params["params"]["out"]["kernel"] = 0.5 * jax.random.normal(
        jax.random.PRNGKey(1), params["params"]["out"]["kernel"].shape)
    theta = ravel_pytree(params)[0]
    tau = FAM.sample_task(jax.random.PRNGKey(2))
    state, phis = lr.init(theta), [lr.init(theta).phi]
    for k in range(K):  # the gru and the analytic family use no keys
        cands = lr.ask(theta, state, None)
        rets = jax.vmap(EVAL, (0, None, None))(cands, tau, None)
        state = lr.tell(theta, state, cands, rets, None, k)
        phis.append(state.phi)
    curve = np.array([float(EVAL(p, tau, None)) for p in phis])
    assert np.ptp(curve[K // 2:]) > 1e-3  # the proposals move: the two fitnesses differ
    r_last, _ = jax.jit(last.score)(theta, tau, jax.random.PRNGKey(3))
    r_final, _ = jax.jit(final.score)(theta, tau, jax.random.PRNGKey(3))
    assert float(r_last) == pytest.approx(curve[K // 2:].mean(), rel=1e-4, abs=1e-5)
    assert float(r_final) == pytest.approx(curve[-1], rel=1e-4, abs=1e-5)
    # and the meta-generation runs with it (fitness of a population, one compile)
    state = engine.as_group(last.init(jax.random.PRNGKey(0)))
    state, metrics = engine.make_run_chunk(last)(state, np.float32([0.5]), np.int32([0]), 2)
    assert np.all(np.isfinite(np.asarray(metrics["fitness_mean"])))


def test_last_half_is_ignored_by_a_learner_without_proposals():
    """``amortized`` has no proposals during its lifetime: last_half falls back to final."""
    meta = Meta(load_config(None, [*GRU_ANALYTIC, "learner.fitness=last_half"]),
                learner_kind="amortized")
    assert not meta.last_half
    theta = meta.learner.init_theta(jax.random.PRNGKey(0))
    r, _ = meta.score(theta, TAU, jax.random.PRNGKey(1))
    assert float(r) == pytest.approx(-float(jnp.sum(jnp.square(theta - TAU))), rel=1e-6)



# --- what selection makes of it: an evolved gru on analytic --------------------------------------

# The built-in default sweep (configs/sweep_default.yaml: population 64, 8 tasks a member,
# K = 12, hidden 16, sigma 0.05, Open_ES with iid members, 800 generations, 8 seeds) gave, at
# d = 0, sensitivity 0.5/0.71/0.85/0.60 at intensities 0.5/1.0/1.5/2.0 for the given arm and
# about 0 for the shuffled arm; at d = 1 about 0 in both. The CI size below keeps the strongest
# selection (i = 2.0) and cuts generations 4x and seeds 2x. Measured at this size (cfg.seed
# 0..3, 4 seeds each, 2 CPU cores): given S at d = 0 from 0.39 to 0.81 (per-seed), its shuffled
# control from -0.21 to 0.13, every seed's paired difference > 0.2; at d = 1, S from -0.09 to
# 0.27 with means per cfg.seed within [-0.01, 0.07]. 150 generations still separated.
EVOLVED = [  # the built-in default's settings, pinned, then the CI size
    "seed=0", "task.family=analytic", "agent.kind=direct", "task.tasks_per_member=8",
    "task.eval_episodes=1", "learner.kind=gru", "learner.lifetime=12", "learner.candidates=1",
    "learner.hidden=16", "learner.reward=given", "learner.fitness=final",
    "meta.strategy=Open_ES", "meta.population=64", "meta.sigma=0.05", "meta.antithetic=false",
    "meta.selection=truncation", "measure.heldout_tasks=16",
    "meta.generations=200", "meta.chunk=100", "sweep.seeds=4", "sweep.intensities=[2.0]",
    "sweep.diversities=[1, 0]", "sweep.control=shuffled", "log.progress=false"]


def test_evolved_gru_optimizes_varying_tasks_and_memorizes_a_fixed_one():
    from meta_evo.sweep import sweep

    cfg = load_config(None, EVOLVED, default="sweep_default")
    t0 = time.perf_counter()
    res = sweep(cfg, None, progress=False, report=False)
    wall = time.perf_counter() - t0
    g = res.grid
    learner, control = res.arms["learner"], res.arms["control"]
    assert (learner.reward, control.reward) == ("given", "shuffled")
    assert learner.traces["chunk"] == 1 and control.traces["chunk"] == 1  # one compile an arm
    assert control.shared_measure  # measured with the given reward, by the learner's program
    end = cfg.meta.generations

    def at(arm, d, what="objective_sensitivity"):
        sel = g.diversity == d
        assert np.array_equal(g.seed[sel], np.arange(4))  # paired by seed
        return np.asarray(arm.measures[end][what][sel], np.float64)

    # tasks vary (d = 0): the gru optimizes the reward it is given, its shuffled control not
    s_given, s_shuffled = at(learner, 0), at(control, 0)
    diff = s_given - s_shuffled
    assert np.all(diff > 0), (s_given, s_shuffled)  # every seed, paired
    assert diff.mean() > 0.25, (s_given, s_shuffled)  # measured: 0.45 to 0.6 (4 cfg seeds)
    assert s_given.min() > 0.25, s_given
    # the control is at chance: the null sd of S here is about 0.1 a seed (shuffled column
    # above), so the mean of 4 seeds is within 3 SE (0.15) of 0
    assert abs(s_shuffled.mean()) < 0.15, s_shuffled
    assert at(learner, 0, "behavioral_accuracy").mean() > at(control, 0,
                                                             "behavioral_accuracy").mean()
    # one fixed task (d = 1): it memorizes (training fitness near the optimum 0, far above
    # d = 0's) and is not sensitive to the objective: S near 0 in the same sense as the
    # control's, and below the d = 0 learner's on every seed
    s_fixed = at(learner, 1)
    assert abs(s_fixed.mean()) < 0.15 and np.abs(s_fixed).max() < 0.35, s_fixed
    assert np.all(s_fixed < s_given), (s_fixed, s_given)
    fit = learner.history["fitness_mean"][:, -1]
    fit_fixed, fit_vary = fit[g.diversity == 1].mean(), fit[g.diversity == 0].mean()
    assert fit_fixed > -1.0 and fit_fixed > fit_vary + 1.0, (fit_fixed, fit_vary)
    # with one task tau_fb == tau: the shuffled control memorizes the same way
    assert abs(at(control, 1).mean()) < 0.15
    print(f"evolved gru: {wall:.1f}s; S given {np.round(s_given, 2)}, shuffled "
          f"{np.round(s_shuffled, 2)}, fixed {np.round(s_fixed, 2)}")


@pytest.mark.skipif(os.environ.get("META_EVO_SLOW_TESTS") != "1",
                    reason="reference size, minutes of CPU: set META_EVO_SLOW_TESTS=1")
def test_evolved_gru_at_the_reference_size():
    """The built-in default's size (800 generations, 8 seeds) at three intensities: at d = 0
    the given arm beats its shuffled control on every seed at every intensity (an exact
    one-sided sign-flip p of 2^-8 each), at d = 1 both stay near 0."""
    from meta_evo.sweep import sweep

    over = [o for o in EVOLVED if not o.startswith(("meta.generations", "sweep.seeds",
                                                     "sweep.intensities", "meta.chunk"))]
    cfg = load_config(None, [*over, "meta.generations=800", "meta.chunk=100", "sweep.seeds=8",
                             "sweep.intensities=[0.5, 1.0, 2.0]"], default="sweep_default")
    res = sweep(cfg, None, progress=False, report=False)
    g, end = res.grid, cfg.meta.generations
    s = {name: np.asarray(arm.measures[end]["objective_sensitivity"], np.float64)
         for name, arm in res.arms.items()}
    for i in cfg.sweep.intensities:
        vary = (g.diversity == 0) & (g.intensity == i)
        fixed = (g.diversity == 1) & (g.intensity == i)
        diff = s["learner"][vary] - s["control"][vary]
        assert np.all(diff > 0) and diff.mean() > 0.25, (i, s["learner"][vary],
                                                          s["control"][vary])
        assert abs(s["control"][vary].mean()) < 0.1, (i, s["control"][vary])
        assert abs(s["learner"][fixed].mean()) < 0.1, (i, s["learner"][fixed])
