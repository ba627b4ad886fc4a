"""SFT step throughput and its fraction of this machine's f32 matmul peak.

    python -m benchmarks.train_step      # from the repository root (the package import needs -m)

Measures the dense-matmul peak ([2048,2048] @ [2048,2048], f32) in the same run, then the
jitted SFT step of the default prover on default-world batches (64 x seq_len tokens).
Model FLOPs of a step (forward + backward = 3x forward): per position 6 * 12 * d^2 *
n_layers (block matmuls) + 12 * n_layers * seq_len * d (attention scores and mixing), plus
6 * d * vocab per solution position (the LM head only runs there); the embedding gather is
free. Padding positions are computed too and counted as work done. The last line is
`train_step_fraction_of_matmul_peak=Y`.
"""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.common import default_world, timeit
from pvg_jax import profiling, sharding
from pvg_jax.models import functional
from pvg_jax.training import state as train_state
from pvg_jax.training import steps


def measure(cfg, world, size: str, peak: float, compute_dtype: str = "float32") -> float:
  """Seconds per SFT step and fraction of `peak` for prover size `size`."""
  spec = functional.make_spec(size, world.tokenizer.size, ("lm",), compute_dtype)
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  rules = sharding.DEFAULT_RULES
  tx = train_state.make_optimizer(cfg.sft)
  params = functional.init_params(spec, jax.random.key(0), mesh, rules)
  shardings = train_state.spec_state_shardings(spec, tx, mesh, rules)
  holder = {"state": train_state.create_state(tx, params, shardings)}
  b = world.sft_batch("prover", range(cfg.sft.batch_size), [0, 1] * (cfg.sft.batch_size // 2),
                      np.random.default_rng(0))
  batch = {"tokens": b.tokens, "kv_mask": b.kv_mask, "loss_mask": b.loss_mask}
  step = steps.jit_step(steps.make_sft_step(spec, tx), shardings, batch, mesh, rules)

  def run(batch):
    holder["state"], metrics = step(holder["state"], batch)
    return metrics

  seconds = timeit(run, batch, repeats=10)
  batch_size, seq = b.tokens.shape
  solution = b.loss_mask.shape[1]
  d, layers = spec.d_model, spec.n_layers
  flops = batch_size * (seq * (6 * 12 * d * d * layers + 12 * layers * seq * d)
                        + solution * 6 * d * spec.vocab_size)
  tokens, real = batch_size * seq, int(b.kv_mask.sum())
  print(f"SFT step {size:>6} {compute_dtype:>8}: {seconds * 1e3:7.1f} ms, "
        f"{tokens / seconds:9,.0f} tokens/s "
        f"({real / seconds:,.0f} non-pad, {real / tokens:.0%} of positions real), "
        f"{flops / seconds / 1e9:6.1f} GFLOP/s = {flops / seconds / peak:.3f} of peak")
  return flops / seconds / peak


def main() -> None:
  cfg, world = default_world()
  peak = profiling.matmul_peak_flops()
  print(f"f32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
  # A wider model shows how much of the gap is the default's tiny matmuls.
  measure(cfg, world, "p3m", peak)
  # bf16 compute on f32 master weights (config compute_dtype); the fraction is still of the
  # f32 peak. XLA:CPU has no native bf16 matmul on most CPUs, so this shows the cost of
  # the option here; accelerators are where it pays.
  measure(cfg, world, "p3m", peak, "bfloat16")
  fraction = measure(cfg, world, cfg.prover.size, peak)
  print(f"train_step_fraction_of_matmul_peak={fraction:.3f}")


if __name__ == "__main__":
  main()
