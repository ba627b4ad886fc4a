"""Persistent game state: Orbax CheckpointManager over both players plus JSON progress.

A game checkpoint holds
- arrays: the prover's PPO train state (policy [+ critic] params, optimizer state, step)
  and the current verifier's params;
- meta (JSON): round, phase, PPO step, KL coefficient, stopping-monitor history, the
  per-round results so far, and how many sample-pool sources exist.
Saved at every phase boundary and every `checkpoint_every` PPO steps. Orbax finalizes a
checkpoint atomically, so after a kill the latest finalized one is always whole.
"""

from __future__ import annotations

import dataclasses
import pathlib

import orbax.checkpoint as ocp

PHASES = ("verifier", "prover", "eval")


class Preempted(Exception):  # noqa: N818 (a signal, not an error)
  """SIGTERM arrived; the state was checkpointed at (round, phase, PPO step)."""

  def __init__(self, round_: int, phase: str, step: int):
    super().__init__(f"SIGTERM: checkpointed round {round_} phase {phase!r} PPO step {step}; "
                     "run the same command to resume.")


@dataclasses.dataclass
class Progress:
  """Where the game is. `phase` is the next phase to run in `round`."""

  round: int = 0
  phase: str = "verifier"
  ppo_step: int = 0
  beta: float = 0.0
  monitor: dict = dataclasses.field(default_factory=dict)   # StopMonitor.state()
  rounds: list = dataclasses.field(default_factory=list)   # finished rounds' results
  current: dict = dataclasses.field(default_factory=dict)  # this round's results so far
  pool_sources: int = 0


class GameCheckpointer:
  def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                             create=True))
    self._count = self.manager.latest_step() or 0

  def save(self, arrays, progress: Progress) -> None:
    """Save and wait: a phase boundary is only passed once its checkpoint is on disk."""
    self._count += 1
    self.manager.save(self._count, args=ocp.args.Composite(
        arrays=ocp.args.StandardSave(arrays),
        progress=ocp.args.JsonSave(dataclasses.asdict(progress))))
    self.manager.wait_until_finished()

  def latest(self, abstract_arrays):
    """(arrays, Progress) of the newest finalized checkpoint, or None if there is none."""
    step = self.manager.latest_step()
    if step is None:
      return None
    restored = self.manager.restore(step, args=ocp.args.Composite(
        arrays=ocp.args.StandardRestore(abstract_arrays),
        progress=ocp.args.JsonRestore()))
    return restored["arrays"], Progress(**restored["progress"])

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
