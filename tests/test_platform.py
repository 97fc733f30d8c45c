"""Guard against a jaxlib that silently miscompiles the vmapped multiply-reduce pattern every
kernel and rollout batch relies on (jaxlib 0.10.2 on CPU, jax-ml/jax#39103; excluded in
pyproject.toml)."""

import jax
import jax.numpy as jnp
import numpy as np


def test_jit_vmapped_mean_matches_numpy():
    x = jnp.linspace(0.0, 1.0, 8)
    y = jax.random.normal(jax.random.PRNGKey(0), (64, 8))
    m = jax.random.normal(jax.random.PRNGKey(1), (1000,))
    f = lambda y: jax.vmap(lambda r: jax.vmap(lambda s: jnp.mean((x * s) * r))(m))(y)
    got = np.asarray(jax.jit(f)(y))
    ref = np.mean(np.asarray(x)[None, None] * np.asarray(m)[None, :, None]
                  * np.asarray(y)[:, None], axis=-1)
    np.testing.assert_allclose(got, ref, atol=1e-4)
