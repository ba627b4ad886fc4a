"""Gradient play of the prover-verifier game (Anil et al. 2021; METHOD 4) as one jitted program.

Losses on a balanced batch of instances (x, y) with message m = message(prover(x)) and
verifier logit v = V(glimpse(m, windows(x))):

    L_V = E[ BCE(v, y) ]                (the verifier wants the true label)          (A.1)
    L_P = E[ -log sigmoid(v) ]          (the prover wants "accept", true or not)     (A.2)

Formulations (`game.formulation`):

  simultaneous             both players step on their own loss at the same point.
  prover_leads:steps       the follower (verifier) takes k SGD steps on L_V against the
  verifier_leads:steps     current leader, then the leader takes one step on its loss
                           against the updated follower, held fixed: phi_k = F^k(theta, phi).
  prover_leads:unrolled    as :steps, but the leader differentiates through the follower's
  verifier_leads:unrolled  k updates, d/dtheta L_lead(theta, phi_k(theta)) (the Stackelberg
                           gradient with a k-step unrolled best response; Metz et al. 2017).

The follower's k steps are plain SGD (lr `inner_lr`), so phi_k(theta) is differentiable;
the leader (and both players when simultaneous) use Adam. The follower keeps its
parameters from one outer step to the next (a warm-started best response). Outer steps
and the follower's inner steps are `lax.scan`s, and `train_chunk` vmaps over seeds: the
state of every seed carries a leading axis.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from pvg_jax.anil import players

FORMULATIONS = ("simultaneous", "prover_leads:steps", "prover_leads:unrolled",
                "verifier_leads:steps", "verifier_leads:unrolled")
ROLES = ("prover", "verifier")


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything static about one game: shapes, formulation and hyperparameters."""
  prover: players.Spec
  verifier: players.Spec
  formulation: str
  message: str
  temperature: float
  batch_size: int
  inner_steps: int
  inner_lr: float
  lr: float

  @property
  def leader(self) -> str | None:
    return None if self.formulation == "simultaneous" else self.formulation.split("_")[0]

  @property
  def unrolled(self) -> bool:
    return self.formulation.endswith(":unrolled")


class State(NamedTuple):
  params: dict      # {"prover": ..., "verifier": ...}
  opt: dict         # Adam states, same keys
  key: jax.Array
  step: jax.Array


def optimizer(setup: Setup) -> optax.GradientTransformation:
  return optax.adam(setup.lr)


def init_state(setup: Setup, key: jax.Array) -> State:
  """Fresh players and optimizer states from `key` (traceable: vmap it over seeds)."""
  kp, kv, key = jax.random.split(key, 3)
  params = {"prover": players.init(setup.prover, kp),
            "verifier": players.init(setup.verifier, kv)}
  opt = {r: optimizer(setup).init(params[r]) for r in ROLES}
  return State(params, opt, key, jnp.zeros((), jnp.int32))


def verifier_logits(setup: Setup, params: dict, batch: dict, key: jax.Array | None,
                    ) -> jax.Array:
  """v = V(glimpse(message(prover(x)), windows(x))), [B]."""
  logits = players.apply(setup.prover, params["prover"], batch["prover_input"])
  msg = players.message(logits, setup.message, setup.temperature, key)
  return players.apply(setup.verifier, params["verifier"],
                       players.glimpse(msg, batch["windows"]))


def loss(setup: Setup, role: str, params: dict, batch: dict, key) -> jax.Array:
  """L_V (A.1) for role "verifier", L_P (A.2) for role "prover"."""
  v = verifier_logits(setup, params, batch, key)
  if role == "verifier":
    return optax.sigmoid_binary_cross_entropy(v, batch["label"].astype(v.dtype)).mean()
  return jax.nn.softplus(-v).mean()


def _with(params: dict, role: str, value) -> dict:
  return {**params, role: value}


def follow(setup: Setup, params: dict, follower: str, batch: dict, key) -> dict:
  """phi_k: the follower's parameters after k SGD steps on its loss against params' leader
  (differentiable in the leader's parameters)."""
  def sgd(phi, _):
    g = jax.grad(lambda f: loss(setup, follower, _with(params, follower, f), batch, key))(phi)
    return jax.tree.map(lambda p, d: p - setup.inner_lr * d, phi, g), None
  phi, _ = jax.lax.scan(sgd, params[follower], None, length=setup.inner_steps)
  return phi


def leader_grad(setup: Setup, params: dict, batch: dict, key):
  """(gradient of the leader's loss, phi_k). Unrolled: the total derivative through phi_k;
  steps: the partial derivative at phi_k held fixed."""
  leader = setup.leader
  follower = "verifier" if leader == "prover" else "prover"

  def objective(theta):
    p = _with(params, leader, theta)
    phi = follow(setup, p, follower, batch, key)
    if not setup.unrolled:
      phi = jax.lax.stop_gradient(phi)
    return loss(setup, leader, _with(p, follower, phi), batch, key), phi

  g, phi = jax.grad(objective, has_aux=True)(params[leader])
  return g, phi


def sample_batch(data: dict, key: jax.Array, batch_size: int) -> dict:
  """A balanced batch: batch_size / 2 instances of each label, uniformly with replacement."""
  kp, kn = jax.random.split(key)
  half = batch_size // 2
  idx = jnp.concatenate([
      data["pos"][jax.random.randint(kp, (half,), 0, data["pos"].shape[0])],
      data["neg"][jax.random.randint(kn, (half,), 0, data["neg"].shape[0])]])
  return {k: data[k][idx] for k in ("prover_input", "windows", "label")}


def _metrics(setup: Setup, params: dict, batch: dict, key) -> dict:
  v = verifier_logits(setup, params, batch, key)
  y = batch["label"]
  accept = (v > 0).astype(jnp.float32)
  return {"verifier_loss": loss(setup, "verifier", params, batch, key),
          "prover_loss": loss(setup, "prover", params, batch, key),
          "accept_true": (accept * y).sum() / y.sum(),
          "accept_false": (accept * (1 - y)).sum() / (1 - y).sum()}


def outer_step(setup: Setup, state: State, data: dict) -> tuple[State, dict]:
  """One step of the formulation's gradient play; returns the batch's metrics."""
  key, kb, km = jax.random.split(state.key, 3)
  batch = sample_batch(data, kb, setup.batch_size)
  params, opt = dict(state.params), dict(state.opt)
  tx = optimizer(setup)

  def adam(role, g):
    updates, opt[role] = tx.update(g, opt[role], params[role])
    params[role] = optax.apply_updates(params[role], updates)

  if setup.leader is None:
    grads = {r: jax.grad(lambda q, r=r: loss(setup, r, _with(state.params, r, q), batch, km))(
        state.params[r]) for r in ROLES}
    for r in ROLES:
      adam(r, grads[r])
  else:
    follower = "verifier" if setup.leader == "prover" else "prover"
    g, phi = leader_grad(setup, state.params, batch, km)
    params[follower] = phi
    adam(setup.leader, g)
  new = State(params, opt, key, state.step + 1)
  return new, _metrics(setup, params, batch, km)


@functools.partial(jax.jit, static_argnums=(0, 3))
def train_chunk(setup: Setup, states: State, data: dict, steps: int) -> tuple[State, dict]:
  """`steps` outer steps of every seed (vmapped over the states' leading axis); metrics
  [seeds, steps]."""
  def run(state):
    return jax.lax.scan(lambda s, _: outer_step(setup, s, data), state, None, length=steps)
  return jax.vmap(run)(states)
