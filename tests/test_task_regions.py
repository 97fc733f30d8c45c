"""Training regions of the task families: draws lie in or out as asked, projection is the
nearest in-region task and idempotent, region "none" leaves pools and draws bit-identical."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo.tasks import POOL_SIZE, Analytic, AntDir, HalfCheetahVel, ReacherGoal

N = 512


def _bare(cls):
    # the region methods never touch the Brax env: skip building it (tests stay fast)
    return cls.__new__(cls)


FAMILIES = {
    "analytic": Analytic(dim=4),
    "reacher_goal": _bare(ReacherGoal),
    "halfcheetah_vel": _bare(HalfCheetahVel),
    "ant_dir": _bare(AntDir),
}
CASES = [
    ("analytic", "halfspace"),
    ("analytic", "shell"),
    ("analytic", "shell:0.5:1.0"),
    ("reacher_goal", "half_disc"),
    ("halfcheetah_vel", "interval"),
    ("halfcheetah_vel", "interval:1:2"),
    ("ant_dir", "interval"),
    ("ant_dir", "interval:1:2.5"),
]


def inside(fam, taus, region):
    return np.asarray(jax.vmap(lambda t: fam.in_region(t, region))(taus))


@pytest.mark.parametrize("family,region", CASES)
def test_draws_lie_in_and_out_as_asked(family, region):
    fam = FAMILIES[family]
    ind = fam.heldout_tasks(jax.random.PRNGKey(0), N, region, inside=True)
    ood = fam.heldout_tasks(jax.random.PRNGKey(1), N, region, inside=False)
    assert ind.shape == ood.shape == (N, fam.task_dim)
    assert inside(fam, ind, region).all()
    assert not inside(fam, ood, region).any()
    # outside draws stay in the family's task space
    full = jax.vmap(fam.sample_task)(jax.random.split(jax.random.PRNGKey(2), N))
    lo, hi = np.asarray(full).min(0), np.asarray(full).max(0)
    if family != "analytic":
        span = hi - lo
        assert np.all(np.asarray(ood) >= lo - 0.05 * span)
        assert np.all(np.asarray(ood) <= hi + 0.05 * span)
    # the training pool and fresh training draws lie inside
    pool = fam.train_pool(5, region)
    assert pool.shape == (POOL_SIZE, fam.task_dim) and inside(fam, pool, region).all()
    fresh = jax.vmap(lambda k: fam.sample_train(k, pool, 0, region))(
        jax.random.split(jax.random.PRNGKey(3), 64))
    assert inside(fam, fresh, region).all()


@pytest.mark.parametrize("family,region", CASES)
def test_projection_is_nearest_inside_and_idempotent(family, region):
    fam = FAMILIES[family]
    taus = jnp.concatenate([
        fam.heldout_tasks(jax.random.PRNGKey(4), N, region, inside=False),
        fam.heldout_tasks(jax.random.PRNGKey(5), N, region, inside=True)])
    proj = jax.vmap(lambda t: fam.region_project(t, region))(taus)
    assert inside(fam, proj, region).all()
    again = jax.vmap(lambda t: fam.region_project(t, region))(proj)
    np.testing.assert_array_equal(again, proj)  # idempotent, bit for bit
    np.testing.assert_array_equal(proj[N:], taus[N:])  # inside: unchanged
    # nearest: no in-region task is closer (checked against in-region draws)
    cand = fam.heldout_tasks(jax.random.PRNGKey(6), 2048, region, inside=True)
    dist = jax.vmap(lambda t: jax.vmap(lambda c: fam.task_distance(c, t))(cand))(taus[:64])
    d_proj = jax.vmap(fam.task_distance)(proj[:64], taus[:64])
    assert np.all(np.asarray(d_proj) <= np.asarray(dist).min(1) + 1e-5)


def test_known_projections():
    a = FAMILIES["analytic"]
    np.testing.assert_array_equal(a.region_project(jnp.array([-2.0, 1, 2, 3]), "halfspace"),
                                  [0.0, 1, 2, 3])
    np.testing.assert_allclose(a.region_project(jnp.array([3.0, 4, 0, 0]), "shell:1:2"),
                               [1.2, 1.6, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(a.region_project(jnp.array([0.3, 0.4, 0, 0]), "shell:1:2"),
                               [0.6, 0.8, 0, 0], rtol=1e-6)
    r = FAMILIES["reacher_goal"]
    np.testing.assert_array_equal(r.region_project(jnp.array([-0.1, 0.05]), "half_disc"),
                                  np.float32([0.0, 0.05]))
    h = FAMILIES["halfcheetah_vel"]
    assert h.parse_region("interval") == ("interval", (0.0, 1.5))
    np.testing.assert_array_equal(h.region_project(jnp.array([2.5]), "interval"), [1.5])
    ant = FAMILIES["ant_dir"]
    # default arc [-pi/2, pi/2]: pi - 0.1 is nearer +pi/2, pi + 0.1 nearer -pi/2 (= 3 pi/2)
    np.testing.assert_allclose(ant.region_project(jnp.array([np.pi - 0.1]), "interval"),
                               [np.pi / 2], rtol=1e-6)
    np.testing.assert_allclose(ant.region_project(jnp.array([np.pi + 0.1]), "interval"),
                               [1.5 * np.pi], rtol=1e-6)
    assert bool(ant.in_region(jnp.array([0.1]), "interval"))
    assert bool(ant.in_region(jnp.array([2 * np.pi - 0.1]), "interval"))


def test_region_none_is_unchanged():
    for fam in FAMILIES.values():
        keys = jax.random.split(jax.random.PRNGKey(1234), POOL_SIZE)
        before = jax.vmap(fam.sample_task)(keys)  # what train_pool always returned
        np.testing.assert_array_equal(fam.train_pool(1234), before)
        np.testing.assert_array_equal(fam.train_pool(1234, "none"), before)

        def old_sample_train(key, pool, diversity, fam=fam):  # the code before regions
            d = jnp.asarray(diversity, jnp.int32)
            k1, k2 = jax.random.split(key)
            idx = jax.random.randint(k1, (), 0, jnp.maximum(d, 1))
            return jnp.where(d > 0, pool[idx], fam.sample_task(k2))

        tkeys = jax.random.split(jax.random.PRNGKey(7), 32)
        for d in (0, 1, 5):
            np.testing.assert_array_equal(
                jax.vmap(fam.sample_train, (0, None, None))(tkeys, before, d),
                jax.vmap(old_sample_train, (0, None, None))(tkeys, before, d))
        # held-out draws for "none" are measure.heldout_tasks' draws
        np.testing.assert_array_equal(
            fam.heldout_tasks(jax.random.PRNGKey(0), 6),
            jax.vmap(fam.sample_task)(jax.random.split(jax.random.PRNGKey(0), 6)))
        assert fam.region_proxy_names("none") == ()
        taus = before[:4]
        np.testing.assert_array_equal(fam.region_project(taus[0], "none"), taus[0])
        cols = fam.matrix_columns(taus)
        fixed = fam.proxy_tasks()
        assert cols.shape == (4, 4 + fixed.shape[0], fam.task_dim)
        np.testing.assert_array_equal(cols[2, :4], taus)
        np.testing.assert_array_equal(cols[2, 4:], fixed)
        assert fam.matrix_proxy_names() == tuple(fam.proxy_names)
        with pytest.raises(ValueError):
            fam.sample_region(jax.random.PRNGKey(0), "none", inside=False)


def test_region_proxies_per_row():
    a = FAMILIES["analytic"]
    pool = a.train_pool(0, "halfspace")
    # the mean of a half-normal first coordinate: sqrt(2/pi); the others 0 (4096 draws)
    np.testing.assert_allclose(a.mean_train_task(pool, 0), [np.sqrt(2 / np.pi), 0, 0, 0],
                               atol=0.05)
    np.testing.assert_allclose(a.mean_train_task(pool, 3), pool[:3].mean(0), rtol=1e-6)
    # traced diversity works
    assert jax.jit(a.mean_train_task)(pool, jnp.int32(3)).shape == (4,)
    taus = jnp.array([[-1.0, 2, 0, 0], [1.0, 2, 0, 0]])
    prox = a.region_proxies(taus, "halfspace", pool, 3)
    assert a.region_proxy_names("halfspace") == ("nearest_in_region", "mean_train_task")
    np.testing.assert_array_equal(prox[:, 0], [[0.0, 2, 0, 0], [1.0, 2, 0, 0]])
    np.testing.assert_allclose(prox[:, 1], np.tile(pool[:3].mean(0), (2, 1)), rtol=1e-6)
    cols = a.matrix_columns(taus, "halfspace", pool, 3)
    assert cols.shape == (2, 2 + 1 + 2, 4)
    assert a.matrix_proxy_names("halfspace") == ("mean_task", "nearest_in_region",
                                                 "mean_train_task")
    # identification's proxy: the nearest of the first d training tasks
    near = a.nearest_pool_task(pool[1] + 1e-3, pool, 3)
    np.testing.assert_array_equal(near, pool[1])

    h = FAMILIES["halfcheetah_vel"]
    hp = h.region_proxies(jnp.array([[2.5], [1.0]]), "interval", h.train_pool(0, "interval"), 0)
    assert h.region_proxy_names("interval")[-1] == "train_forward"
    np.testing.assert_allclose(hp[:, 0, 0], [1.5, 1.0])
    np.testing.assert_allclose(hp[:, 1, 0], [0.75, 0.75], atol=0.05)
    np.testing.assert_allclose(hp[:, 2, 0], [0.75, 0.75])

    ant = FAMILIES["ant_dir"]
    mean = ant.mean_train_task(ant.train_pool(0, "interval"), 0)  # circular: about 0
    assert float(ant.task_distance(mean, jnp.zeros(1))) < 0.05
    assert ant.region_proxies(jnp.zeros((3, 1)), "interval", ant.train_pool(0, "interval"),
                              0).shape == (3, 3, 1)


def test_sampling_is_jittable_and_bad_regions_raise():
    a = FAMILIES["analytic"]
    draw = jax.jit(lambda k: a.sample_region(k, "shell", inside=False))
    assert not bool(a.in_region(draw(jax.random.PRNGKey(0)), "shell"))
    for fam, bad in [(a, "sphere"), (a, "shell:2:1"), (a, "halfspace:1"), (a, "shell:x:1"),
                     (FAMILIES["halfcheetah_vel"], "interval:0:3"),
                     (FAMILIES["halfcheetah_vel"], "interval:1:4"),
                     (FAMILIES["ant_dir"], "interval:0:7"),
                     (FAMILIES["reacher_goal"], "halfspace")]:
        with pytest.raises(ValueError):
            fam.parse_region(bad)


def test_shell_draws_follow_the_conditional_radius():
    # r = |tau| of a standard 4-D Gaussian: P(r <= 1.5 / r <= 2.5) = 1 - e^{-x}(1 + x), x =
    # r^2 / 2; inside the default shell [1.5, 2.5] the conditional CDF at r = 2 is then
    # (F(2) - F(1.5)) / (F(2.5) - F(1.5))
    a = FAMILIES["analytic"]

    def cdf(r):
        x = r * r / 2
        return 1 - np.exp(-x) * (1 + x)

    taus = a.heldout_tasks(jax.random.PRNGKey(11), 4000, "shell", inside=True)
    r = np.linalg.norm(np.asarray(taus), axis=1)
    want = (cdf(2.0) - cdf(1.5)) / (cdf(2.5) - cdf(1.5))
    assert np.mean(r <= 2.0) == pytest.approx(want, abs=0.03)
