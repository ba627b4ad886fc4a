"""The jitted PPO iteration on real arith samples, with the group baseline and with GAE."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pvg_jax import sharding
from pvg_jax.games import jitted
from pvg_jax.models import functional
from pvg_jax.worlds.arith import world as arith_world


@pytest.mark.parametrize("advantages, reward, anchor", [("rloo", "src", 0.0),
                                                       ("gae", "cgc", 0.0),
                                                       ("rloo", "correctness", 1.0)])
def test_prover_step_updates_policy_and_reports_finite_metrics(smoke_config, advantages,
                                                               reward, anchor):
  state, before, metrics, scores, n, g = _one_step(smoke_config, advantages, reward, anchor,
                                                   "mixed")
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  assert scores.shape == (n,)
  assert int(state["step"]) == g.epochs * g.minibatches
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()),
                       state["params"]["policy"], before)
  assert max(jax.tree.leaves(moved)) > 0
  # the policy starts equal to the reference: KL of the first batch is exactly 0
  assert metrics["kl"] == pytest.approx(0.0, abs=1e-5)


def test_group_baseline_gives_constant_reward_groups_zero_advantage(smoke_config):
  """Every group all correct under the correctness reward: with the leave-one-out group
  baseline every advantage is 0 and the policy does not move (a critic baseline with
  whitening would push these sure right answers around)."""
  state, before, metrics, _, _, _ = _one_step(smoke_config, "rloo", "correctness", 0.0,
                                              "all_correct")
  assert metrics["advantage_abs"] == 0.0
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()),
                       state["params"]["policy"], before)
  assert max(jax.tree.leaves(moved)) == 0.0


@pytest.mark.parametrize("advantages, minibatches", [("gae", 1), ("rloo", 2)])
def test_shared_prompt_passes_take_the_row_by_row_step(smoke_config, advantages, minibatches):
  """The step that runs each group's prompt once (share_prompts, the game's) and the one
  that runs every row on its own take the same step: metrics and new parameters equal up
  to float rounding, with one minibatch (the update shares the prompt too) and with two
  (shuffled rows; only the whole-batch passes share it), role anchor on.

  The update is plain SGD (lr 1) here, so a parameter difference is a gradient difference:
  Adam's first step, lr * g / (|g| + eps) per element, would turn ulp-level gradient
  differences on elements with |g| near eps into a sizable fraction of a step (seen on
  AVX2 hosts: 0.24% of a step on one element)."""
  from pvg_jax.rl import prover_step
  from pvg_jax.training import state as train_state
  cfg = smoke_config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.game.ppo.advantages, cfg.game.ppo.minibatches = advantages, minibatches
    cfg.game.ppo.role_anchor = 1.0
  world, fns, state, policy, verifier, batch = _setup(cfg, "mixed")
  sgd = optax.chain(optax.identity(), optax.inject_hyperparams(optax.sgd)(learning_rate=1.0))
  tx = train_state.per_player({"policy": sgd, "critic": sgd})
  state = {**state, "opt_state": tx.init(state["params"])}
  g = cfg.game.ppo
  out = {}
  for share in (True, False):
    step = jax.jit(prover_step.make_prover_step(
        fns.prover_spec, fns.critic_spec, fns.verifier_spec, tx, g, cfg.game.reward,
        cfg.game.format_penalty, g.groups, g.group_size, share_prompts=share))
    new, _, _, metrics = step(jax.tree.map(jnp.copy, state), policy, verifier,
                              batch, np.float32(0.05), jax.random.key(4))
    out[share] = jax.device_get((new["params"], metrics))
  for key in out[True][1]:
    np.testing.assert_allclose(out[True][1][key], out[False][1][key], rtol=1e-4, atol=1e-5,
                               err_msg=key)
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), out[False][0],
                       jax.device_get(state["params"]))
  diff = jax.tree.map(lambda a, b: np.abs(a - b).max(), out[True][0], out[False][0])
  assert max(jax.tree.leaves(moved)) > 1e-4                  # the step moved the weights
  assert max(jax.tree.leaves(diff)) < 1e-3 * max(jax.tree.leaves(moved)), diff


def _setup(cfg, labels):
  """(world, fns, PPO state, policy, verifier, graded batch) on a (2, 2, 2) mesh."""
  world = arith_world.ArithWorld(cfg.world, cfg.seed)
  mesh = sharding.make_mesh((2, 2, 2))
  rules = sharding.DEFAULT_RULES
  pspec = functional.make_spec(cfg.prover.size, world.tokenizer.size, ("lm",))
  vspec = functional.make_spec(cfg.verifier.size, world.tokenizer.size, ("score",))
  fns = jitted.build(cfg, world, pspec, vspec, mesh)
  policy = functional.init_params(pspec, jax.random.key(0), mesh, rules)
  params = {"policy": policy}
  if cfg.game.ppo.advantages == "gae":
    params["critic"] = functional.init_params(fns.critic_spec, jax.random.key(1), mesh, rules)
  state = fns.init_prover_state(params)
  verifier = functional.init_params(vspec, jax.random.key(2), mesh, rules)
  g = cfg.game.ppo
  n = g.groups * g.group_size
  probs = world.problems("prover", np.repeat(np.arange(g.groups), g.group_size))
  helpful = np.arange(g.groups) % 2 == 0
  roles = np.repeat(np.where(helpful, 0, 1), g.group_size)
  prompts = world.prompts(probs, roles)
  samples = fns.sample_ppo(policy, prompts, jax.random.key(3))
  seqs = world.sequences(prompts, np.asarray(samples.tokens))
  correct = (np.arange(n) % 3 == 0 if labels == "mixed"    # any labels: the step must
             else np.ones(n, bool))                         # handle them
  batch = {"tokens": seqs.tokens, "verifier_tokens": world.verifier_view(seqs.tokens),
           "other_role_tokens": world.other_role_view(seqs.tokens), "kv_mask": seqs.kv_mask,
           "loss_mask": seqs.loss_mask, "correct": correct, "parseable": np.ones(n, bool),
           "helpful": helpful}
  return world, fns, state, policy, verifier, batch


def _one_step(smoke_config, advantages, reward, anchor, labels):
  cfg = smoke_config.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.game.ppo.advantages = advantages
    cfg.game.ppo.role_anchor = anchor
    cfg.game.reward = reward
  world, fns, state, policy, verifier, batch = _setup(cfg, labels)
  g = cfg.game.ppo
  n = g.groups * g.group_size
  before = jax.device_get(policy)
  state, _, scores, metrics = fns.prover_step(state, policy, verifier, batch,
                                              np.float32(0.05), jax.random.key(4))
  return state, before, jax.device_get(metrics), scores, n, g
