"""Model-FLOPs utilization (MFU) of the game's jitted steps, for the profiler flag.

With `profile_steps = N > 0` the game wraps its jitted functions (sampling, scoring, the
verifier step, the PPO prover step) in a `StepProfile`: calls 2..N+1 of each (call 1
compiles) are timed to completion, and at the end of round 0's prover phase a table of each
function's median wall time, its matmul FLOPs and its MFU is printed and written to
`<workdir>/profile/steps.json`, beside the jax.profiler trace of the same PPO steps.

    MFU = FLOPs per call / (seconds per call * devices * peak FLOP/s per device)

FLOPs are counted from the step's own jaxpr (`matmul_flops`): 2*M*N*K per dot_general
(batch dimensions multiplied in), scan bodies times their length, the larger branch of a
cond. They are model FLOPs in the PaLM sense (only matmuls; elementwise work, softmax and
the optimizer are not counted, recomputation would be). A while_loop's trip count is known
only at run time: its body is counted per trip, and the sampler's trips are read from its
output (the longest solution it decoded). The peak is measured in the same run: the dense
[n, n] @ [n, n] matmul on one device, in the config's compute dtype.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core

from pvg_jax import files


class Flops(NamedTuple):
  """Matmul FLOPs of a program: `fixed` outside while loops, `per_trip` in one trip of
  their bodies (summed over the program's while loops)."""

  fixed: float
  per_trip: float

  def total(self, trips: int = 0) -> float:
    return self.fixed + trips * self.per_trip


def _dot_flops(eqn) -> float:
  """2 * batch * M * N * K of one dot_general."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = eqn.params["dimension_numbers"]
  lhs, rhs = (v.aval.shape for v in eqn.invars)

  def size(shape, dims, keep: bool) -> int:
    return math.prod(s for d, s in enumerate(shape) if (d in dims) == keep)
  return (2.0 * size(lhs, lhs_batch, True) * size(lhs, lhs_contract, True)
          * size(lhs, (*lhs_contract, *lhs_batch), False)
          * size(rhs, (*rhs_contract, *rhs_batch), False))


def _subjaxprs(value):
  if isinstance(value, jax_core.ClosedJaxpr):
    yield value.jaxpr
  elif isinstance(value, jax_core.Jaxpr):
    yield value
  elif isinstance(value, (tuple, list)):
    for v in value:
      yield from _subjaxprs(v)


def matmul_flops(jaxpr) -> Flops:
  """Flops of a (Closed)Jaxpr: dot_general FLOPs, loops and branches accounted (above)."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  fixed = per_trip = 0.0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      fixed += _dot_flops(eqn)
      continue
    inner = [matmul_flops(j) for v in eqn.params.values() for j in _subjaxprs(v)]
    if not inner:
      continue
    if name == "while":
      # cond_jaxpr and body_jaxpr run once per trip (the cond once more, ignored); a
      # while loop nested in the body is counted as one trip per outer trip.
      per_trip += sum(f.total(1) for f in inner)
    elif name == "cond":
      best = max(inner, key=lambda f: f.fixed)
      fixed, per_trip = fixed + best.fixed, per_trip + best.per_trip
    else:
      times = eqn.params.get("length", 1) if name == "scan" else 1
      fixed += times * sum(f.fixed for f in inner)
      per_trip += times * sum(f.per_trip for f in inner)
  return Flops(fixed, per_trip)


def matmul_peak_flops(n: int = 2048, dtype=jnp.float32, repeats: int = 10) -> float:
  """This machine's dense-matmul FLOP/s for [n, n] @ [n, n] on one device, measured now."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(lambda a, b: a @ b)
  jax.block_until_ready(f(a, b))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(f(a, b))
    times.append(time.perf_counter() - start)
  return 2 * n**3 / float(np.median(times))


def _abstract(x):
  if isinstance(x, (jax.Array, np.ndarray, np.generic)):
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype)
  return x


def sampler_trips(samples) -> int:
  """Decode steps a sampler call ran: its while loop stops once every row emitted <eos>,
  so it ran as many trips as the longest solution (mask is True up to and incl. <eos>)."""
  return int(np.asarray(jax.device_get(samples.mask)).sum(axis=1).max())


@dataclasses.dataclass
class _Timed:
  fn: Callable
  trips: Callable | None
  calls: int = 0
  seconds: list = dataclasses.field(default_factory=list)
  trip_counts: list = dataclasses.field(default_factory=list)
  args: tuple | None = None


class StepProfile:
  """Times calls 2..steps+1 of each wrapped jitted function (each one blocking until its
  outputs are ready); the other calls pass straight through."""

  def __init__(self, steps: int):
    self.steps = steps
    self._fns: dict[str, _Timed] = {}

  def wrap(self, name: str, fn: Callable, trips: Callable | None = None) -> Callable:
    """fn timed under `name`; `trips(outputs)` gives a call's while-loop trip count."""
    timed = self._fns[name] = _Timed(fn, trips)

    def call(*args):
      timed.calls += 1
      if not 2 <= timed.calls <= self.steps + 1:
        return fn(*args)
      if timed.args is None:
        timed.args = jax.tree.map(_abstract, args)   # before a call that may donate them
      start = time.perf_counter()
      out = jax.block_until_ready(fn(*args))
      timed.seconds.append(time.perf_counter() - start)
      if trips is not None:
        timed.trip_counts.append(trips(out))
      return out

    call.lower = fn.lower
    call.trace = fn.trace
    return call

  def rows(self, peak: float, n_devices: int) -> list[dict]:
    """One row per function that was timed: calls, median seconds, GFLOP per call, MFU."""
    rows = []
    for name, t in self._fns.items():
      if not t.seconds:
        continue
      flops = matmul_flops(t.fn.trace(*t.args).jaxpr)
      per_call = [flops.total(n) for n in (t.trip_counts or [0] * len(t.seconds))]
      seconds, gflop = float(np.median(t.seconds)), float(np.median(per_call)) / 1e9
      mfu = float(np.median([f / (s * n_devices * peak)
                             for f, s in zip(per_call, t.seconds)]))
      rows.append({"step": name, "calls": len(t.seconds), "seconds": seconds,
                   "gflop": gflop, "gflop_per_s": gflop / seconds, "mfu": mfu,
                   "trips": float(np.median(t.trip_counts)) if t.trip_counts else None})
    return rows

  def report(self, path: pathlib.Path, n_devices: int, dtype) -> str | None:
    """Measure the peak, write `path` (JSON) and return the printed table; None
    when nothing was timed (e.g. a run resumed after round 0's prover phase)."""
    if not any(t.seconds for t in self._fns.values()):
      return None
    n = 2048 if jax.default_backend() == "cpu" else 8192
    peak = matmul_peak_flops(n, dtype)
    rows = self.rows(peak, n_devices)
    files.atomic_write_text(path, json.dumps(       # process 0 writes
        {"peak_flops_per_device": peak, "devices": n_devices, "dtype": str(dtype),
         "steps": rows}, indent=1))
    lines = [f"profile: MFU of the jitted steps (calls 2..{self.steps + 1}; peak "
             f"{peak / 1e9:,.0f} GFLOP/s per device, {jnp.dtype(dtype).name} [{n},{n}] "
             f"matmul, {n_devices} device(s))",
             f"{'step':<20}{'calls':>6}{'ms':>10}{'GFLOP':>10}{'GFLOP/s':>10}{'MFU':>8}"]
    lines += [f"{r['step']:<20}{r['calls']:>6}{r['seconds'] * 1e3:10.1f}{r['gflop']:10.3f}"
              f"{r['gflop_per_s']:10.1f}{r['mfu']:8.3f}" for r in rows]
    return "\n".join(lines)


def wrap_game_functions(profile: StepProfile, fns):
  """The game's GameFunctions with its jitted steps timed by `profile`."""
  names = ("sample_ppo", "sample_batch", "score", "verifier_step", "prover_step",
           "critic_warmup_step")
  wrapped = {n: profile.wrap(n, getattr(fns, n), sampler_trips if "sample" in n else None)
             for n in names if getattr(fns, n) is not None}
  return dataclasses.replace(fns, **wrapped)
