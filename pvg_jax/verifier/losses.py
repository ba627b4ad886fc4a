"""Verifier losses of METHOD.md 1.1, over groups of solutions to the same problem.

Scores come as [G, K]: G problems, K solutions each, with correctness labels and a validity
mask (a group may hold fewer than K solutions). Reductions return sums and counts so means
stay exact across micro-batches and hosts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pair_mask(correct: jax.Array, valid: jax.Array) -> jax.Array:
  """[G, K, K] True where z_i is correct, z_j incorrect, both valid (ordered pairs)."""
  c = correct & valid
  w = ~correct & valid
  return c[:, :, None] & w[:, None, :]


def bradley_terry_loss(scores: jax.Array, correct: jax.Array, valid: jax.Array,
                       lam: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Bradley-Terry comparison loss plus the centering regularizer (METHOD 1.1):

      L_V = E_x [ E_{z1,z2} -log sigmoid((V(x,z1) - V(x,z2)) * sign(c(z1) - c(z2)))
                  + lam * E_z V(x,z)^2 ]

  Pairs are all same-problem pairs that differ in correctness (ordered correct-first, which
  equals the sign form). The pair term is averaged within each problem, then over problems
  that have at least one pair; the V^2 term over all valid solutions.
  scores: [G, K] float; correct, valid: [G, K] bool.
  """
  pairs = pair_mask(correct, valid)
  margin = scores[:, :, None] - scores[:, None, :]
  per_pair = jax.nn.softplus(-margin)                        # -log sigmoid(margin)
  n_pairs = pairs.sum(axis=(1, 2))
  per_problem = jnp.where(pairs, per_pair, 0.0).sum(axis=(1, 2)) / jnp.maximum(n_pairs, 1)
  has_pairs = n_pairs > 0
  n_problems = has_pairs.sum()
  bt = jnp.where(has_pairs, per_problem, 0.0).sum() / jnp.maximum(n_problems, 1)
  n_valid = valid.sum()
  sq = jnp.where(valid, scores**2, 0.0).sum() / jnp.maximum(n_valid, 1)
  stats = pairwise_stats(scores, correct, valid)
  stats.update(bt_loss=bt, score_sq=sq, problems_with_pairs=n_problems)
  return bt + lam * sq, stats


def cross_entropy_loss(scores: jax.Array, correct: jax.Array, valid: jax.Array,
                       lam: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Alternative of METHOD 1.1: binary cross-entropy of sigmoid(V) against correctness,
  mean over valid solutions, plus the same lam * E V^2 term."""
  logp = jax.nn.log_sigmoid(jnp.where(correct, scores, -scores))
  n_valid = jnp.maximum(valid.sum(), 1)
  ce = -jnp.where(valid, logp, 0.0).sum() / n_valid
  sq = jnp.where(valid, scores**2, 0.0).sum() / n_valid
  stats = pairwise_stats(scores, correct, valid)
  stats.update(ce_loss=ce, score_sq=sq)
  return ce + lam * sq, stats


LOSSES = {"bradley_terry": bradley_terry_loss, "cross_entropy": cross_entropy_loss}


def pairwise_stats(scores: jax.Array, correct: jax.Array, valid: jax.Array):
  """Sum and count for pairwise accuracy: P(V(correct) > V(incorrect)), ties count 1/2."""
  pairs = pair_mask(correct, valid)
  margin = scores[:, :, None] - scores[:, None, :]
  wins = jnp.where(margin > 0, 1.0, jnp.where(margin == 0, 0.5, 0.0))
  return {"pair_wins": jnp.where(pairs, wins, 0.0).sum(), "pair_count": pairs.sum()}
