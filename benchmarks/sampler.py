"""Sampler throughput: KV-cache decoding vs naive decoding (full re-forward per token).

    python -m benchmarks.sampler      # from the repository root (the package import needs -m)

Default prover (p120k), default world's prompt/solution lengths, batch 64 and 256, both
decoders side by side in one run. Prints tokens/s (generated, non-pad) and solutions/s and
`sampler_speedup_vs_naive=X` (cached over naive at batch 64).

With google-tunix installed (`pip install -e ".[bench]"`), then tunix's KV-cache Sampler
against ours at the PPO benchmark's shape (benchmarks/ppo_iteration.py: p5m, batch 64,
65-column prompts, 64 new tokens, every row decoding all 64; benchmarks/tunix_peer.py),
and the last line is `sampler_speedup_vs_tunix=X` (our tokens/s over tunix's).
"""

from __future__ import annotations

import functools
import importlib.util

import jax
import numpy as np

from benchmarks.common import default_world, median_seconds, timeit
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
  if importlib.util.find_spec("tunix") is not None:
    against_tunix(world)


def against_tunix(world) -> None:
  """Ours and tunix's sampler at the PPO benchmark's shape, tokens/s in one run."""
  from benchmarks import ppo_iteration, tunix_peer
  n = ppo_iteration.NEW_TOKENS
  spec = functional.make_spec(ppo_iteration.SIZE, world.tokenizer.size, ("lm",))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  params = functional.init_params(spec, jax.random.key(0), mesh, sharding.DEFAULT_RULES)
  batch = ppo_iteration.GROUPS * ppo_iteration.GROUP_SIZE
  probs = world.problems("test", range(batch))
  prompts = world.prompts(probs, [arith_world.ROLE_HELPFUL] * batch)
  # an <eos> id the model cannot emit (beyond its real tokens): all n tokens decode
  fn = jax.jit(functools.partial(sampler.sample, spec, solution_len=n, eos_id=spec.vocab_size,
                                 pad_id=world.tokenizer.pad_id))
  seconds = timeit(fn, params, prompts, jax.random.key(1), repeats=3)
  ours = int(np.asarray(fn(params, prompts, jax.random.key(1)).mask).sum()) / seconds
  model = tunix_peer.make_model(ppo_iteration.D_MODEL, ppo_iteration.N_LAYERS,
                                ppo_iteration.N_HEADS, world.tokenizer.size)
  run = tunix_peer.sampling_fn(model, prompts, world.tokenizer.pad_id, n)
  _, seconds = median_seconds(run)
  theirs = run() / seconds
  print(f"   p5m batch {batch}, {n} new tokens: pvg_jax {ours:9.0f} tokens/s, "
        f"tunix {theirs:9.0f} tokens/s")
  print(f"sampler_speedup_vs_tunix={ours / theirs:.2f}")


if __name__ == "__main__":
  main()
