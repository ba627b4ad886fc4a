"""One jitted PPO iteration of the prover (METHOD 1.2), from graded samples to new weights.

    verifier scores -> rewards per (problem, role) group -> KL-penalized rewards
    -> advantages (group baseline or GAE with a separate critic) -> scaled advantages
    -> `epochs` x `minibatches` clipped PPO updates

all inside one jit (epochs and minibatches are lax.scans), so an iteration is one dispatch.
The b solutions of a group share their prompt, and the passes over the whole batch run that
prompt once per group (`functional.predicting_states`): about half the FLOPs of a
row-by-row pass at the default world's 65-column prompts and 64-token solutions.

Advantages (`cfg.advantages`):
- "rloo": the leave-one-out group baseline (Ahmadian et al. 2024). Each solution's return
  T_i = R_i - beta * sum_t KL_t is compared with the mean return of the other b - 1
  solutions of its (problem, role) group, A_i = T_i - mean_{j != i} T_j, on every token.
  A group whose solutions all earn the same gets zero advantage, and no critic is needed.
- "gae": token-level GAE with a separate critic network (a trunk with a value head), fitted
  to the initial policy before the round (`make_prover_step(..., train_policy=False)` steps
  update the critic only).
The policy and the critic are separate players with their own optimizers, each clipped on
its own, so a value-loss gradient can never shrink or steer the policy's update.

Role anchor (`cfg.role_anchor` = c > 0): both roles share every weight, so an update that
makes one role's solutions more likely also moves the other role's. The anchor keeps the
other role's log-probabilities of this batch's solutions where the initial prover had them:

    L_anchor = c * 0.5 * E_t (log pi(z_t | x, other role) - log pi_init(z_t | x, other role))^2

(zero iff the other role's distribution is unchanged on those tokens), estimated on a
random share `cfg.role_anchor_share` of each minibatch's rows (its cost is one more forward
and backward pass over those rows; the reference log-probs are computed once per
iteration). The probes measure what it buys (pvg_jax/games/probes.py).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import optax

from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.rl import ppo, rewards
from pvg_jax.training import state as train_state

ADVANTAGES = ("rloo", "gae")
WHITEN = ("none", "batch", "role")


def critic_values(spec: ModelSpec, params, tokens, kv_mask, num_predicted: int,
                  group_size: int = 1):
  """Value estimates V(s_t) of a separate critic on the last `num_predicted` columns
  (group_size > 1: groups of rows share their prompt, `functional.predicting_states`)."""
  m = functional.model(spec, params)
  return m.values(functional.predicting_states(spec, m, tokens, kv_mask, num_predicted,
                                               group_size))


ROUNDING_NATS = 1e-4   # log-prob differences below this are float rounding, not change


def _beyond_rounding(diff: jax.Array) -> jax.Array:
  """diff with |diff| < ROUNDING_NATS set to 0. The same log-probs computed in a
  differentiated and in a plain forward pass differ by float rounding (~1e-7), and Adam
  would scale that gradient up to a full-size step away from an unchanged policy."""
  return jnp.where(jnp.abs(diff) < ROUNDING_NATS, 0.0, diff)


def anchor_rows(minibatch_rows: int, share: float) -> int:
  """Rows of a minibatch the role anchor is estimated on: the first ceil(share * rows) of
  the shuffled minibatch: a random-subset estimate of the whole minibatch's anchor (a
  token-weighted mean, so unbiased up to the ratio estimator's O(1/rows) bias) at `share`
  of its cost."""
  return max(1, min(minibatch_rows, math.ceil(share * minibatch_rows)))


def make_prover_step(policy_spec: ModelSpec, critic_spec: ModelSpec | None,
                     verifier_spec: ModelSpec, tx: optax.GradientTransformation,
                     cfg: ml_collections.ConfigDict, reward: str, format_penalty: bool,
                     groups: int, group_size: int, train_policy: bool = True,
                     share_prompts: bool = True):
  """(state, ref_params, verifier_params, batch, beta, key) -> (state, beta, scores, metrics):
  the verifier's scores, the game's reward (rewards.REWARDS[reward]) on them, then
  `make_policy_update`'s PPO iteration.

  state["params"] = {"policy": ...[, "critic": ...]} (critic iff critic_spec is given,
  which cfg.advantages == "gae" requires). batch: tokens / verifier_tokens / kv_mask [N, T]
  (N = groups * group_size, rows grouped by (problem, role)), loss_mask [N, S] over the
  solution columns, correct / parseable [N] bool, helpful [groups] bool.
  other_role_tokens [N, T] the same rows with the role token swapped (role anchor).
  cfg: the ppo config (advantages, whiten, whiten_floor, role_anchor, role_anchor_share,
  gamma, gae_lambda, clip_eps,
  value_clip, vf_coef, epochs, minibatches, adaptive_kl, kl_target, kl_horizon).
  train_policy=False: the critic warm-up step (policy loss dropped, policy kept as is).
  share_prompts: the rows of a group share their prompt (the game's batches do: b samples
  of one (problem, role) prompt), so every pass over the whole batch - old, reference and
  other-role log-probs, critic values, and the update itself when there is one minibatch -
  runs the prompt once per group (`functional.predicting_states`). False: every row on
  its own (the same numbers up to float rounding, at up to ~2x the cost).
  """
  reward_fn = rewards.REWARDS[reward]
  update = make_policy_update(policy_spec, critic_spec, tx, cfg, groups, group_size,
                              train_policy, share_prompts)

  def step(state, ref_params, verifier_params, batch, beta, key):
    shape = (groups, group_size)
    scores = functional.scores(verifier_spec, verifier_params, batch["verifier_tokens"],
                               batch["kv_mask"])
    final = reward_fn(scores.reshape(shape), batch["correct"].reshape(shape), batch["helpful"])
    if format_penalty:
      final = rewards.with_format_penalty(final, batch["parseable"].reshape(shape))
    state, beta, metrics = update(state, ref_params, batch, final.reshape(-1), beta, key)
    return state, beta, scores, metrics

  return step


def make_policy_update(policy_spec: ModelSpec, critic_spec: ModelSpec | None,
                       tx: optax.GradientTransformation, cfg: ml_collections.ConfigDict,
                       groups: int, group_size: int, train_policy: bool = True,
                       share_prompts: bool = True):
  """(state, ref_params, batch, final, beta, key) -> (state, beta, metrics): one PPO
  iteration from final rewards [N] of N = groups * group_size sampled rows, whatever made
  them (a verifier's reward here, a judge's in the debate game). batch: tokens / kv_mask
  [N, T], loss_mask [N, S], helpful [groups] bool (the row groups advantages are scaled
  by with whiten="role"; the debate game passes the side), other_role_tokens [N, T] with
  cfg.role_anchor. The other arguments as in `make_prover_step`.
  """
  if (cfg.advantages == "gae") != (critic_spec is not None):
    raise ValueError(f"advantages={cfg.advantages!r} needs a critic iff it is 'gae'")
  num_rows = groups * group_size
  shared = group_size if share_prompts else 1             # rows per prompt pass, whole batch
  # One minibatch is the whole batch, whose mean loss does not depend on the row order: its
  # rows stay grouped, so the update shares the prompt pass too. More minibatches shuffle
  # rows across groups (a random row subset per update), and each row runs on its own.
  update_shared = shared if cfg.minibatches == 1 else 1
  anchor_n = anchor_rows(num_rows // cfg.minibatches, cfg.role_anchor_share)

  def loss_fn(params, ref_params, mb):
    loss, metrics = 0.0, {}
    if train_policy:
      logp = functional.token_logprobs(policy_spec, params["policy"], mb["tokens"],
                                       mb["kv_mask"], mb["loss_mask"].shape[1],
                                       group_size=update_shared)
      loss, metrics = ppo.policy_loss(logp, mb["old_logp"], mb["advantages"],
                                      mb["loss_mask"], cfg.clip_eps)
      if cfg.role_anchor:
        sub = mb["anchor_rows"]                                     # a random row subset
        other = functional.token_logprobs(
            policy_spec, params["policy"], mb["other_role_tokens"][sub], mb["kv_mask"][sub],
            mb["loss_mask"].shape[1])
        diff = _beyond_rounding(other - mb["other_ref_logp"][sub])
        anchor = 0.5 * ppo.masked_mean(jnp.square(diff), mb["loss_mask"][sub])
        loss, metrics = loss + cfg.role_anchor * anchor, {**metrics, "role_anchor": anchor}
    if critic_spec is not None:
      values = critic_values(critic_spec, params["critic"], mb["tokens"], mb["kv_mask"],
                             mb["loss_mask"].shape[1], update_shared)
      vl, vm = ppo.value_loss(values, mb["old_values"], mb["returns"], mb["loss_mask"],
                              cfg.value_clip)
      loss, metrics = loss + cfg.vf_coef * vl, {**metrics, **vm}
    return loss, metrics

  def minibatch_step(ref_params, state, mb):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state["params"], ref_params, mb)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    if not train_policy:
      updates = {**updates, "policy": jax.tree.map(jnp.zeros_like, updates["policy"])}
      opt_state = {**opt_state, "policy": state["opt_state"]["policy"]}
    metrics["grad_norm_policy"] = optax.global_norm(grads["policy"])
    metrics["lr"] = train_state.applied_learning_rate(opt_state["policy"])
    return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
            "step": state["step"] + 1}, metrics

  def epoch(ref_params, state, data_and_key):
    data, key = data_and_key
    perm = jax.random.permutation(key, num_rows)
    if cfg.minibatches == 1:          # rows stay grouped; the anchor's rows are perm's first
      shuffled = jax.tree.map(lambda x: x[None], data)
      shuffled["anchor_rows"] = perm[None, :anchor_n]
    else:                             # the shuffled minibatches' first rows
      shuffled = jax.tree.map(lambda x: x[perm].reshape(
          cfg.minibatches, num_rows // cfg.minibatches, *x.shape[1:]), data)
      shuffled["anchor_rows"] = jnp.broadcast_to(jnp.arange(anchor_n),
                                                 (cfg.minibatches, anchor_n))
    return jax.lax.scan(functools.partial(minibatch_step, ref_params), state, shuffled)

  def update(state, ref_params, batch, final, beta, key):
    shape = (groups, group_size)
    mask = batch["loss_mask"]
    num = mask.shape[1]
    params = state["params"]
    logp = functional.token_logprobs(policy_spec, params["policy"], batch["tokens"],
                                     batch["kv_mask"], num, group_size=shared)
    ref_logp = functional.token_logprobs(policy_spec, ref_params, batch["tokens"],
                                         batch["kv_mask"], num, group_size=shared)
    token_r, kl = ppo.token_rewards(final, logp, ref_logp, mask, beta)
    data = {"tokens": batch["tokens"], "kv_mask": batch["kv_mask"], "loss_mask": mask,
            "old_logp": logp}
    if cfg.role_anchor:
      data["other_role_tokens"] = batch["other_role_tokens"]
      data["other_ref_logp"] = functional.token_logprobs(
          policy_spec, ref_params, batch["other_role_tokens"], batch["kv_mask"], num,
          group_size=shared)
    if critic_spec is None:
      returns = token_r.sum(axis=1).reshape(shape)           # R - beta * KL per solution
      advantages = ppo.rloo_advantages(returns).reshape(-1)[:, None] * mask
    else:
      values = critic_values(critic_spec, params["critic"], batch["tokens"],
                             batch["kv_mask"], num, shared)
      advantages, returns = ppo.compute_gae(token_r, values, mask, cfg.gamma, cfg.gae_lambda)
      data.update(old_values=values, returns=returns)
    row_group = jnp.repeat(jnp.where(batch["helpful"], 0, 1), group_size)
    advantages = ppo.scale_advantages(advantages, mask, row_group, cfg.whiten,
                                      cfg.whiten_floor)
    data["advantages"] = advantages
    keys = jax.random.split(key, cfg.epochs)
    state, metrics = jax.lax.scan(functools.partial(epoch, ref_params), state, (jax.tree.map(
        lambda x: jnp.broadcast_to(x, (cfg.epochs, *x.shape)), data), keys))
    metrics = jax.tree.map(jnp.mean, metrics)
    kl_per_solution = kl.sum(axis=1).mean()
    if cfg.adaptive_kl:
      beta = ppo.adaptive_beta(beta, kl_per_solution, cfg.kl_target, cfg.kl_horizon)
    metrics.update(reward=final.mean(), kl=kl_per_solution, beta=beta,
                   solution_tokens=mask.sum(axis=1).mean(),
                   advantage_abs=ppo.masked_mean(jnp.abs(advantages), mask))
    return state, beta, metrics

  return update
