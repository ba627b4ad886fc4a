"""Train state (a plain pytree), optimizer and sharding of both.

state = {"params": ..., "opt_state": ..., "step": int32 scalar}. Shardings are derived from
the parameters' logical axes; optimizer slots that mirror a parameter get its sharding
(optax.tree_map_params), everything else is replicated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from pvg_jax import sharding
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec


def make_schedule(cfg: ml_collections.ConfigDict, updates_per_step: int = 1):
  """Learning rate per optimizer update, defined in training steps:

      lr(s) = cfg.lr * (s + 1) / W                                  for s < W
      lr(s) = lr_end + (cfg.lr - lr_end) * (1 + cos(pi * u)) / 2     for s >= W,
              u = min(s - W, D) / D,  D = max(cfg.steps - W, 1),  lr_end = 0.1 * cfg.lr

  s = update // updates_per_step is the training step (a PPO step makes epochs x
  minibatches updates, all at the same rate), W = cfg.warmup_steps, and the cosine reaches
  10% of cfg.lr at the step budget cfg.steps.
  """
  peak, end = cfg.lr, 0.1 * cfg.lr
  warmup, total = cfg.warmup_steps, cfg.steps
  decay = max(total - warmup, 1)

  def schedule(count):
    s = count // updates_per_step
    ramp = peak * (s + 1) / max(warmup, 1)
    u = jnp.clip(s - warmup, 0, decay) / decay
    cosine = end + (peak - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * u))
    return jnp.where(s < warmup, ramp, cosine)
  return schedule


def make_optimizer(cfg: ml_collections.ConfigDict,
                   updates_per_step: int = 1) -> optax.GradientTransformation:
  """AdamW on `make_schedule`, after global-norm clipping. The rate each update applies is
  kept in the optimizer state (`applied_learning_rate`)."""
  adamw = optax.inject_hyperparams(optax.adamw)(
      learning_rate=make_schedule(cfg, updates_per_step), b1=0.9, b2=0.98,
      weight_decay=cfg.weight_decay)
  return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw)


def per_player(txs: dict[str, optax.GradientTransformation]) -> optax.GradientTransformation:
  """One optimizer per top-level key of the params (e.g. "policy" and "critic"): each is
  clipped and scheduled on its own, so one player's gradients never rescale the other's
  update. The state is {key: that optimizer's state}."""
  def init(params):
    return {k: txs[k].init(v) for k, v in params.items()}

  def update(grads, state, params=None):
    out = {k: txs[k].update(g, state[k], None if params is None else params[k])
           for k, g in grads.items()}
    return {k: u for k, (u, _) in out.items()}, {k: s for k, (_, s) in out.items()}
  return optax.GradientTransformation(init, update)


def applied_learning_rate(opt_state) -> jax.Array:
  """The learning rate of the last update made with a `make_optimizer` state."""
  return opt_state[1].hyperparams["learning_rate"]


def state_shardings(param_sh, abstract_params, tx: optax.GradientTransformation,
                    mesh: Mesh):
  """Shardings of {"params", "opt_state", "step"} given the parameters' shardings."""
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  repl = sharding.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, param_sh,
                                 transform_non_params=lambda _: repl)
  return {"params": param_sh, "opt_state": opt_sh, "step": repl}


def per_player_state_shardings(param_sh: dict, abstract_params: dict,
                               txs: dict[str, optax.GradientTransformation], mesh: Mesh):
  """state_shardings of a `per_player(txs)` train state."""
  parts = {k: state_shardings(param_sh[k], abstract_params[k], txs[k], mesh)
           for k in param_sh}
  return {"params": param_sh, "opt_state": {k: v["opt_state"] for k, v in parts.items()},
          "step": sharding.replicated(mesh)}


def spec_state_shardings(spec: ModelSpec, tx: optax.GradientTransformation, mesh: Mesh,
                         rules):
  """state_shardings of one model's train state."""
  return state_shardings(functional.param_shardings(spec, mesh, rules),
                         functional.abstract_params(spec), tx, mesh)


def abstract_state(param_sh, abstract_params, tx: optax.GradientTransformation, mesh: Mesh):
  """ShapeDtypeStructs (with shardings) of a train state: the restore target."""
  shapes = {"params": abstract_params, "opt_state": jax.eval_shape(tx.init, abstract_params),
            "step": jax.ShapeDtypeStruct((), jnp.int32)}
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, state_shardings(param_sh, abstract_params, tx, mesh))


def create_state(tx: optax.GradientTransformation, params, shardings):
  """A fresh train state around (already sharded) params."""
  init = jax.jit(lambda p: {"params": p, "opt_state": tx.init(p), "step": jnp.int32(0)},
                 out_shardings=shardings)
  return init(params)
