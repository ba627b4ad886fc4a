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


def make_optimizer(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW with linear warmup and cosine decay to 10%, global-norm clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, cfg.lr, warmup_steps=max(cfg.warmup_steps, 1),
      decay_steps=max(cfg.steps, cfg.warmup_steps + 1), end_value=0.1 * cfg.lr)
  return optax.chain(optax.clip_by_global_norm(cfg.grad_clip),
                     optax.adamw(schedule, b1=0.9, b2=0.98, weight_decay=cfg.weight_decay))


def state_shardings(param_sh, abstract_params, tx: optax.GradientTransformation,
                    mesh: Mesh):
  """Shardings of {"params", "opt_state", "step"} given the parameters' shardings."""
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  repl = sharding.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, param_sh,
                                 transform_non_params=lambda _: repl)
  return {"params": param_sh, "opt_state": opt_sh, "step": repl}


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
