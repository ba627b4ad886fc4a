"""Frozen copies of the players that evaluations read after (or during) a game.

    <workdir>/snapshots/round_<i>/verifier         the verifier of round i (after its phase)
    <workdir>/snapshots/round_<i>/prover_<step>    the policy after <step> PPO steps of round i,
                                                   every `game.snapshot_every` steps and at
                                                   the end of the phase (its final prover)

The game checkpoint keeps only the latest state; snapshots keep the history that the
legibility-over-training curves, the attacks and best-of-n need. Each is a
`pvg_jax.checkpoint` directory (Orbax + SHA-256 metadata), written before the game
checkpoint that follows it, so a resumed game rewrites identical snapshots.
"""

from __future__ import annotations

import pathlib
import re

from pvg_jax import checkpoint

KEY = "snapshot"


def round_dir(workdir: str | pathlib.Path, round_: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "snapshots" / f"round_{round_}"


def prover_path(workdir: str | pathlib.Path, round_: int, step: int) -> pathlib.Path:
  return round_dir(workdir, round_) / f"prover_{step:05d}"


def verifier_path(workdir: str | pathlib.Path, round_: int) -> pathlib.Path:
  return round_dir(workdir, round_) / "verifier"


def save(path: pathlib.Path, params) -> None:
  checkpoint.save(path, params, KEY)


def load(path: pathlib.Path, abstract):
  """Params saved at `path`, restored into `abstract`; CheckpointError if absent/damaged."""
  return checkpoint.restore(path, abstract, KEY)[0]


def prover_steps(workdir: str | pathlib.Path, round_: int) -> list[int]:
  """PPO steps with a finished prover snapshot in round `round_`, ascending."""
  directory = round_dir(workdir, round_)
  if not directory.exists():
    return []
  steps = []
  for path in directory.iterdir():
    match = re.fullmatch(r"prover_(\d+)", path.name)
    if match and (path / "meta.json").exists():
      steps.append(int(match.group(1)))
  return sorted(steps)
