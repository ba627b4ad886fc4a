"""Token-level GAE and PPO losses for a language-model policy with a value head.

Shapes: [B, S] over the solution tokens of B sampled solutions, `mask` True on real
solution tokens (up to and including <eos>). values[t] = V(s_t) is the critic's estimate
before token t is emitted. Reductions return (sum, count) pairs so means are exact across
minibatches and hosts; `masked_mean` divides.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.where(mask, x, 0.0).sum() / jnp.maximum(mask.sum(), 1)


def rloo_advantages(returns: jax.Array) -> jax.Array:
  """Leave-one-out group baseline (RLOO, Ahmadian et al. 2024) over [G, b] returns:

      A_i = T_i - (1 / (b - 1)) sum_{j != i} T_j  =  b / (b - 1) (T_i - mean_j T_j).

  A group whose b returns are all equal gets A = 0 (needs b >= 2)."""
  b = returns.shape[1]
  return (returns - returns.mean(axis=1, keepdims=True)) * (b / (b - 1))


def scale_advantages(advantages: jax.Array, mask: jax.Array, row_group: jax.Array,
                     mode: str, floor: float) -> jax.Array:
  """Advantages divided by their standard deviation (mean not subtracted):

      A / max(std(A), floor)

  std over every masked token of the batch ("batch"), over the tokens of each row group
  separately ("role": row_group [B] is 0 for helpful and 1 for sneaky rows), or no scaling
  ("none"). The mean is kept, so a zero advantage (a group whose solutions all earned the
  same) stays zero; the floor keeps a batch of near-equal returns from being blown up to
  unit size."""
  if mode == "none":
    return advantages
  groups = jnp.zeros_like(row_group) if mode == "batch" else row_group
  out = advantages
  for g in (0, 1):
    sel = mask & (groups == g)[:, None]
    std = jnp.sqrt(masked_mean(jnp.square(advantages - masked_mean(advantages, sel)), sel))
    out = jnp.where(sel, advantages / jnp.maximum(std, floor), out)
  return jnp.where(mask, out, 0.0)


def token_rewards(final_reward: jax.Array, logp: jax.Array, ref_logp: jax.Array,
                  mask: jax.Array, beta: jax.Array | float) -> tuple[jax.Array, jax.Array]:
  """Per-token rewards: r_t = -beta * (log pi(z_t) - log pi_init(z_t)) on every token, plus
  the sequence reward R(z | x, role) on the last token (the KL-penalized objective of
  METHOD 1.2 with the k1 KL estimate). Returns (rewards [B, S], per-token KL [B, S])."""
  kl = jnp.where(mask, logp - ref_logp, 0.0)
  last = mask & ~jnp.pad(mask[:, 1:], ((0, 0), (0, 1)))          # True at the last token
  return jnp.where(last, final_reward[:, None], 0.0) - beta * kl, kl


def compute_gae(rewards: jax.Array, values: jax.Array, mask: jax.Array, gamma: float,
                lam: float) -> tuple[jax.Array, jax.Array]:
  """Generalized advantage estimation over tokens (Schulman et al. 2016):

      delta_t = r_t + gamma * V(s_{t+1}) * m_{t+1} - V(s_t)
      A_t     = delta_t + gamma * lam * m_{t+1} * A_{t+1}
      returns_t = A_t + V(s_t)

  computed right to left with a scan; entries outside `mask` are 0.
  """
  mask_f = mask.astype(rewards.dtype)
  next_values = jnp.pad(values[:, 1:] * mask_f[:, 1:], ((0, 0), (0, 1)))
  next_mask = jnp.pad(mask_f[:, 1:], ((0, 0), (0, 1)))
  deltas = (rewards + gamma * next_values - values) * mask_f

  def step(carry, xs):
    delta, nm = xs
    adv = delta + gamma * lam * nm * carry
    return adv, adv

  _, adv = jax.lax.scan(step, jnp.zeros(rewards.shape[0], rewards.dtype),
                        (deltas.T, next_mask.T), reverse=True)
  adv = adv.T * mask_f
  return adv, (adv + values) * mask_f


def policy_loss(logp: jax.Array, old_logp: jax.Array, advantages: jax.Array,
                mask: jax.Array, clip_eps: float) -> tuple[jax.Array, dict]:
  """Clipped surrogate (Schulman et al. 2017), mean over tokens:

      L = -E_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t),  rho_t = pi/pi_old.
  """
  ratio = jnp.exp(logp - old_logp)
  unclipped = ratio * advantages
  clipped = jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
  loss = -masked_mean(jnp.minimum(unclipped, clipped), mask)
  clipfrac = masked_mean((jnp.abs(ratio - 1) > clip_eps).astype(jnp.float32), mask)
  approx_kl = masked_mean(old_logp - logp, mask)
  return loss, {"policy_loss": loss, "clip_fraction": clipfrac, "approx_kl_old": approx_kl}


def value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array,
               mask: jax.Array, clip: float) -> tuple[jax.Array, dict]:
  """Clipped value loss: 0.5 E_t max((V - G)^2, (V_old + clip(V - V_old, +-c) - G)^2)."""
  clipped = old_values + jnp.clip(values - old_values, -clip, clip)
  loss = 0.5 * masked_mean(jnp.maximum(jnp.square(values - returns),
                                       jnp.square(clipped - returns)), mask)
  return loss, {"value_loss": loss}


def adaptive_beta(beta: jax.Array, kl: jax.Array, target: float, horizon: float,
                  n_steps: int = 1) -> jax.Array:
  """Adaptive KL controller (Ziegler et al. 2019): beta *= 1 + clip(kl/target - 1, +-0.2)
  * n_steps / horizon."""
  error = jnp.clip(kl / target - 1.0, -0.2, 0.2)
  return beta * (1.0 + error * n_steps / horizon)
