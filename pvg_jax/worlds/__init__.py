"""The worlds a game is played in; `config.world.name` picks one ("arith" when absent).

  arith   the synthetic grade-school-math world (pvg_jax.worlds.arith), the default
  gsm8k   GSM8K with a pretrained family's tokenizer (pvg_jax.worlds.gsm8k.world)

Both give the game the same interface (problems, prompts, sequences, the verifier's and
the other role's views, the checker). A world is built once per config and seed.
"""

from __future__ import annotations

import json

WORLDS = ("arith", "gsm8k")


def name(cfg) -> str:
  return cfg.world.get("name", "arith")


_CACHE: dict[tuple, object] = {}


def make(cfg):
  """The world of `cfg` (cached: building GSM8K's splits reads and tokenizes the data)."""
  world = name(cfg)
  key = (world, json.dumps(cfg.world.to_dict(), sort_keys=True, default=list), cfg.seed)
  if key not in _CACHE:
    if len(_CACHE) >= 8:
      _CACHE.clear()
    _CACHE[key] = _build(world, cfg)
  return _CACHE[key]


def _build(world: str, cfg):
  if world == "gsm8k":
    from pvg_jax.worlds.gsm8k.world import Gsm8kWorld
    return Gsm8kWorld(cfg.world, cfg.seed)
  if world != "arith":
    raise ValueError(f"world.name {world!r}: expected one of {WORLDS}")
  from pvg_jax.worlds.arith.world import ArithWorld
  return ArithWorld(cfg.world, cfg.seed)
