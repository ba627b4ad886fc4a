"""Metric writer: `metrics.jsonl` plus TensorBoard event files, process 0 only.

Metrics arrive as device scalars and are fetched only when written (at log steps), so the
training loop never blocks on the device between them. A non-finite value stops the run
with the phase, step and metric named. Both files are written in the calling thread and
flushed at every write: a full disk fails there, as one error, and nothing is left in a
background queue to fail again at exit.
"""

from __future__ import annotations

import json
import math
import pathlib
import socket
import struct
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


class EventFile:
  """A TensorBoard event file: `Event` protos in TFRecord framing (length, its masked
  CRC-32C, the bytes, theirs), appended and flushed by `write` in the calling thread."""

  def __init__(self, logdir: pathlib.Path):
    from tensorboardX.proto.event_pb2 import Event
    logdir.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
    self._file = (logdir / name).open("ab")
    self.write([Event(wall_time=time.time(), file_version="brain.Event:2")])

  def write(self, events: list) -> None:
    from tensorboardX.record_writer import masked_crc32c
    for event in events:
      data = event.SerializeToString()
      header = struct.pack("<Q", len(data))
      self._file.write(header + struct.pack("<I", masked_crc32c(header)) + data
                       + struct.pack("<I", masked_crc32c(data)))
    self._file.flush()

  def close(self) -> None:
    self._file.close()     # closes the file even if flushing what is left fails


class MetricWriter:
  def __init__(self, workdir: str | pathlib.Path):
    self.active = jax.process_index() == 0
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if self.active:
      self.path.parent.mkdir(parents=True, exist_ok=True)
      _drop_torn_last_line(self.path)
      self._tb = EventFile(pathlib.Path(workdir) / "tensorboard")

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
      self._write_scalars(phase, step, values)
    return values

  def _write_scalars(self, phase: str, step: int, values: dict) -> None:
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.summary import scalar
    now = time.time()
    self._tb.write([Event(wall_time=now, step=step, summary=scalar(f"{phase}/{k}", v))
                    for k, v in values.items() if math.isfinite(v)])

  def close(self) -> None:
    if self._tb is not None:
      tb, self._tb = self._tb, None
      tb.close()
