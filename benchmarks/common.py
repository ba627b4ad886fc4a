"""Shared set-up of the benchmarks: the default config's world and models."""

from __future__ import annotations

import time

import jax
import numpy as np

from configs import arith
from pvg_jax.worlds.arith import world as arith_world


def default_world() -> tuple:
  cfg = arith.get_config("")
  return cfg, arith_world.ArithWorld(cfg.world, cfg.seed)


def timeit(fn, *args, repeats: int = 5) -> float:
  """Median wall seconds of fn(*args) after one warm-up (compile) call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def median_seconds(fn, repeats: int = 3) -> tuple[float, float]:
  """(first call's seconds, median of `repeats` further calls); fn blocks on its output."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))
