"""``amortized``: theta = phi_0 and the update is the identity. The control arm: all of its
performance is stored in phi_0, none is found during the lifetime."""

from __future__ import annotations

from flax import struct

from .base import Learner


@struct.dataclass
class AmortizedState:
    phi: object  # [D_phi]


class Amortized(Learner):
    name = "amortized"
    num_candidates = 0

    def __init__(self, agent, lifetime: int, phi_init=None):
        super().__init__(agent, lifetime)
        self.theta_size = self.phi_size
        self._phi_init = phi_init

    def init_theta(self, key):
        return self._phi_init(key) if self._phi_init is not None else self.agent.init(key)

    def init(self, theta):
        return AmortizedState(phi=theta)

    def ask(self, theta, lstate, key):  # pragma: no cover - never called (P = 0)
        return lstate.phi[None]

    def tell(self, theta, lstate, candidates, returns, key, k):
        return lstate
