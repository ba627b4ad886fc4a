"""The host-side round loop every multi-round game shares: phases, checkpoints, resume.

    for round in range(rounds):
      for phase in game.phases:          e.g. ("verifier", "prover", "eval") or ("play", "eval")
        arrays, progress = game.run_phase(phase, round, arrays, progress, save)
        checkpoint (both players' arrays + Progress) before the next phase starts

A game supplies its phases, its fresh arrays and their abstract shapes (what a checkpoint
restores into), and `run_phase`; the loop supplies restore-or-start, the checkpoint at
every phase boundary, SIGTERM between phases (a phase polls `preemption.requested()`
itself inside long work and may `save` mid-phase) and the Preempted error naming where the
run stopped. Randomness must be a function of (seed, round, step), so a resumed game
reproduces the uninterrupted one exactly (pvg_jax.games.state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from pvg_jax import cli, preemption
from pvg_jax.games.state import GameCheckpointer, Preempted, Progress


class RoundGame(Protocol):
  phases: tuple[str, ...]

  def fresh(self) -> dict: ...          # arrays of a game that has not started

  def abstract(self) -> dict: ...       # their ShapeDtypeStructs (with shardings)

  def run_phase(self, phase: str, round_: int, arrays: dict, progress: Progress,
                save: Callable[[dict, Progress], None]) -> tuple[dict, Progress]: ...


def play(game: RoundGame, ckpt: GameCheckpointer, rounds: int,
         start: Callable[..., tuple[dict, Progress]] | None = None) -> Progress:
  """Play (or resume) `rounds` rounds of `game`; returns the final Progress (its `rounds`
  hold each round's results, as the eval phase of each game appends them). `start(arrays,
  progress, save)` runs once after restore-or-start, before the first phase (e.g. to make
  sure data the checkpoint counts exists); it returns them, changed or not."""
  saved: list[Progress] = []

  def save(arrays: dict, progress: Progress) -> None:
    ckpt.save(arrays, progress)
    saved[:] = [progress]

  restored = ckpt.latest(game.abstract())
  if restored is None:
    arrays, progress = game.fresh(), Progress(phase=game.phases[0])
  else:
    arrays, progress = restored
    saved.append(progress)
  if start is not None:
    arrays, progress = start(arrays, progress, save)
  try:
    while progress.round < rounds:
      if preemption.requested():
        save(arrays, progress)
        raise Preempted(progress.round, progress.phase, progress.ppo_step)
      arrays, progress = game.run_phase(progress.phase, progress.round, arrays, progress,
                                        save)
      i = game.phases.index(progress.phase) + 1
      progress = (dataclasses.replace(progress, phase=game.phases[i]) if i < len(game.phases)
                  else dataclasses.replace(progress, round=progress.round + 1,
                                           phase=game.phases[0]))
      save(arrays, progress)
  except cli.Preempted as e:        # a phase stopped: name the last checkpoint
    if isinstance(e, Preempted) or not saved:
      raise
    s = saved[0]
    raise Preempted(s.round, s.phase, s.ppo_step) from None
  return progress
