"""Jitted supervised steps: prover SFT (next-token cross-entropy on solution tokens) and
verifier training (the losses of pvg_jax.verifier.losses). Each is a pure function
(state, batch) -> (state, metrics), built by a make_*_step factory and jitted once with
explicit shardings and the state donated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from pvg_jax import sharding
from pvg_jax.models import functional
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.verifier import losses


def sft_loss(spec: ModelSpec, params, batch):
  """Mean over solution tokens of -log pi(token | prefix). batch: tokens/kv_mask [B, T],
  loss_mask [B, S] over the last S columns (the solution)."""
  mask = batch["loss_mask"]
  logp = functional.token_logprobs(spec, params, batch["tokens"], batch["kv_mask"],
                                   mask.shape[1])
  n = jnp.maximum(mask.sum(), 1)
  loss = -jnp.where(mask, logp, 0.0).sum() / n
  return loss, {"loss": loss, "tokens": mask.sum()}


def verifier_loss(spec: ModelSpec, params, batch, loss_name: str, lam: float):
  """Verifier loss over groups. batch: tokens/kv_mask [G*K, T], correct/valid [G, K]."""
  s = functional.scores(spec, params, batch["tokens"], batch["kv_mask"])
  s = s.reshape(batch["correct"].shape)
  loss, stats = losses.LOSSES[loss_name](s, batch["correct"], batch["valid"], lam)
  return loss, {"loss": loss, **stats}


def _apply(tx, state, grads):
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
          "step": state["step"] + 1}


def make_step(loss_fn, tx: optax.GradientTransformation):
  """(state, batch) -> (state, metrics) for loss_fn(params, batch) -> (loss, metrics)."""
  def step(state, batch):
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state["params"], batch)
    metrics["grad_norm"] = optax.global_norm(grads)
    return _apply(tx, state, grads), metrics
  return step


def jit_step(step, state_sh, batch_example, mesh: Mesh, rules):
  """jax.jit with the state's shardings, the batch sharded over 'batch', state donated."""
  batch_sh = jax.tree.map(lambda x: sharding.batch_sharding(mesh, rules, x.shape),
                          batch_example)
  return sharding.jit(step, in_shardings=(state_sh, batch_sh),
                      out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)


def make_sft_step(spec: ModelSpec, tx: optax.GradientTransformation):
  return make_step(lambda p, b: sft_loss(spec, p, b), tx)


def make_verifier_step(spec: ModelSpec, tx: optax.GradientTransformation, loss_name: str,
                       lam: float):
  return make_step(lambda p, b: verifier_loss(spec, p, b, loss_name, lam), tx)
