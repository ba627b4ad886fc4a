"""Completeness and soundness of a trained protocol (METHOD 4), on held-out instances.

  completeness    = P(accept | true) with the game's own prover (the honest one: on true
                    instances prover and verifier want the same thing).
  soundness error = worst-case P(accept | false) over provers. Two attacks, both against
                    the frozen verifier:
    audit    a prover re-optimized from scratch: `restarts` fresh initializations, each
             trained `steps` Adam steps on L_P (A.2) over false training instances only;
             the soundness error is the maximum over restarts of its held-out P(accept).
    pointer  exhaustive over discrete messages: an instance counts as fooled if any one
             window gets accepted. Exact for discrete messages; for continuous ones it
             covers the vertices of the simplex, which the audit's soft pointers extend.
  The reported `soundness_error` is the larger of the two: the worst case found.

Messages at evaluation are deterministic: the softmax pointer (continuous) or its argmax
(discrete). Accept means logit > 0. Everything is jitted and vmapped over seeds and
restarts.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from pvg_jax.anil import game, players


@dataclasses.dataclass(frozen=True)
class AuditSpec:
  restarts: int
  steps: int
  lr: float
  batch_size: int


def _accept(setup: game.Setup, params: dict, split: dict) -> jax.Array:
  return game.verifier_logits(setup, params, split, None) > 0


@functools.partial(jax.jit, static_argnums=0)
def evaluate(setup: game.Setup, params: dict, test: dict) -> dict:
  """Completeness, the game prover's P(accept | false), verifier accuracy, and the exact
  pointer soundness error; for one seed's params (vmap outside)."""
  y = test["label"].astype(jnp.float32)
  accept = _accept(setup, params, test).astype(jnp.float32)
  window_logits = jax.vmap(lambda w: players.apply(setup.verifier, params["verifier"], w))(
      test["windows"])                                             # [N, P]
  fooled = (window_logits > 0).any(-1).astype(jnp.float32)
  return {"completeness": (accept * y).sum() / y.sum(),
          "game_prover_accept_false": (accept * (1 - y)).sum() / (1 - y).sum(),
          "verifier_accuracy": (accept == y).mean(),
          "soundness_error_pointer": (fooled * (1 - y)).sum() / (1 - y).sum()}


def _attack(setup: game.Setup, spec: AuditSpec, verifier: dict, train_neg: dict,
            test_neg: dict, key: jax.Array) -> jax.Array:
  """One restart: a fresh prover trained on false instances; its held-out P(accept)."""
  kinit, key = jax.random.split(key)
  prover = players.init(setup.prover, kinit)
  tx = optax.adam(spec.lr)

  def step(carry, key):
    prover, opt = carry
    kb, km = jax.random.split(key)
    idx = jax.random.randint(kb, (spec.batch_size,), 0, train_neg["label"].shape[0])
    batch = {k: v[idx] for k, v in train_neg.items()}
    g = jax.grad(lambda q: game.loss(setup, "prover", {"prover": q, "verifier": verifier},
                                     batch, km))(prover)
    updates, opt = tx.update(g, opt, prover)
    return (optax.apply_updates(prover, updates), opt), None

  (prover, _), _ = jax.lax.scan(step, (prover, tx.init(prover)),
                                jax.random.split(key, spec.steps))
  return _accept(setup, {"prover": prover, "verifier": verifier}, test_neg).mean()


@functools.partial(jax.jit, static_argnums=(0, 1))
def audit(setup: game.Setup, spec: AuditSpec, verifier: dict, train_neg: dict,
          test_neg: dict, key: jax.Array) -> jax.Array:
  """Held-out P(accept | false) of each restart's attacker, [restarts]."""
  keys = jax.random.split(key, spec.restarts)
  return jax.vmap(lambda k: _attack(setup, spec, verifier, train_neg, test_neg, k))(keys)
