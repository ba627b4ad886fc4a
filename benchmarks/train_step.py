"""SFT step throughput and its fraction of this machine's f32 matmul peak.

    python benchmarks/train_step.py

Measures the dense-matmul peak ([2048,2048] @ [2048,2048], f32) in the same run, then the
jitted SFT step of the default prover on default-world batches (64 x seq_len tokens).
Model FLOPs per token = 6 * (non-embedding params) + 12 * n_layers * seq_len * d_model
(forward + backward of the matmuls and attention; the embedding gather is free). The last
line is `train_step_fraction_of_matmul_peak=Y`.
"""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.common import default_world, matmul_peak_flops, timeit
from pvg_jax import sharding
from pvg_jax.models import functional
from pvg_jax.training import state as train_state
from pvg_jax.training import steps


def main() -> None:
  cfg, world = default_world()
  spec = functional.make_spec(cfg.prover.size, world.tokenizer.size, ("lm", "value"))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  rules = sharding.DEFAULT_RULES
  peak = matmul_peak_flops()
  print(f"f32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
  tx = train_state.make_optimizer(cfg.sft)
  params = functional.init_params(spec, jax.random.key(0), mesh, rules)
  shardings = train_state.spec_state_shardings(spec, tx, mesh, rules)
  state = train_state.create_state(tx, params, shardings)
  b = world.sft_batch("prover", range(cfg.sft.batch_size), [0, 1] * (cfg.sft.batch_size // 2),
                      np.random.default_rng(0))
  batch = {"tokens": b.tokens, "kv_mask": b.kv_mask, "loss_mask": b.loss_mask}
  step = steps.jit_step(steps.make_sft_step(spec, tx), shardings, batch, mesh, rules)
  holder = {"state": state}

  def run(batch):
    holder["state"], metrics = step(holder["state"], batch)
    return metrics

  seconds = timeit(run, batch, repeats=20)
  batch_size, seq = b.tokens.shape
  d, layers = spec.d_model, spec.n_layers
  dense = 12 * d * d * layers + d * spec.vocab_size          # blocks + LM head
  flops_per_token = 6 * dense + 12 * layers * seq * d
  tokens = batch_size * seq
  achieved = flops_per_token * tokens / seconds
  real = int(b.kv_mask.sum())
  print(f"SFT step {cfg.prover.size}: {seconds * 1e3:.1f} ms, {tokens / seconds:,.0f} tokens/s "
        f"({real / seconds:,.0f} non-pad tokens/s, {real / tokens:.0%} of positions are real)")
  print(f"achieved {achieved / 1e9:.1f} GFLOP/s of model FLOPs")
  print(f"train_step_fraction_of_matmul_peak={achieved / peak:.3f}")


if __name__ == "__main__":
  main()
