"""Sampler throughput: KV-cache decoding vs naive decoding (full re-forward per token).

    python -m benchmarks.sampler      # from the repository root (the package import needs -m)

Default prover (p120k), default world's prompt/solution lengths, batch 64 and 256, both
decoders side by side in one run. Prints tokens/s (generated, non-pad) and solutions/s;
the last line is `sampler_speedup_vs_naive=X` (cached over naive at batch 64).
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from benchmarks.common import default_world, timeit
from pvg_jax import sharding
from pvg_jax.models import functional, sampler
from pvg_jax.worlds.arith import world as arith_world


def main() -> None:
  cfg, world = default_world()
  spec = functional.make_spec(cfg.prover.size, world.tokenizer.size, ("lm",))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  params = functional.init_params(spec, jax.random.key(0), mesh, sharding.DEFAULT_RULES)
  kw = dict(solution_len=world.layout.solution_len, eos_id=world.tokenizer.eos_id,
            pad_id=world.tokenizer.pad_id)
  # An untrained model rarely emits <eos>: every row decodes all solution_len tokens, so
  # the cached sampler gets no early-exit advantage here (a worst case for the ratio).
  decoders = {"kv_cache": jax.jit(functools.partial(sampler.sample, spec, **kw)),
              "naive": jax.jit(functools.partial(sampler.naive_sample, spec, **kw))}
  speed = {}
  for batch in (64, 256):
    probs = world.problems("test", range(batch))
    prompts = world.prompts(probs, [arith_world.ROLE_HELPFUL] * batch)
    for name, fn in decoders.items():
      seconds = timeit(fn, params, prompts, jax.random.key(1), repeats=3)
      out = fn(params, prompts, jax.random.key(1))
      tokens = int(np.asarray(out.mask).sum())
      speed[name, batch] = tokens / seconds
      print(f"{name:>8} batch {batch:3d}: {tokens / seconds:9.0f} tokens/s "
            f"{batch / seconds:7.1f} solutions/s ({seconds * 1e3:.0f} ms per batch)")
  print(f"sampler_speedup_vs_naive={speed['kv_cache', 64] / speed['naive', 64]:.2f}")


if __name__ == "__main__":
  main()
