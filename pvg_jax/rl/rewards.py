"""Prover rewards of METHOD 1.2, as pure functions over groups of solutions.

Every reward takes arrays of shape [G, b]: G (problem, role) groups of b solutions each,
with verifier scores V(x, z), grader correctness, and whether the group's role is helpful
([G] bool, broadcast over b). They are jittable and return [G, b] rewards.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CGC_PENALTY = -2.0   # V_0 of the CGC reward (K)
SRC_FLOOR = -1.0     # SRC reward of a solution not above its group's mean score
TIE_ULPS = 8.0       # |V'| within this many float32 ulps of the group's scores counts as 0


def src_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """Signed relative convincingness (K's main reward):

      V'(z_i) = V(x, z_i) - mean_j V(x, z_j)        (mean over the (x, role) group only)
      R = (2 correct - 1)(2 helpful - 1) V'(z_i)    if V'(z_i) > 0, else -1.

  Not divided by a std, not normalized over the batch. A |V'| below TIE_ULPS float32 ulps
  of the group's largest |V| is rounding error of the mean, not a score difference, and
  counts as 0 (a group of identical solutions gets the floor everywhere, whatever b is).
  scores/correct: [G, b]; helpful: [G].
  """
  centred = scores - scores.mean(axis=1, keepdims=True)
  scale = jnp.maximum(jnp.abs(scores).max(axis=1, keepdims=True), 1.0)
  centred = jnp.where(jnp.abs(centred) <= TIE_ULPS * jnp.finfo(jnp.float32).eps * scale,
                      0.0, centred)
  aligned = jnp.where(correct == helpful[:, None], 1.0, -1.0)
  return jnp.where(centred > 0, aligned * centred, SRC_FLOOR)


def oracle_src_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """SRC with an oracle verifier, V(x, z) = correct(x, z): the control in which the
  verifier is perfect (learning probes, control games)."""
  del scores
  return src_reward(correct.astype(jnp.float32), correct, helpful)


def cgc_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """Correctness-gated convincingness: R = V(x, z) if the role matches correctness
  (helpful and correct, or sneaky and incorrect), else V_0 = -2."""
  return jnp.where(correct == helpful[:, None], scores, CGC_PENALTY)


def goodhart_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """Goodharting: R = V(x, z), no roles (the prover is only asked to be convincing)."""
  del correct, helpful
  return scores


def correctness_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """Correctness-only baseline: R = correct(x, z) from the grader, no verifier."""
  del scores, helpful
  return correct.astype(jnp.float32)


def zero_reward(scores: jax.Array, correct: jax.Array, helpful: jax.Array) -> jax.Array:
  """R = 0: only the KL penalty acts, so PPO should leave the prover where it is (the
  zero-reward learning probe)."""
  del correct, helpful
  return jnp.zeros_like(scores)


REWARDS = {"src": src_reward, "cgc": cgc_reward, "goodhart": goodhart_reward,
           "correctness": correctness_reward, "oracle_src": oracle_src_reward,
           "zero": zero_reward}
USES_ROLES = {"src": True, "cgc": True, "goodhart": False, "correctness": False,
              "oracle_src": True, "zero": True}
USES_VERIFIER = {"src": True, "cgc": True, "goodhart": True, "correctness": False,
                 "oracle_src": False, "zero": False}


def with_format_penalty(rewards: jax.Array, parseable: jax.Array) -> jax.Array:
  """Optional format penalty: an unparseable solution gets the lowest reward any reward can
  give here (min of the CGC penalty, the SRC floor and the batch minimum, minus 1)."""
  lowest = jnp.minimum(jnp.minimum(CGC_PENALTY, SRC_FLOOR), rewards.min()) - 1.0
  return jnp.where(parseable, rewards, lowest)
