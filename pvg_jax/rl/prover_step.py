"""One jitted PPO iteration of the prover (METHOD 1.2), from graded samples to new weights.

    verifier scores -> rewards per (problem, role) group -> per-token KL-penalized rewards
    -> GAE -> (whitened) advantages -> `epochs` x `minibatches` clipped PPO updates

all inside one jit (epochs and minibatches are lax.scans), so an iteration is one dispatch.
The critic is the prover's own value head ("shared") or a separate network ("separate");
either way one optimizer updates {"policy": ..., "critic": ...} together.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.rl import ppo, rewards


def policy_outputs(policy_spec: ModelSpec, critic_spec: ModelSpec | None, params, tokens,
                   kv_mask, num_predicted: int):
  """Log-probs of the policy and values of the critic on the last `num_predicted` columns."""
  if critic_spec is None:
    return functional.token_logprobs(policy_spec, params["policy"], tokens, kv_mask,
                                     num_predicted, values=True)
  logp = functional.token_logprobs(policy_spec, params["policy"], tokens, kv_mask,
                                   num_predicted)
  values = critic_values(critic_spec, params["critic"], tokens, kv_mask, num_predicted)
  return logp, values


def critic_values(spec: ModelSpec, params, tokens, kv_mask, num_predicted: int):
  """Value estimates of a separate critic (a trunk with only a value head)."""
  m = functional.model(spec, params)
  hidden, _ = m(tokens, functional.positions_from_mask(kv_mask), kv_mask)
  return m.values(hidden[:, -num_predicted - 1:-1])


def make_prover_step(policy_spec: ModelSpec, critic_spec: ModelSpec | None,
                     verifier_spec: ModelSpec, tx: optax.GradientTransformation,
                     cfg: ml_collections.ConfigDict, reward: str, format_penalty: bool,
                     groups: int, group_size: int):
  """(state, ref_params, verifier_params, batch, beta, key) -> (state, beta, scores, metrics).

  batch: tokens / verifier_tokens / kv_mask [N, T] (N = groups * group_size, rows grouped
  by (problem, role)), loss_mask [N, S] over the solution columns, correct / parseable [N]
  bool, helpful [groups] bool.
  cfg: the ppo config (gamma, gae_lambda, clip_eps, value_clip, vf_coef, epochs,
  minibatches, whiten, adaptive_kl, kl_target, kl_horizon).
  """
  reward_fn = rewards.REWARDS[reward]

  def loss_fn(params, mb):
    logp, values = policy_outputs(policy_spec, critic_spec, params, mb["tokens"],
                                  mb["kv_mask"], mb["loss_mask"].shape[1])
    pl, pm = ppo.policy_loss(logp, mb["old_logp"], mb["advantages"], mb["loss_mask"],
                             cfg.clip_eps)
    vl, vm = ppo.value_loss(values, mb["old_values"], mb["returns"], mb["loss_mask"],
                            cfg.value_clip)
    return pl + cfg.vf_coef * vl, {**pm, **vm}

  def minibatch_step(state, mb):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state["params"], mb)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    metrics["grad_norm"] = optax.global_norm(grads)
    return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
            "step": state["step"] + 1}, metrics

  def epoch(state, data_and_key):
    data, key = data_and_key
    n = data["tokens"].shape[0]
    perm = jax.random.permutation(key, n)
    shuffled = jax.tree.map(
        lambda x: x[perm].reshape(cfg.minibatches, n // cfg.minibatches, *x.shape[1:]), data)
    return jax.lax.scan(minibatch_step, state, shuffled)

  def step(state, ref_params, verifier_params, batch, beta, key):
    scores = functional.scores(verifier_spec, verifier_params, batch["verifier_tokens"],
                               batch["kv_mask"])
    shape = (groups, group_size)
    final = reward_fn(scores.reshape(shape), batch["correct"].reshape(shape), batch["helpful"])
    if format_penalty:
      final = rewards.with_format_penalty(final, batch["parseable"].reshape(shape))
    final = final.reshape(-1)
    mask = batch["loss_mask"]
    num = mask.shape[1]
    logp, values = policy_outputs(policy_spec, critic_spec, state["params"], batch["tokens"],
                                  batch["kv_mask"], num)
    ref_logp = functional.token_logprobs(policy_spec, ref_params, batch["tokens"],
                                         batch["kv_mask"], num)
    token_r, kl = ppo.token_rewards(final, logp, ref_logp, mask, beta)
    advantages, returns = ppo.compute_gae(token_r, values, mask, cfg.gamma, cfg.gae_lambda)
    if cfg.whiten:
      advantages = ppo.whiten(advantages, mask)
    data = {"tokens": batch["tokens"], "kv_mask": batch["kv_mask"], "loss_mask": mask,
            "old_logp": logp, "old_values": values, "advantages": advantages,
            "returns": returns}
    keys = jax.random.split(key, cfg.epochs)
    state, metrics = jax.lax.scan(epoch, state, (jax.tree.map(
        lambda x: jnp.broadcast_to(x, (cfg.epochs, *x.shape)), data), keys))
    metrics = jax.tree.map(jnp.mean, metrics)
    kl_per_solution = kl.sum(axis=1).mean()
    if cfg.adaptive_kl:
      beta = ppo.adaptive_beta(beta, kl_per_solution, cfg.kl_target, cfg.kl_horizon)
    metrics.update(reward=final.mean(), kl=kl_per_solution, beta=beta,
                   solution_tokens=mask.sum(axis=1).mean())
    return state, beta, scores, metrics

  return step
