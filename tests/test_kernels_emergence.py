"""Known answers for the emergence onset: exact sign-flip p-values, the fixed-sequence onset,
the trend test, the unconditional interval and the logistic fit, on synthetic sweeps.

The single-sweep cases are built so the answer does not depend on the noise draw. The
false-onset rate and the power over many sweeps are checked through the report's code path
in ``tests/test_report.py`` (calibration).
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from meta_evo.kernels import (
    EmergenceResult,
    LogisticFit,
    emergence_onset,
    level_pvalues,
    sign_flip_pvalues,
    within_seed_spearman,
)
from meta_evo.kernels import emergence as emergence_module

L, S = 8, 8
PRESSURES = jnp.linspace(0.0, 1.4, L)  # 0, 0.2, ..., 1.4
STEP = (jnp.arange(L) >= 4).astype(jnp.float32)[:, None]  # 0 below level 4, 1 from it


def _centered(x):
    return x - jnp.mean(x, axis=1, keepdims=True)


def _sweep(key, amplitude, centered=True, seeds=S):
    """values = amplitude * step + noise(0.05), control = noise(0.05): [L, S] each."""
    k_values, k_control = jax.random.split(key)
    control = 0.05 * jax.random.normal(k_control, (L, seeds))
    noise = 0.05 * jax.random.normal(k_values, (L, seeds))
    if centered:  # the per-level difference from the control has mean exactly ~0
        noise = _centered(noise) + jnp.mean(control, axis=1, keepdims=True)
    return amplitude * STEP + noise, control


def _brute_p(d: np.ndarray) -> float:
    """Exact one-sided sign-flip p by enumerating every pattern in float64."""
    obs = d.sum()
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=d.size)))
    return float(np.mean(signs @ d >= obs - 1e-9))


def test_sign_flip_p_matches_enumeration():
    rng = np.random.default_rng(0)
    for seeds in (1, 3, 6, 9):
        d = rng.normal(0.3, 1.0, (12, seeds)).astype(np.float32)
        d[0] = np.abs(d[0]) + 0.1  # all positive: the smallest p, 2^-S
        d[1] = 0.0  # no difference at all: p = 1
        signs, exact = emergence_module.sign_patterns(seeds, jax.random.PRNGKey(0), 10)
        assert exact and signs.shape == (2**seeds, seeds)
        p, se = sign_flip_pvalues(jnp.asarray(d), signs, exact)
        np.testing.assert_allclose(p, [_brute_p(row.astype(np.float64)) for row in d])
        assert float(p[0]) == 2.0**-seeds and float(p[1]) == 1.0
        np.testing.assert_array_equal(se, 0.0)


def test_monte_carlo_p_above_16_seeds():
    seeds = 18
    d = np.random.default_rng(1).normal(0.35, 1.0, (1, seeds))
    exact = _brute_p(d[0])
    key = jax.random.PRNGKey(2)
    signs, is_exact = emergence_module.sign_patterns(seeds, key, 20000)
    assert not is_exact and signs.shape == (20000, seeds)
    p, se = sign_flip_pvalues(jnp.asarray(d, jnp.float32), signs, is_exact)
    assert 0.0 < float(se[0]) < 0.005
    assert abs(float(p[0]) - exact) < 4 * float(se[0])
    # the onset kernel reports the same figures and the Monte Carlo smallest p
    values = jnp.asarray(np.repeat(d, 2, axis=0), jnp.float32)
    r = emergence_onset(jnp.array([0.0, 1.0]), values, 0.0, key, num_bootstrap=4, num_mc=999)
    assert not bool(r.exact) and float(r.min_p) == pytest.approx(1 / 1000)
    assert np.all(np.asarray(r.p_level_se) > 0)


def test_spearman_per_seed():
    p = jnp.arange(5.0)
    rising = jnp.stack([p, 2 * p + 1, p**3, jnp.zeros(5)], axis=1)  # [L=5, 4 seeds]
    rho = within_seed_spearman(rising, p)
    np.testing.assert_allclose(rho, [1.0, 1.0, 1.0, 0.0], atol=1e-6)  # constant: rho 0
    noisy = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
    np.testing.assert_allclose(within_seed_spearman(-noisy, p), -within_seed_spearman(noisy, p),
                               atol=1e-6)
    # ties get average ranks: [0, 0, 1, 1, 2] against 0..4
    tied = jnp.array([0.0, 0.0, 1.0, 1.0, 2.0])[:, None]
    r = np.array([1.5, 1.5, 3.5, 3.5, 5.0]) - 3.0
    q = np.arange(5.0) - 2.0
    expected = (r @ q) / math.sqrt((r @ r) * (q @ q))
    assert float(within_seed_spearman(tied, p)[0]) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def step_result():
    values, control = _sweep(jax.random.PRNGKey(0), 1.0)
    return emergence_onset(PRESSURES, values, control, jax.random.PRNGKey(1))


def test_step_onset_recovered(step_result):
    r = step_result
    assert isinstance(r, EmergenceResult) and isinstance(r.fit, LogisticFit)
    assert bool(r.found) and int(r.onset_index) == 4 and bool(r.testable) and bool(r.exact)
    assert float(r.onset) == pytest.approx(float(PRESSURES[4]))
    assert float(r.min_p) == 2.0**-S
    # every seed is above its control from level 4: the smallest p there
    np.testing.assert_array_equal(r.p_level[4:], 2.0**-S)
    assert np.all(np.asarray(r.p_level[:4]) > 0.05)
    np.testing.assert_array_equal(r.significant, np.arange(L) >= 4)
    seq = np.maximum.accumulate(np.asarray(r.p_level)[::-1])[::-1]
    np.testing.assert_array_equal(r.p_sequence, seq)
    assert float(r.p_onset) == 2.0**-S
    # the interval: every resample finds the step at level 4
    assert float(r.onset_prob) == 1.0
    np.testing.assert_array_equal(r.onset_ci_index, [4, 4])
    assert float(r.onset_ci[0]) == float(r.onset_ci[1]) == pytest.approx(float(PRESSURES[4]))
    # the trend: each seed's difference is higher on the step than below it
    assert float(r.trend_rho) > 0.3 and float(r.trend_p) == 2.0**-S
    assert float(PRESSURES[3]) < float(r.midpoint) < float(PRESSURES[4])
    assert float(r.midpoint) == float(r.fit.mid)
    assert float(r.midpoint_ci[0]) <= float(r.midpoint) <= float(r.midpoint_ci[1])
    assert float(PRESSURES[3]) <= float(r.midpoint_ci[0])
    assert float(r.midpoint_ci[1]) <= float(PRESSURES[4])
    assert abs(float(r.fit.lo)) < 0.05 and abs(float(r.fit.hi) - 1.0) < 0.05
    assert float(r.fit.scale) < 0.05  # a sharp step
    np.testing.assert_allclose(r.difference[4:], 1.0, atol=0.1)


def test_flat_sweep_has_no_onset_and_an_unconditional_interval():
    values, control = _sweep(jax.random.PRNGKey(2), 0.0)
    r = emergence_onset(PRESSURES, values, control, jax.random.PRNGKey(1))
    assert not bool(r.found) and int(r.onset_index) == -1 and math.isnan(float(r.onset))
    assert not np.any(np.asarray(r.significant))
    assert float(r.p_onset) == float(r.p_sequence[-1]) == float(r.p_level[-1]) > 0.05
    # "none" is an outcome of the resamples: the upper end of the interval is none
    assert float(r.onset_prob) < 0.5
    assert float(r.onset_ci[1]) == math.inf and int(r.onset_ci_index[1]) == L


def test_too_few_seeds_never_claim_an_onset():
    # 3 seeds: the smallest p is 1/8 > 0.05, so even a huge step is not claimed
    values, control = _sweep(jax.random.PRNGKey(3), 100.0, seeds=3)
    r = emergence_onset(PRESSURES, values, control, jax.random.PRNGKey(4))
    assert not bool(r.testable) and float(r.min_p) == 0.125
    assert not bool(r.found) and float(r.onset_prob) == 0.0
    np.testing.assert_array_equal(r.onset_ci, [math.inf, math.inf])
    np.testing.assert_array_equal(r.p_level[4:], 0.125)
    # ... while at alpha 0.2 the same data pass
    r2 = emergence_onset(PRESSURES, values, control, jax.random.PRNGKey(4), alpha=0.2)
    assert bool(r2.testable) and int(r2.onset_index) == 4


def test_control_forms_agree_and_level_pvalues_match():
    values, _ = _sweep(jax.random.PRNGKey(3), 1.0)
    key = jax.random.PRNGKey(4)
    baseline = values[0]  # the lowest pressure as the per-seed control
    a = emergence_onset(PRESSURES, values, baseline, key)
    b = emergence_onset(PRESSURES, values, jnp.tile(baseline, (L, 1)), key)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert int(a.onset_index) == 4
    c = emergence_onset(PRESSURES, values, 0.5, key)
    assert int(c.onset_index) == 4  # a scalar baseline
    p, seq, min_p = level_pvalues(values, baseline, key)
    np.testing.assert_array_equal(p, a.p_level)
    np.testing.assert_array_equal(seq, a.p_sequence)
    assert float(min_p) == float(a.min_p)
    with pytest.raises(ValueError):
        emergence_onset(PRESSURES, values, jnp.zeros(L + 1), key)
    with pytest.raises(ValueError):
        emergence_onset(PRESSURES, values, 0.0, key, correction="holm")


def test_sequential_rule_against_none():
    # An isolated blip at level 1 and a lasting rise from level 5.
    values, control = _sweep(jax.random.PRNGKey(5), 0.0)
    shift = jnp.zeros((L, 1)).at[1].set(1.0).at[5:].set(1.0)
    values = values + shift
    key = jax.random.PRNGKey(6)
    seq = emergence_onset(PRESSURES, values, control, key)
    none = emergence_onset(PRESSURES, values, control, key, correction="none")
    assert int(seq.onset_index) == 5 and int(none.onset_index) == 1
    # A rise that falls again before the top is no onset under the sequential rule.
    bump = values - shift + jnp.zeros((L, 1)).at[3:6].set(1.0)
    r = emergence_onset(PRESSURES, bump, control, key)
    assert not bool(r.found)


def test_logistic_fit_recovers_parameters():
    p = jnp.linspace(-2.0, 3.0, 12)
    y = 0.2 + 0.6 * jax.nn.sigmoid((p - 0.55) / 0.4)
    fit = jax.jit(emergence_module._fit_logistic)(p, y)
    assert float(fit.mid) == pytest.approx(0.55, abs=1e-2)
    assert float(fit.scale) == pytest.approx(0.4, rel=5e-2)
    assert float(fit.lo) == pytest.approx(0.2, abs=1e-2)
    assert float(fit.hi) == pytest.approx(0.8, abs=1e-2)
    falling = jax.jit(emergence_module._fit_logistic)(p, 1.0 - y)
    assert float(falling.mid) == pytest.approx(0.55, abs=1e-2)
    assert float(falling.hi) < float(falling.lo)


def test_batched_equals_single():
    num = 6
    keys = jax.random.split(jax.random.PRNGKey(7), num)
    amplitudes = jnp.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    data = jax.vmap(lambda k, a: _sweep(k, a, centered=False))(keys, amplitudes)
    alphas = jnp.array([0.05, 0.01, 0.2, 0.05, 0.01, 0.003])
    run = jax.jit(jax.vmap(lambda v, c, a: emergence_onset(
        PRESSURES, v, c, jax.random.PRNGKey(8), num_bootstrap=64, alpha=a)))
    r = run(*data, alphas)
    for q in range(num):
        one = emergence_onset(PRESSURES, data[0][q], data[1][q], jax.random.PRNGKey(8),
                              num_bootstrap=64, alpha=float(alphas[q]))
        assert int(one.onset_index) == int(r.onset_index[q])
        np.testing.assert_array_equal(one.p_level, r.p_level[q])
        np.testing.assert_array_equal(one.onset_ci_index, r.onset_ci_index[q])
        if q >= 3:  # a sharp step's midpoint may sit anywhere between its two levels
            for mid in (float(one.midpoint), float(r.midpoint[q])):
                assert float(PRESSURES[3]) < mid < float(PRESSURES[4])
    # the steps are found at level 4 (noise 0.05 against a step of 1)
    np.testing.assert_array_equal(r.onset_index[3:5], 4)
    # alpha 0.003 is below 2^-8: too few seeds, nothing claimed however clear the step
    assert not bool(r.testable[5]) and not bool(r.found[5])


def test_batched_fit_matches_single_fits():
    # jaxlib 0.10.2's XLA:CPU returned wrong rows for a vmapped broadcast-multiply-reduce
    # of this shape (jax-ml/jax#39103); the fit is written to avoid it. Check the fitted
    # curves of a large batch against one-at-a-time fits (the midpoint itself may move
    # along a flat valley, the residual may not).
    keys = jax.random.split(jax.random.PRNGKey(9), 96)
    means = jax.vmap(lambda k: _sweep(k, 1.0, centered=False)[0].mean(-1))(keys)  # [96, L]
    fit = jax.jit(jax.vmap(emergence_module._fit_logistic, (None, 0)))(PRESSURES, means)
    single = jax.jit(emergence_module._fit_logistic)

    def sse(f, y):
        curve = f.lo + (f.hi - f.lo) * jax.nn.sigmoid((PRESSURES - f.mid) / f.scale)
        return float(jnp.sum((curve - y) ** 2))

    for i in range(0, 96, 8):
        batched = LogisticFit(*(leaf[i] for leaf in fit))
        one = single(PRESSURES, means[i])
        assert sse(batched, means[i]) == pytest.approx(sse(one, means[i]), rel=1e-3, abs=1e-6)
        assert float(PRESSURES[3]) < float(batched.mid) < float(PRESSURES[4])
