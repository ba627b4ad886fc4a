"""Verifier losses against hand-computed numbers and a NumPy reference."""

import jax.numpy as jnp
import numpy as np
import pytest

from pvg_jax import rollout
from pvg_jax.verifier import losses


def softplus(x):
  return np.log1p(np.exp(x))


def reference_bt(scores, correct, valid, lam):
  per_problem = []
  for s, c, v in zip(scores, correct, valid):
    terms = [softplus(-(s[i] - s[j])) for i in range(len(s)) for j in range(len(s))
             if v[i] and v[j] and c[i] and not c[j]]
    if terms:
      per_problem.append(np.mean(terms))
  return np.mean(per_problem) + lam * np.mean(np.asarray(scores)[np.asarray(valid)] ** 2)


def test_bradley_terry_hand_case():
  # one problem: correct 1.0, incorrect -1.0 -> -log sigmoid(2) = 0.126928; V^2 mean = 1.
  loss, stats = losses.bradley_terry_loss(jnp.array([[1.0, -1.0]]), jnp.array([[True, False]]),
                                          jnp.array([[True, True]]), lam=0.1)
  assert float(loss) == pytest.approx(0.126928 + 0.1, abs=1e-5)
  assert float(stats["pair_wins"]) == 1 and int(stats["pair_count"]) == 1


def test_bradley_terry_matches_reference_with_masks_and_single_class_groups():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(6, 5)).astype(np.float32)
  correct = rng.random((6, 5)) < 0.5
  correct[0] = True            # a problem with no incorrect solution: no pairs
  valid = rng.random((6, 5)) < 0.8
  loss, stats = losses.bradley_terry_loss(jnp.array(scores), jnp.array(correct),
                                          jnp.array(valid), lam=0.01)
  assert float(loss) == pytest.approx(reference_bt(scores, correct, valid, 0.01), rel=1e-5)


def test_cross_entropy_hand_case():
  loss, _ = losses.cross_entropy_loss(jnp.array([[0.0, 2.0]]), jnp.array([[True, False]]),
                                      jnp.array([[True, True]]), lam=0.0)
  assert float(loss) == pytest.approx((np.log(2) + softplus(2.0)) / 2, abs=1e-6)


def test_pairwise_accuracy_and_auc():
  idx = np.array([0, 0, 0, 1, 1, 2])
  correct = np.array([True, False, False, True, False, True])
  scores = np.array([1.0, 0.0, 1.0, -1.0, 2.0, 5.0])
  acc, pairs, problems = rollout.pairwise_accuracy(idx, correct, scores)
  assert (pairs, problems) == (3, 2)
  assert acc == pytest.approx((1 + 0.5 + 0) / 3)
  assert rollout.roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.5, 0.1])) == 0.75
  assert rollout.roc_auc(np.array([1, 0]), np.array([0.3, 0.3])) == 0.5
