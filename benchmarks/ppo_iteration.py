"""One PPO iteration (sample + grade + score + update) of the game against google-tunix's.

    python -m benchmarks.ppo_iteration          # ours only
    pip install -e ".[bench]" && python -m benchmarks.ppo_iteration   # side by side

The shape a peer can run too: a p5m prover (d=256, 6 layers, 8 heads, ~4.8M parameters
with the default world's vocabulary), a separate critic of the same trunk, batch 64
(8 problems x 8 samples), the default world's 65-column prompts and 64 new tokens, one PPO
epoch of one minibatch (the whole batch), GAE (gamma 1, lambda 0.95), beta 0.05, Adam.
Both sides start from random weights and every row decodes all 64 tokens.

Ours is the game's own `phases.ppo_iteration`: the jitted KV-cache sampler, host-side
grading of every solution by the world's checker, then one jitted prover step (verifier
scores, reference and old log-probs, critic values, GAE, the clipped update of policy and
critic). The 8 samples of a prompt share its forward pass (`functional.predicting_states`);
the line "without the shared prompt pass" shows what that saves. Tunix's
(benchmarks/tunix_peer.py) is its PpoLearner on an RLCluster with the same
shapes; its reward is a Python function, cheaper than our verifier forward pass.
The last line is `ppo_iteration_speedup_vs_tunix=X` (tunix seconds / ours), or
`ppo_iteration_seconds=S` when tunix is not installed.
"""

from __future__ import annotations

import importlib.util

import jax
import numpy as np

from benchmarks.common import default_world, median_seconds
from pvg_jax import sharding
from pvg_jax.games import jitted, phases
from pvg_jax.models import functional
from pvg_jax.worlds.arith import world as arith_world

SIZE, D_MODEL, N_LAYERS, N_HEADS = "p5m", 256, 6, 8
GROUPS, GROUP_SIZE, NEW_TOKENS = 8, 8, 64


def benchmark_config():
  """The default config at the benchmark's shape (64 new tokens through solution_slack)."""
  cfg, world = default_world()
  cfg.world.solution_slack += NEW_TOKENS - world.layout.solution_len
  cfg.prover.size = SIZE
  p = cfg.game.ppo
  p.groups, p.group_size, p.epochs, p.minibatches = GROUPS, GROUP_SIZE, 1, 1
  p.advantages, p.role_anchor, p.gamma, p.gae_lambda, p.beta = "gae", 0.0, 1.0, 0.95, 0.05
  return cfg, arith_world.ArithWorld(cfg.world, cfg.seed)


def ours(cfg, world, share_prompts: bool = True):
  """(zero-argument PPO iteration, prompts [64, P]) with the game's functions."""
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  rules = sharding.DEFAULT_RULES
  vocab = world.tokenizer.size
  prover_spec = functional.make_spec(SIZE, vocab, ("lm",), cfg.compute_dtype)
  verifier_spec = functional.make_spec(cfg.verifier.size, vocab, ("score",), cfg.compute_dtype)
  fns = jitted.build(cfg, world, prover_spec, verifier_spec, mesh, share_prompts)
  policy = functional.init_params(prover_spec, jax.random.key(0), mesh, rules)
  verifier = functional.init_params(verifier_spec, jax.random.key(1), mesh, rules)
  holder = {"state": fns.init_prover_state({"policy": policy,
                                            "critic": fns.init_critic(jax.random.key(2))})}
  problems = np.repeat(np.arange(GROUPS), GROUP_SIZE)
  probs = world.problems("prover", problems)
  helpful = np.arange(GROUPS) % 2 == 0
  roles = np.repeat(np.where(helpful, arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY),
                    GROUP_SIZE)
  counter = iter(range(10**6))

  def iteration():
    key = jax.random.key(next(counter))
    holder["state"], *_ = phases.ppo_iteration(world, fns, holder["state"], policy, verifier,
                                               probs, roles, helpful, cfg.game.ppo.beta,
                                               False, key)
    jax.block_until_ready(holder["state"])
  return iteration, world.prompts(probs, roles), functional.count_params(prover_spec)


def main() -> None:
  cfg, world = benchmark_config()
  assert world.layout.solution_len == NEW_TOKENS, world.layout
  iteration, prompts, n_params = ours(cfg, world)
  first, seconds = median_seconds(iteration)
  print(f"pvg_jax: prover {n_params:,} parameters, batch {len(prompts)}, prompt "
        f"{prompts.shape[1]}, {NEW_TOKENS} new tokens: {seconds:.3f} s per PPO iteration "
        f"(first call {first:.1f} s, compiles included)")
  row_by_row, _, _ = ours(cfg, world, share_prompts=False)
  print(f"pvg_jax without the shared prompt pass (every row on its own): "
        f"{median_seconds(row_by_row)[1]:.3f} s")
  if importlib.util.find_spec("tunix") is None:
    print("tunix is not installed (pip install -e \".[bench]\"): no peer to compare")
    print(f"ppo_iteration_seconds={seconds:.3f}")
    return
  from benchmarks import tunix_peer
  peer = tunix_peer.ppo_iteration_fn(D_MODEL, N_LAYERS, N_HEADS, world.tokenizer.size,
                                     prompts, world.tokenizer.pad_id, NEW_TOKENS)
  peer_first, peer_seconds = median_seconds(peer)
  print(f"tunix:   the same shape: {peer_seconds:.3f} s per PPO iteration "
        f"(first call {peer_first:.1f} s)")
  print(f"ppo_iteration_speedup_vs_tunix={peer_seconds / seconds:.2f}")


if __name__ == "__main__":
  main()
