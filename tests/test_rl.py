"""Rewards (hand-computed), GAE and PPO losses (NumPy reference), stopping rules."""

import jax.numpy as jnp
import numpy as np
import pytest

from pvg_jax.rl import ppo, rewards, stopping


def test_src_reward_hand_case():
  # group 0 helpful: scores 1, 2, 3 (mean 2) -> centred -1, 0, +1
  # group 1 sneaky:  scores 0, 4, 2 (mean 2) -> centred -2, +2, 0
  scores = jnp.array([[1.0, 2.0, 3.0], [0.0, 4.0, 2.0]])
  correct = jnp.array([[True, True, False], [True, False, False]])
  helpful = jnp.array([True, False])
  r = rewards.src_reward(scores, correct, helpful)
  # helpful & incorrect & centred +1 -> -1 ; sneaky & incorrect & centred +2 -> +2
  np.testing.assert_allclose(r, [[-1.0, -1.0, -1.0], [-1.0, 2.0, -1.0]])


@pytest.mark.parametrize("b", [3, 5, 6, 7])
def test_src_reward_identical_group_gets_the_floor_for_any_group_size(b):
  # the mean of b identical float32 scores can differ from them by an ulp when b is not a
  # power of two; that rounding error must not count as "above the mean"
  for value in (0.1, -1.37, 3.3, 12.7):
    scores = jnp.full((1, b), value, jnp.float32)
    r = rewards.src_reward(scores, jnp.ones((1, b), bool), jnp.array([True]))
    np.testing.assert_array_equal(r, -1.0)


def test_oracle_and_zero_rewards():
  correct = jnp.array([[True, False, False, True]])
  oracle = rewards.oracle_src_reward(jnp.zeros((1, 4)), correct, jnp.array([True]))
  np.testing.assert_allclose(oracle, [[0.5, -1.0, -1.0, 0.5]])
  np.testing.assert_array_equal(rewards.zero_reward(jnp.ones((1, 4)), correct,
                                                    jnp.array([True])), 0.0)


def test_src_reward_ties_and_single_sign_groups():
  scores = jnp.array([[0.5, 0.5, 0.5, 0.5], [3.0, 1.0, 1.0, 1.0]])
  correct = jnp.array([[True, True, True, True], [True, True, True, True]])
  helpful = jnp.array([True, True])
  r = rewards.src_reward(scores, correct, helpful)
  # all tied: centred 0 everywhere -> the -1 floor; one above the mean (+1.5) -> +1.5
  np.testing.assert_allclose(r, [[-1, -1, -1, -1], [1.5, -1, -1, -1]])
  # adding a constant to a group's scores changes nothing (mean-centred per group)
  np.testing.assert_allclose(rewards.src_reward(scores + 7.0, correct, helpful), r)
  sneaky = rewards.src_reward(scores, correct, jnp.array([False, False]))
  np.testing.assert_allclose(sneaky, [[-1, -1, -1, -1], [-1.5, -1, -1, -1]])


def test_cgc_goodhart_correctness_rewards():
  scores = jnp.array([[0.3, -0.7]])
  correct = jnp.array([[True, False]])
  np.testing.assert_allclose(rewards.cgc_reward(scores, correct, jnp.array([True])),
                             [[0.3, -2.0]])
  np.testing.assert_allclose(rewards.cgc_reward(scores, correct, jnp.array([False])),
                             [[-2.0, -0.7]])
  np.testing.assert_allclose(rewards.goodhart_reward(scores, correct, jnp.array([False])),
                             scores)
  np.testing.assert_allclose(rewards.correctness_reward(scores, correct, jnp.array([True])),
                             [[1.0, 0.0]])
  penal = rewards.with_format_penalty(jnp.array([[0.3, -2.0]]), jnp.array([[True, False]]))
  np.testing.assert_allclose(penal, [[0.3, -3.0]])


