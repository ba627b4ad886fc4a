"""Metric writer: `metrics.jsonl` plus TensorBoard event files, process 0 only.

Metrics arrive as device scalars and are fetched only when written (at log steps), so the
training loop never blocks on the device between them. A non-finite value stops the run
with the phase, step and metric named.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import jax
import numpy as np


class NonFiniteError(FloatingPointError):
  """A loss or metric became NaN or inf."""


def _drop_torn_last_line(path: pathlib.Path) -> None:
  """A kill -9 in the middle of an append leaves a partial last line; cut it before
  appending, so every line stays one JSON record. (A resumed run logs the steps after its
  checkpoint again: readers keep the last record of each (phase, step).)"""
  if not path.exists() or path.stat().st_size == 0:
    return
  with path.open("rb+") as f:
    data = f.read()
    if not data.endswith(b"\n"):
      f.truncate(data.rfind(b"\n") + 1)


class MetricWriter:
  def __init__(self, workdir: str | pathlib.Path):
    self.active = jax.process_index() == 0
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if self.active:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      _drop_torn_last_line(self.path)
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

  def write(self, phase: str, step: int, metrics: dict, stats: dict | None = None) -> dict:
    """Append `metrics` (losses etc., device arrays ok: fetched here, must be finite) and
    `stats` (host statistics, NaN allowed where undefined, written as null)."""
    values = {k: float(np.asarray(v)) for k, v in jax.device_get(metrics).items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
      raise NonFiniteError(f"non-finite {', '.join(bad)} in phase {phase!r} at step {step}")
    values.update({k: float(v) for k, v in (stats or {}).items()})
    if self.active:
      record = {k: (v if math.isfinite(v) else None) for k, v in values.items()}
      with self.path.open("a") as f:
        f.write(json.dumps({"phase": phase, "step": step, "time": time.time(), **record})
                + "\n")
      for k, v in values.items():
        if math.isfinite(v):
          self._tb.add_scalar(f"{phase}/{k}", v, step)
    return values

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
