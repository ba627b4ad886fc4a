"""Persistent game state: Orbax CheckpointManager over both players plus JSON progress.

A game checkpoint holds
- arrays: the prover's PPO train state (policy [+ critic] params, optimizer state, step)
  and the current verifier's params;
- meta (JSON): round, phase, PPO step, KL coefficient, stopping-monitor history, the
  per-round results so far, and how many sample-pool sources exist.
Saved at every phase boundary and every `checkpoint_every` PPO steps. Orbax finalizes a
checkpoint atomically, so after a kill the latest finalized one is always whole; a
checkpoint damaged later (bit rot, a truncated file) fails its SHA-256 or Orbax's own
checks on restore and the run falls back to the one before (docs/operations.md).
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import orbax.checkpoint as ocp

from pvg_jax import checkpoint, cli, files

PHASES = ("verifier", "prover", "eval")
MANIFEST = "files.sha256.json"   # in each step directory: SHA-256 of every file, after save


class Preempted(cli.Preempted):
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


class _Manager(ocp.CheckpointManager):
  """Orbax's CheckpointManager without its own preemption check.

  The game polls JAX's preemption sync point itself (`pvg_jax.preemption`), with a counter
  that advances identically on every process. Orbax's manager asks the same sync point
  with its checkpoint step numbers, and the sync manager agrees on the step after the last
  number each process reported: after a SIGTERM that arrived during a save, that step can
  be one the game's counter has already passed, and the game then never stops (seen with
  SIGTERM to one of two processes). The game saves when it decides to, so this one does not
  look.
  """

  def reached_preemption(self, step: int) -> bool:
    del step
    return False


class GameCheckpointer:
  """Both players' arrays + Progress, SHA-256 per array, newest intact one restored.

  Each checkpoint holds three Orbax items: `arrays`, `progress` (JSON) and `integrity`
  (JSON: checkpoint.leaf_digests of the arrays, per process), and beside them MANIFEST, the
  SHA-256 of every file (written once Orbax has finalized the step; a step killed before
  its manifest is written is checked by the array digests alone). `latest` restores the newest
  checkpoint that Orbax can read and whose arrays match their digests; one that fails is
  reported in one line (which checkpoint, what failed), moved to <dir>_damaged/ (never
  deleted) and the next older one is tried. If none is left, NoIntactCheckpointError.
  """

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    self.damaged = self.directory.with_name(self.directory.name + "_damaged")
    self.max_to_keep = max_to_keep
    self._open()

  def _open(self) -> None:
    self.manager = _Manager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=self.max_to_keep,
                                                             create=True))
    self._count = self.manager.latest_step() or 0

  def save(self, arrays, progress: Progress) -> None:
    """Save and wait: a phase boundary is only passed once its checkpoint is on disk.
    Arrays are checked finite first: a diverged state is never written."""
    checkpoint.assert_finite(arrays, f"the game checkpoint at round {progress.round} phase "
                             f"{progress.phase!r} PPO step {progress.ppo_step}")
    checkpoint.ensure_room(self.directory, arrays, previous=self.directory / str(self._count))
    self._count += 1
    self.manager.save(self._count, args=ocp.args.Composite(
        arrays=ocp.args.StandardSave(arrays),
        progress=ocp.args.JsonSave(dataclasses.asdict(progress)),
        integrity=ocp.args.JsonSave({"sha256": checkpoint.leaf_digests(arrays)})))
    self.manager.wait_until_finished()
    if jax.process_index() == 0:
      files.write_manifest(self.directory / str(self._count), MANIFEST)
    checkpoint.barrier(f"game checkpoint {self._count}")

  def _restore(self, step: int, abstract_arrays):
    """(arrays, Progress) of checkpoint `step`, or a one-line reason it is not intact.

    Two checks, each agreed across processes (damage seen by one makes every process skip
    the checkpoint): first the files against the manifest written after the save (plain
    file reads, before Orbax: a read error inside Orbax on only some processes would leave
    the others waiting in its collectives), then the restored arrays against their SHA-256.
    """
    path = self.directory / str(step)
    problem = files.verify_manifest(path, MANIFEST)
    if checkpoint.any_process(problem is not None):
      return None, problem or f"{path}: damaged as read by another process"
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          arrays=ocp.args.StandardRestore(abstract_arrays),
          progress=ocp.args.JsonRestore(), integrity=ocp.args.JsonRestore()))
      progress = Progress(**restored["progress"])
      bad = checkpoint.first_mismatch(restored["arrays"], restored["integrity"]["sha256"])
      if bad is not None:
        problem = f"{path}: array {bad} does not match its SHA-256"
    except Exception as e:  # noqa: BLE001 (Orbax/TensorStore raise many types on damage)
      problem = f"{path}: unreadable ({checkpoint.first_line(e)})"
    if checkpoint.any_process(problem is not None):
      return None, problem or f"{path}: damaged as read by another process"
    return (restored["arrays"], progress), None

  def latest(self, abstract_arrays):
    """(arrays, Progress) of the newest intact checkpoint, or None if there is none."""
    moved = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      restored, problem = self._restore(step, abstract_arrays)
      if restored is not None:
        if moved:
          self.close()
          self._open()      # the manager must forget the steps moved aside
          print(f"resuming from checkpoint {self.directory / str(step)}", flush=True)
        return restored
      target = self.damaged / str(step)
      if jax.process_index() == 0:
        target = files.move_aside(self.directory / str(step), self.damaged)
      checkpoint.barrier(f"moved aside {step}")   # every process then sees the same steps
      moved.append(str(target))
      print(f"damaged checkpoint: {problem}; moved to {target}", flush=True)
    if moved:
      raise checkpoint.NoIntactCheckpointError(
          f"no intact checkpoint left in {self.directory} (damaged ones moved to "
          f"{self.damaged}); start again with a new --workdir")
    return None

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
