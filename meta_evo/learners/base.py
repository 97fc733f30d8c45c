"""The learner (base optimizer) protocol and the lifetime loop.

A learner has meta-parameters ``theta`` (a flat vector the meta-ES searches) and runs for a
lifetime of K updates on one task:

    lstate = init(theta)                                  # lstate.phi = phi_0
    for k in range(K):
        candidates = ask(theta, lstate, key_k)            # [P, D_phi]
        returns    = evaluate(candidates, tau)            # [P]  (the feedback)
        lstate     = tell(theta, lstate, candidates, returns, key_k, k)

Every function is pure and vmappable over ``theta``. At meta-init (``init_theta``) the learning
machinery does nothing, so any online optimization found later was selected for.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jnp.vectorize, signature="(p)->(p)")
def centered_ranks(x: jax.Array) -> jax.Array:
    """Centered ranks in [-0.5, 0.5] of ``x [..., P]``, higher is better; NaN ranks worst.
    Tied values share their average rank, so all-equal returns (e.g. the zeros of the
    ``blind`` channel) rank all 0 and carry no direction."""
    safe = jnp.where(jnp.isnan(x), -jnp.inf, x)
    s = jnp.sort(safe)
    lo = jnp.searchsorted(s, safe, side="left")
    hi = jnp.searchsorted(s, safe, side="right")
    p = x.shape[-1]
    # (average rank) / (P - 1) - 1/2 with an integer numerator: exactly 0 for a tie at the middle
    return (lo + hi - p).astype(jnp.float32) / (2 * (p - 1))


def antithetic_noise(key: jax.Array, num: int, dim: int) -> jax.Array:
    """``[num, dim]`` standard normal rows, the second half the negation of the first."""
    half = jax.random.normal(key, (num // 2, dim))
    return jnp.concatenate([half, -half])


REWARD_CHANNELS = ("given", "shuffled", "blind")


class Learner:
    """Base class; subclasses fill in the pieces below."""

    name: str = ""
    num_candidates: int = 0  # P; 0 means the learner never evaluates during its lifetime
    reward: str = "given"  # the reward channel, see make_lifetime (set by make_learner)
    # the program that measures it: a key of meta_evo.measure.MEASUREMENTS
    measurement: str = "phi"

    def __init__(self, agent, lifetime: int):
        self.agent = agent
        self.phi_size = agent.num_params
        self.lifetime = int(lifetime)

    theta_size: int = 0

    def init_theta(self, key: jax.Array) -> jax.Array:
        """Meta-init ``theta [theta_size]`` (learning machinery off)."""
        raise NotImplementedError

    def init(self, theta: jax.Array):
        """Learner state at the start of a lifetime; ``state.phi`` is phi_0 ``[D_phi]``."""
        raise NotImplementedError

    def ask(self, theta, lstate, key) -> jax.Array:
        """Candidates to evaluate: ``[P, D_phi]``."""
        raise NotImplementedError

    def tell(self, theta, lstate, candidates, returns, key, k):
        """Next learner state from the candidates' returns ``[P]`` at update ``k``."""
        raise NotImplementedError

    def describe(self, theta: jax.Array) -> dict:
        """Readable scalars of a ``theta`` (e.g. the step size) for logs."""
        return {}

    def phi0(self, theta: jax.Array) -> jax.Array:
        return self.init(theta).phi

    def control_embedding(self, control: Learner):
        """``fn(control thetas [B, D_c]) -> thetas [B, theta_size]`` under which this learner
        behaves exactly as ``control`` does, or None. The learner owns its ``theta`` layout, so
        it alone knows how a control embeds in it (a sweep then measures the control arm
        through the learner arm's compiled program)."""
        return None

    # --- what the engine asks of a learner (RL2 answers the same questions its own way) ---------
    def fitness_lifetime(self, evaluate, record_curve: bool = False):
        """The lifetime meta-fitness runs: ``make_lifetime(self, evaluate, record_curve=...)``,
        ``fn(theta, tau, key, tau_fb) -> (phi_K, aux)`` (``record_curve``: ``aux["phis"]``)."""
        return make_lifetime(self, evaluate, record_curve=record_curve)

    def fitness_score(self, lifetime, evaluate, theta, tau, key, tau_fb, *, eval_episodes: int,
                      last_half: bool):
        """Fitness of one ``lifetime`` (from :meth:`fitness_lifetime`) of ``theta`` on ``tau``:
        ``(R [], inner_nan [])``. ``R`` is the return of ``phi_K`` or, with ``last_half``, the
        mean return of the proposals ``phi_k, k >= K // 2``, each over ``eval_episodes``
        rollouts of ``evaluate``."""
        k_life, k_eval = jax.random.split(key)
        phi_k, aux = lifetime(theta, tau, k_life, tau_fb)
        keys = jax.random.split(k_eval, eval_episodes)
        if last_half:
            phis = aux["phis"][self.lifetime // 2:]  # [K - K//2 + 1, D_phi]
            rets = jax.vmap(lambda k: jax.vmap(evaluate, (0, None, None))(phis, tau, k))(keys)
        else:
            rets = jax.vmap(evaluate, (None, None, 0))(phi_k, tau, keys)
        return jnp.mean(rets), aux["nan"]

    def lifetime_env_steps(self, eval_episodes: int, episode_steps: int) -> int:
        """Env steps of one lifetime on one task and its fitness evaluation: K updates of P
        candidates and ``eval_episodes`` rollouts, each of ``episode_steps`` steps."""
        k, p = self.lifetime, self.num_candidates
        return ((k * p if p else 0) + eval_episodes) * episode_steps

    def rollout_bytes(self, state_bytes: int) -> int:
        """Device bytes of one rollout alive, given one env state's: the state alone."""
        return state_bytes

    def rollouts_alive(self, cfg) -> int:
        """The most rollouts alive at once in evolution or in a measurement (the larger):
        every candidate (or evaluation episode) of every member and training task; per held-out
        task, the lifetime curve, alignment probes, reference draws or matrix columns."""
        t, ms = cfg.task, cfg.measure
        k, p = self.lifetime, self.num_candidates
        evo = cfg.meta.population * t.tasks_per_member * max(p, t.eval_episodes)
        n_cols = ms.heldout_tasks + (1 if ms.proxies else 0)
        meas = ms.heldout_tasks * max(p, k * ms.alignment_samples, ms.reference_samples, n_cols,
                                      k + 1)
        return max(evo, meas)

    def trace_program(self, evaluate, eval_episodes: int):
        """``fn(theta, task, key, tau_fb) -> dict`` for inspection (:mod:`meta_evo.rollout`),
        keyed by :class:`~meta_evo.rollout.Rollout`'s fields: ``proposals [K+1, D_phi]``
        (phi_0..phi_K), ``returns [K+1]`` (each proposal's own-task return over
        ``eval_episodes`` rollouts), ``shown [K, P]``, ``candidates [K, P, D_phi]``, ``states``
        (the learner state, every leaf ``[K+1, ...]``) and ``hidden`` (its ``h``, or None).
        The lifetime is ``make_lifetime(..., trace=True)``: the keys and float operations of
        the meta-fitness and the measurement."""
        life = make_lifetime(self, evaluate, trace=True)

        def fn(theta, task, key, tau_fb):
            k_life, k_eval = jax.random.split(key)
            _, aux = life(theta, task, k_life, tau_fb)
            keys = jax.random.split(k_eval, eval_episodes)
            rets = jax.vmap(lambda k: jax.vmap(evaluate, (0, None, None))(
                aux["phis"], task, k))(keys)
            states = aux["states"]
            return {"proposals": aux["phis"], "returns": jnp.mean(rets, axis=0),
                    "shown": aux["shown"], "candidates": aux["candidates"],
                    "hidden": getattr(states, "h", None), "states": states}

        return fn


def _still_aux(lstate, K: int, record_curve: bool, trace: bool) -> dict:
    """``aux`` of a learner that never evaluates (K or P is 0): phi_0 at every step."""
    aux = {"nan": jnp.zeros((), jnp.int32)}
    d = lstate.phi.shape[-1]
    if record_curve or trace:
        aux["phis"] = jnp.broadcast_to(lstate.phi, (K + 1, d))
    if trace:
        aux["states"] = jax.tree.map(lambda x: jnp.broadcast_to(x, (K + 1, *x.shape)), lstate)
        aux["candidates"], aux["shown"] = jnp.zeros((K, 0, d)), jnp.zeros((K, 0))
    return aux


# over 60 lines with its docstring (the body is 40): the reward channels are documented where
# they are applied
def make_lifetime(learner: Learner, evaluate, record_curve: bool = False,
                  channel: str | None = None, trace: bool = False):
    """Factory: ``fn(theta, tau, key, tau_fb=None) -> (phi_K [D_phi], aux)``.

    ``evaluate(phi, tau, key) -> return``. What the learner is told about its candidates is
    its reward channel ``learner.reward`` (static):

    - ``given``: their returns on its own task ``tau``;
    - ``shuffled``: the returns the same candidates earn on ``tau_fb``, an independent task
      from the same distribution (the caller draws it with its own key, in every channel, so
      both arms of a sweep consume the same keys): the same statistics, no information about
      ``tau``;
    - ``blind``: zeros.

    The learner's weights, keys and compute are the same in every channel; ``channel``
    overrides ``learner.reward`` (measurement runs every arm with the given reward). ``aux`` holds
    ``nan`` (non-finite candidate returns seen during the lifetime) and, with
    ``record_curve``, ``phis [K+1, D_phi]`` (phi_0..phi_K). ``trace`` (for inspection,
    :mod:`meta_evo.rollout`) adds ``phis``, ``states`` (the learner state at k = 0..K, every leaf
    with a leading ``[K+1]`` axis), ``candidates [K, P, D_phi]`` and ``shown [K, P]`` (the returns
    the learner was told, after its channel).
    """
    K, P = learner.lifetime, learner.num_candidates
    channel = learner.reward if channel is None else channel
    if channel not in REWARD_CHANNELS:
        raise ValueError(f"learner.reward: unknown reward channel {channel!r} "
                         f"(known: {', '.join(REWARD_CHANNELS)})")

    def lifetime(theta, tau, key, tau_fb=None):
        lstate = learner.init(theta)
        if K == 0 or P == 0:
            return lstate.phi, _still_aux(lstate, K, record_curve, trace)
        fb = tau if (channel == "given" or tau_fb is None) else tau_fb

        def body(carry, k):
            lstate, nan = carry
            kk = jax.random.fold_in(key, k)
            k_ask, k_eval, k_tell = jax.random.split(kk, 3)
            cands = learner.ask(theta, lstate, k_ask)
            # one reset key per update: candidates compared under the same start state
            rets = jax.vmap(evaluate, (0, None, None))(cands, fb, k_eval)
            nan = nan + jnp.sum(~jnp.isfinite(rets)).astype(jnp.int32)
            if channel == "blind":
                rets = jnp.zeros_like(rets)
            lstate = learner.tell(theta, lstate, cands, rets, k_tell, k)
            if trace:
                return (lstate, nan), {"state": lstate, "candidates": cands, "shown": rets}
            return (lstate, nan), (lstate.phi if record_curve else None)

        (lstate, nan), outs = jax.lax.scan(body, (lstate, jnp.zeros((), jnp.int32)),
                                           jnp.arange(K))
        aux = {"nan": nan}
        first = learner.init(theta) if (trace or record_curve) else None
        if trace:
            aux["states"] = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first,
                                         outs["state"])
            aux["phis"] = aux["states"].phi
            aux["candidates"], aux["shown"] = outs["candidates"], outs["shown"]
        elif record_curve:
            aux["phis"] = jnp.concatenate([first.phi[None], outs])
        return lstate.phi, aux

    return lifetime