def reference_gae(rewards_, values, mask, gamma, lam):
  b, s = rewards_.shape
  adv = np.zeros((b, s))
  for i in range(b):
    last = 0.0
    for t in reversed(range(s)):
      if not mask[i, t]:
        last = 0.0
        continue
      nxt = values[i, t + 1] if t + 1 < s and mask[i, t + 1] else 0.0
      delta = rewards_[i, t] + gamma * nxt - values[i, t]
      cont = 1.0 if t + 1 < s and mask[i, t + 1] else 0.0
      last = delta + gamma * lam * cont * last
      adv[i, t] = last
  return adv, (adv + values) * mask


def test_gae_matches_reference():
  rng = np.random.default_rng(0)
  lengths = np.array([5, 1, 8, 3])
  mask = np.arange(8)[None] < lengths[:, None]
  r, v = rng.normal(size=(4, 8)) * mask, rng.normal(size=(4, 8)) * mask
  for gamma, lam in [(1.0, 0.95), (0.9, 1.0), (0.99, 0.0)]:
    adv, ret = ppo.compute_gae(jnp.array(r), jnp.array(v), jnp.array(mask), gamma, lam)
    ref_adv, ref_ret = reference_gae(r, v, mask, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, atol=1e-5)


def test_gae_hand_case():
  # one solution of 2 tokens, reward 1 at the end, values 0.5 and 0.25, gamma = lam = 1:
  # A_1 = 1 - 0.25 = 0.75 ; A_0 = (0 + 0.25 - 0.5) + 0.75 = 0.5
  adv, ret = ppo.compute_gae(jnp.array([[0.0, 1.0]]), jnp.array([[0.5, 0.25]]),
                             jnp.array([[True, True]]), 1.0, 1.0)
  np.testing.assert_allclose(adv, [[0.5, 0.75]])
  np.testing.assert_allclose(ret, [[1.0, 1.0]])


def test_token_rewards_put_r_on_the_last_token_and_kl_everywhere():
  mask = jnp.array([[True, True, True, False]])
  r, kl = ppo.token_rewards(jnp.array([2.0]), jnp.array([[-1.0, -2.0, -0.5, 0.0]]),
                            jnp.array([[-1.5, -2.0, -1.0, -9.0]]), mask, 0.1)
  np.testing.assert_allclose(kl, [[0.5, 0.0, 0.5, 0.0]])
  np.testing.assert_allclose(r, [[-0.05, 0.0, 2.0 - 0.05, 0.0]])


def reference_ppo(logp, old, adv, mask, eps):
  ratio = np.exp(logp - old)
  obj = np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv)
  return -(obj * mask).sum() / mask.sum()


def test_policy_and_value_losses_match_reference():
  rng = np.random.default_rng(1)
  logp, old = rng.normal(size=(3, 6)) * 0.3, rng.normal(size=(3, 6)) * 0.3
  adv = rng.normal(size=(3, 6))
  mask = rng.random((3, 6)) < 0.7
  loss, m = ppo.policy_loss(*(jnp.array(x) for x in (logp, old, adv, mask)), 0.2)
  assert float(loss) == pytest.approx(reference_ppo(logp, old, adv, mask, 0.2), rel=1e-5)
  ratio = np.exp(logp - old)
  assert float(m["clip_fraction"]) == pytest.approx(
      ((np.abs(ratio - 1) > 0.2) * mask).sum() / mask.sum(), rel=1e-5)
  values, old_v, returns = (rng.normal(size=(3, 6)) for _ in range(3))
  vl, _ = ppo.value_loss(*(jnp.array(x) for x in (values, old_v, returns, mask)), 0.2)
  clipped = old_v + np.clip(values - old_v, -0.2, 0.2)
  ref = 0.5 * (np.maximum((values - returns) ** 2, (clipped - returns) ** 2) * mask).sum() \
      / mask.sum()
  assert float(vl) == pytest.approx(ref, rel=1e-5)


def test_rloo_advantages_match_reference():
  rng = np.random.default_rng(2)
  returns = rng.normal(size=(3, 5))
  returns[1] = 0.7                                   # a group that all earned the same
  ref = np.array([[r[i] - np.delete(r, i).mean() for i in range(5)] for r in returns])
  adv = np.asarray(ppo.rloo_advantages(jnp.array(returns)))
  np.testing.assert_allclose(adv, ref, rtol=1e-5, atol=1e-6)
  assert np.all(adv[1] == 0.0)


