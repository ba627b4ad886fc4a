"""The judge's decision, its loss and the debaters' reward, as pure functions (METHOD:
debate), plus the Elo fit of a round-robin of debaters.

A judge is a score model s(x) read on one judge input x (pvg_jax.worlds.reading.world):
s > 0 says the option in the first slot is right. Every judgment is made in both orders,
x and its swap x' (options and argument slots exchanged), and averaged:

    d = (s(x) - s(x')) / 2          the judge's logit that option A is right        (D.1)

so a judge that only prefers a slot gets d = 0, never credit. The judge is trained by
supervised learning on the right option, L_J = BCE(d, [answer == A]) (D.2). A debater
arguing for A is rewarded with the judge's logit difference between its option and the
other, r_A = d, r_B = -d (D.3; the update's pseudo-code, zero-sum). A consultant on side s
gets the same from the consultancy judge, which sees only its argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def order_averaged(scores: jax.Array) -> jax.Array:
  """(D.1) scores [2, B] of the given and the swapped order -> d [B]."""
  return 0.5 * (scores[0] - scores[1])


def judge_loss(scores: jax.Array, a_right: jax.Array) -> jax.Array:
  """(D.2) mean BCE of the order-averaged logit against the right option."""
  return optax.sigmoid_binary_cross_entropy(order_averaged(scores),
                                            a_right.astype(jnp.float32)).mean()


def side_rewards(d: jax.Array, sides: jax.Array) -> jax.Array:
  """(D.3) reward of an argument for side 0 (A) or 1 (B) judged with logit d."""
  return jnp.where(sides == 0, d, -d)


def accuracy(d: np.ndarray, a_right: np.ndarray) -> float:
  """Share of questions the judge decides right (d = 0 counts as half: a coin)."""
  d, a_right = np.asarray(d), np.asarray(a_right, bool)
  right = np.where(d == 0, 0.5, (d > 0) == a_right)
  return float(np.mean(right))


def consultancy_accuracies(d_a: np.ndarray, d_b: np.ndarray, a_right: np.ndarray
                           ) -> dict[str, float]:
  """Accuracy of single and ensembled consultancy from the consultancy judge's logits d_a
  (the consultant argued for A) and d_b (for B) on the same questions. Single: the side is
  drawn 50/50, so its expected accuracy is the mean over both sides. Ensembled: the two
  judgments' probabilities of A are averaged, then decided."""
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-np.asarray(x, float)))  # noqa: E731
  p_a = 0.5 * (sigmoid(d_a) + sigmoid(d_b))
  return {"single_consultancy": 0.5 * (accuracy(d_a, a_right) + accuracy(d_b, a_right)),
          "ensembled_consultancy": accuracy(p_a - 0.5, a_right)}


def elo(wins: np.ndarray, games: np.ndarray, iters: int = 2000, prior: float = 0.01
        ) -> np.ndarray:
  """Elo ratings (mean 0, 400-point logistic scale) of players from a round-robin:
  wins[i, j] = games i won against j (fractional for draws), games[i, j] = games played.
  Maximum likelihood of the Bradley-Terry model P(i beats j) = 1 / (1 + 10^((R_j-R_i)/400))
  by minorize-maximize (Hunter 2004), with `prior` virtual draws against every other player
  so a player that won or lost everything keeps a finite rating."""
  wins = np.asarray(wins, float) + prior * (1 - np.eye(len(wins))) / 2
  games = np.asarray(games, float) + prior * (1 - np.eye(len(wins)))
  total = wins.sum(axis=1)
  strength = np.ones(len(wins))
  for _ in range(iters):
    denom = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
    strength = total / denom
    strength /= np.exp(np.log(strength).mean())
  ratings = 400.0 * np.log10(strength)
  return ratings - ratings.mean()


def elo_win_probability(r_i: float, r_j: float) -> float:
  return 1.0 / (1.0 + 10 ** ((r_j - r_i) / 400.0))
