"""Named size variants, from CPU toys to accelerator-sized players.

Exact parameter counts of each variant as a prover (LM + value heads) and as a verifier
(score head), for the default vocabulary, are printed by `python -m pvg_jax.models.sizes`.
d_ff = 4 * d_model throughout.
"""

from __future__ import annotations

# name: (d_model, n_layers, n_heads)
SIZES: dict[str, tuple[int, int, int]] = {
    "v8k": (16, 1, 2),      # toy verifier (smoke-sized size sweeps)
    "v16k": (32, 1, 2),     # smallest verifier of the default world
    "v30k": (32, 2, 2),     # default verifier (~1/4 of the default prover)
    "p120k": (64, 2, 4),    # default prover on a 2-core CPU
    "p450k": (96, 4, 4),
    "p1m": (128, 4, 4),
    "p3m": (192, 6, 6),
    "p5m": (256, 6, 8),      # the PPO benchmark's prover (benchmarks/ppo_iteration.py)
    "p10m": (320, 8, 8),
    "p25m": (512, 8, 8),
    "p50m": (640, 10, 10),
    "p110m": (768, 16, 12),  # GPT-2-small width, deeper
    "p350m": (1024, 24, 16),
    "p1b": (2048, 24, 16),   # accelerator-sized provers (docs/launch.md: which slice fits)
    "p7b": (4096, 32, 32),
}


def size(name: str) -> tuple[int, int, int]:
  if name not in SIZES:
    raise ValueError(f"unknown model size {name!r}; expected one of {sorted(SIZES)}")
  return SIZES[name]


if __name__ == "__main__":
  from pvg_jax.models import functional
  for name, (d, n, h) in SIZES.items():
    counts = [functional.count_params(functional.make_spec(name, 192, heads))
              for heads in (("lm", "value"), ("score",))]
    print(f"{name:>7}: d={d:4d} layers={n:2d} heads={h:2d} "
          f"prover={counts[0]:>12,} verifier={counts[1]:>12,}")
