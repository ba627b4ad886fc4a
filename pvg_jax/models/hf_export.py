"""pvg-export: a trained player of a workdir as a Hugging Face checkpoint.

    pvg-export --workdir runs/gsm8k --out exported/prover                 # last round's prover
    pvg-export --workdir runs/gsm8k --out exported/verifier --player verifier --round 0
    pvg-export ... --step 25 --dtype bfloat16

The prover is written as its family's CausalLM (the imported config.json with the trained
weights), the verifier as `<Family>ForSequenceClassification` with one label (its score
head is `score.weight`); the world's tokenizer.json goes beside them. Reads the snapshots a
game writes (pvg_jax.games.snapshots): by default the newest round's final prover, or
that round's verifier. Only players imported from a Hugging Face checkpoint can be
exported (the arith world's models are not a Hugging Face family).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil

import jax
import ml_collections

from pvg_jax import checkpoint, cli, players, sharding, worlds
from pvg_jax.games import snapshots
from pvg_jax.models import hf


def export(workdir: str | pathlib.Path, out: str | pathlib.Path, player: str = "prover",
           round_: int | None = None, step: int | None = None,
           dtype: str = "float32") -> pathlib.Path:
  """Write the chosen snapshot of `workdir` to `out`; returns the snapshot's path."""
  workdir = pathlib.Path(workdir)
  path = workdir / "config.json"
  if not path.is_file():
    raise cli.UserError(f"{workdir}: no config.json (not a pvg-train workdir)")
  cfg = ml_collections.ConfigDict(json.loads(path.read_text()))
  source = cfg[player].get("checkpoint", "")
  if not source:
    raise cli.UserError(f"{workdir}: its {player} was not imported from a Hugging Face "
                        "checkpoint, so it has no family to export as")
  rounds = sorted(int(p.name.split("_")[1]) for p in (workdir / "snapshots").glob("round_*"))
  if not rounds:
    raise cli.UserError(f"{workdir}: no snapshots yet (the game has not finished a phase)")
  round_ = rounds[-1] if round_ is None else round_
  if player == "verifier":
    snapshot = snapshots.verifier_path(workdir, round_)
  else:
    available = snapshots.prover_steps(workdir, round_)
    if not available:
      raise cli.UserError(f"{workdir}: no prover snapshot in round {round_}")
    step = available[-1] if step is None else step
    snapshot = snapshots.prover_path(workdir, round_, step)
  world = worlds.make(cfg)
  spec = dict(zip(("prover", "verifier"), players.player_specs(cfg, world)))[player]
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  try:
    params = snapshots.load(snapshot, players.sharded_abstract(spec, mesh))
  except checkpoint.CheckpointError as e:
    raise cli.UserError(f"cannot export: {e}") from None
  out = pathlib.Path(out)
  hf.save(out, spec, params, hf.read_config(source), dtype=dtype)
  if jax.process_index() == 0:
    shutil.copy(world.tokenizer.path, out / "tokenizer.json")
  return snapshot


def main() -> None:
  with cli.errors("pvg-export"):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--player", choices=("prover", "verifier"), default="prover")
    parser.add_argument("--round", type=int, default=None)
    parser.add_argument("--step", type=int, default=None)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args()
    snapshot = export(args.workdir, args.out, args.player, args.round, args.step, args.dtype)
    print(f"{snapshot} -> {args.out}")


if __name__ == "__main__":
  main()
