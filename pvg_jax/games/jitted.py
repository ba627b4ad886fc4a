"""Every jitted function a checkability game uses, built once per run.

Fixed shapes everywhere (sampler batches, verifier batches, PPO batches), so round 0
compiles each function once and later rounds compile nothing.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh

from pvg_jax import sharding
from pvg_jax.models import functional, sampler
from pvg_jax.models.transformer import ModelSpec
from pvg_jax.rl import prover_step
from pvg_jax.training import state as train_state
from pvg_jax.training import steps
from pvg_jax.worlds.arith import world as arith_world


@dataclasses.dataclass
class GameFunctions:
  prover_spec: ModelSpec
  critic_spec: ModelSpec | None
  verifier_spec: ModelSpec
  ppo_tx: object
  verifier_tx: object
  ppo_shardings: dict
  verifier_shardings: dict
  sample_ppo: Callable      # (params, prompts [groups*b, P], key) -> Samples
  sample_batch: Callable    # (params, prompts [sample_batch, P], key) -> Samples
  score: Callable           # (verifier params, tokens, kv_mask) [sample_batch, T] -> [B]
  init_verifier_state: Callable  # params -> fresh verifier train state
  init_prover_state: Callable    # {"policy"[, "critic"]} params -> fresh PPO train state
  verifier_step: Callable   # (state, batch) -> (state, metrics)
  prover_step: Callable     # (state, ref, verifier, batch, beta, key) -> (...)
  critic_warmup_step: Callable | None   # the same, updating the critic only (gae)
  init_critic: Callable | None          # key -> sharded random critic params (gae)


def build(cfg: ml_collections.ConfigDict, world: arith_world.ArithWorld,
          prover_spec: ModelSpec, verifier_spec: ModelSpec, mesh: Mesh,
          share_prompts: bool = True) -> GameFunctions:
  """share_prompts=False: the prover step runs every row on its own (benchmarks)."""
  g = cfg.game
  rules = sharding.DEFAULT_RULES
  critic_spec = (dataclasses.replace(prover_spec, heads=("value",))   # the prover's shape
                 if g.ppo.advantages == "gae" else None)
  updates_per_step = g.ppo.epochs * g.ppo.minibatches   # the schedule counts PPO steps
  player_tx = train_state.make_optimizer(g.ppo, updates_per_step)
  player_txs = {"policy": player_tx, "critic": player_tx}
  ppo_tx = train_state.per_player(player_txs)
  verifier_tx = train_state.make_optimizer(g.verifier)
  ppo_param_sh = {"policy": functional.param_shardings(prover_spec, mesh, rules)}
  ppo_abstract = {"policy": functional.abstract_params(prover_spec)}
  if critic_spec is not None:
    ppo_param_sh["critic"] = functional.param_shardings(critic_spec, mesh, rules)
    ppo_abstract["critic"] = functional.abstract_params(critic_spec)
  ppo_sh = train_state.per_player_state_shardings(ppo_param_sh, ppo_abstract, player_txs, mesh)
  verifier_sh = train_state.spec_state_shardings(verifier_spec, verifier_tx, mesh, rules)
  prover_sh = functional.param_shardings(prover_spec, mesh, rules)
  verifier_param_sh = functional.param_shardings(verifier_spec, mesh, rules)
  repl = sharding.replicated(mesh)
  layout = world.layout

  def make_sampler(batch: int, temperature: float):
    prompts_sh = sharding.batch_sharding(mesh, rules, (batch, layout.prompt_len))
    return sampler.make_sampler(
        prover_spec, solution_len=layout.solution_len, eos_id=world.tokenizer.eos_id,
        pad_id=world.tokenizer.pad_id, temperature=temperature,
        in_shardings=(prover_sh, prompts_sh, repl))

  n_ppo = g.ppo.groups * g.ppo.group_size
  seq_sh = sharding.batch_sharding(mesh, rules, (g.sample_batch, layout.seq_len))
  score = sharding.jit(functools.partial(functional.scores, verifier_spec),
                       in_shardings=(verifier_param_sh, seq_sh, seq_sh), host_outputs=True)

  k = g.verifier.k
  verifier_example = {
      "tokens": jax.ShapeDtypeStruct((g.verifier.batch_size * k, layout.seq_len), "int32"),
      "kv_mask": jax.ShapeDtypeStruct((g.verifier.batch_size * k, layout.seq_len), bool),
      "correct": jax.ShapeDtypeStruct((g.verifier.batch_size, k), bool),
      "valid": jax.ShapeDtypeStruct((g.verifier.batch_size, k), bool)}
  verifier_step = steps.jit_step(
      steps.make_verifier_step(verifier_spec, verifier_tx, g.verifier.loss, g.verifier.lam),
      verifier_sh, verifier_example, mesh, rules)

  def make_step(train_policy: bool):
    return prover_step.make_prover_step(prover_spec, critic_spec, verifier_spec, ppo_tx,
                                        g.ppo, g.reward, g.format_penalty, g.ppo.groups,
                                        g.ppo.group_size, train_policy, share_prompts)
  rows = sharding.batch_sharding(mesh, rules, (n_ppo, layout.seq_len))
  flat = sharding.batch_sharding(mesh, rules, (n_ppo,))
  batch_sh = {"tokens": rows, "verifier_tokens": rows, "other_role_tokens": rows,
              "kv_mask": rows, "loss_mask": rows,
              "correct": flat, "parseable": flat, "helpful": repl}
  def jit_prover(step):
    return sharding.jit(step, in_shardings=(ppo_sh, prover_sh, verifier_param_sh, batch_sh,
                                            repl, repl),
                        out_shardings=(ppo_sh, repl, repl, repl), donate_argnums=0)

  def init_state(tx, shardings):
    return jax.jit(lambda p: {"params": p, "opt_state": tx.init(p), "step": jnp.int32(0)},
                   out_shardings=shardings)

  return GameFunctions(prover_spec, critic_spec, verifier_spec, ppo_tx, verifier_tx, ppo_sh,
                       verifier_sh, make_sampler(n_ppo, g.ppo.temperature),
                       make_sampler(g.sample_batch, 1.0), score,
                       init_state(verifier_tx, verifier_sh), init_state(ppo_tx, ppo_sh),
                       verifier_step, jit_prover(make_step(True)),
                       jit_prover(make_step(False)) if critic_spec is not None else None,
                       None if critic_spec is None else functools.partial(
                           functional.init_params, critic_spec, mesh=mesh, rules=rules))
