"""SIGTERM, honoured within one step of any phase.

    with preemption.handler():          # the main job installs it once
      ...
      for step in ...:
        ...one optimizer or sampling step...
        if preemption.requested():      # checkpoint what can be, then
          raise cli.Preempted(...)      # exit 75; the same command resumes

On one process `requested()` reads a flag the SIGTERM handler sets. On several, every
process must stop at the same step or the next collective hangs, so it asks JAX's
distributed runtime (`multihost_utils.reached_preemption_sync_point`, fed by the
coordination service's preemption notice) at a counter that advances identically on all
processes (every process calls `requested()` at the same points of the program).
"""

from __future__ import annotations

import contextlib
import signal

import jax

_state = {"requested": False, "calls": 0}


def _on_sigterm(signum, frame) -> None:
  del signum, frame
  _state["requested"] = True


@contextlib.contextmanager
def handler():
  """Catch SIGTERM for the duration (only in the main thread; elsewhere a no-op). On
  several processes JAX's own preemption notifier keeps SIGTERM (a Python handler would
  replace it and the coordination service would never hear of the signal)."""
  _state.update(requested=False, calls=0)
  if jax.process_count() > 1:
    yield
    return
  try:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
  except ValueError:           # not the main thread: leave signals to the caller
    yield
    return
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
    _state.update(requested=False, calls=0)


def requested() -> bool:
  """Has SIGTERM arrived (on any process)? Poll once per step."""
  if jax.process_count() == 1:
    return _state["requested"]
  from jax.experimental import multihost_utils
  _state["calls"] += 1
  return multihost_utils.reached_preemption_sync_point(_state["calls"])


def request() -> None:
  """Act as if SIGTERM arrived (tests, and callers with their own signal sources)."""
  _state["requested"] = True