def test_scale_advantages_modes():
  x = jnp.array([[1.0, 100.0], [3.0, 0.0], [0.0, 0.0], [0.5, 0.0]])
  mask = jnp.array([[True, False], [True, False], [True, False], [True, False]])
  roles = jnp.array([0, 0, 1, 1])
  np.testing.assert_allclose(ppo.scale_advantages(x, mask, roles, "none", 0.1), x)
  real = np.array([1.0, 3.0, 0.0, 0.5])
  batch = np.asarray(ppo.scale_advantages(x, mask, roles, "batch", 0.1))
  np.testing.assert_allclose(batch[:, 0], real / real.std(), rtol=1e-5)
  assert np.all(batch[:, 1] == 0.0)                  # outside the mask
  role = np.asarray(ppo.scale_advantages(x, mask, roles, "role", 0.1))
  np.testing.assert_allclose(role[:2, 0], real[:2] / real[:2].std(), rtol=1e-5)
  np.testing.assert_allclose(role[2:, 0], real[2:] / max(real[2:].std(), 0.1), rtol=1e-5)
  tiny = np.asarray(ppo.scale_advantages(x * 1e-4, mask, roles, "batch", 0.1))
  np.testing.assert_allclose(tiny[:, 0], real * 1e-4 / 0.1, rtol=1e-5)   # the floor binds


def test_adaptive_beta():
  assert float(ppo.adaptive_beta(0.1, 4.0, 2.0, 10.0)) == pytest.approx(0.1 * 1.02)
  assert float(ppo.adaptive_beta(0.1, 1.9, 2.0, 10.0)) == pytest.approx(0.1 * (1 - 0.005))


def _stats(hc, si, sneaky_acc, acc=0.5):
  return stopping.StepStats(hc * 10, 10, si * 10, 10, int(sneaky_acc * 20), 20,
                            int(acc * 40), 40)


def test_stopping_rules():
  src = stopping.StopMonitor("src", max_steps=100, window=2)
  assert src.update(_stats(1.0, -1.0, 0.2), 1) is None
  assert src.update(_stats(1.0, 2.0, 0.2), 2) is None          # window mean still below
  assert src.update(_stats(1.0, 2.0, 0.2), 3) == "score_parity"
  cgc = stopping.StopMonitor("cgc", max_steps=100, window=1)
  assert cgc.update(_stats(1.0, 2.0, 0.1), 1) is None           # parity, sneaky acc 10%
  assert cgc.update(_stats(1.0, 2.0, 0.0), 2) == "score_parity_and_sneaky_below_5pct"
  good = stopping.StopMonitor("goodhart", max_steps=1000, window=1)
  reasons = [good.update(_stats(0, 0, 0, acc=0.1), t) for t in range(1, 81)]
  assert reasons[:79] == [None] * 79 and reasons[79] == "accuracy_below_0.2_over_80_steps"
  budget = stopping.StopMonitor("correctness", max_steps=3, window=1)
  assert [budget.update(_stats(0, 0, 0), t) for t in (1, 2, 3)] == [None, None,
                                                                     "step_budget"]
  resumed = stopping.StopMonitor("src", 100, 2, src.state())
  assert resumed.summary() == src.summary()


def test_sneaky_below_10pct_step_is_recorded_and_resumed():
  m = stopping.StopMonitor("src", max_steps=100, window=2)
  for step, acc in enumerate([0.3, 0.1, 0.05, 0.0, 0.0], start=1):
    m.update(_stats(2.0, -2.0, acc), step)
    if step == 2:
      assert m.sneaky_below_step is None             # window mean (0.3 + 0.1) / 2 = 0.2
    if step == 3:
      # window (0.1, 0.05): 0.075 < 0.1, recorded at the step it first happens
      assert m.sneaky_below_step == 3
      m = stopping.StopMonitor("src", 100, 2, m.state())
  assert m.sneaky_below_step == 3
