r"""The learning fixes of docs/learning_fixes.md undone, one at a time or all together, in
the world of the reproduction (configs/arith.py:terse): the ablation in docs/results.md.

    pvg-train --config configs/ablation.py:anchor --workdir runs/ablation/anchor \
      --config.init_players_dir=runs/terse/seed_0/init_players

(sharing the seed's initial players makes the run comparable with that seed's SRC game).

Options (comma-separated; each undoes one fix as closely as the fixed code allows):
    schedule   the PPO learning rate 4x too fast: warmup and cosine decay over a quarter of
               the step budget, then 10% of lr for the rest. Before the fix the schedule
               counted optimizer updates (epochs x minibatches = 4 per PPO step) against a
               budget given in PPO steps; here it is the same curve, written in PPO steps
               (warmup rounded up to whole steps)
    critic     GAE advantages with a critic that starts every round random
               (critic_warmup_steps 0). Before the fix the critic was a value head on the
               prover's trunk; the code keeps only a separate critic, so this undoes the
               fitting, not the sharing
    anchor     no role anchor: sneaky training may move the helpful role
    verifier   no generator pairs replayed in the verifier phase (half of fix 10; the fresh
               balanced draw per step stays)
    all        all of the above
    smoke      the smoke-sized terse world (tests)
"""

import importlib.util
import math
import pathlib

import ml_collections

FIXES = ("schedule", "critic", "anchor", "verifier")


def undo(c: ml_collections.ConfigDict, fix: str) -> None:
  """Undo learning fix `fix` of FIXES in the resolved config `c`, in place."""
  pg = c.game.ppo
  if fix == "schedule":
    updates = pg.epochs * pg.minibatches
    pg.steps = max(pg.max_steps // updates, 1)
    pg.warmup_steps = math.ceil(pg.warmup_steps / updates)
  elif fix == "critic":
    pg.advantages, pg.critic_warmup_steps = "gae", 0
  elif fix == "anchor":
    pg.role_anchor = 0.0
  elif fix == "verifier":
    c.game.verifier.generator_share = 0.0
  else:
    raise ValueError(f"unknown fix {fix!r}; expected one of {FIXES}")


def _arith_config(arg: str) -> ml_collections.ConfigDict:
  """configs/arith.py, loaded by path (config files are loaded by path, not as a package)."""
  spec = importlib.util.spec_from_file_location(
      "pvg_arith_config", pathlib.Path(__file__).resolve().parent / "arith.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """arg: comma-separated fixes to undo (FIXES or "all"), optionally with "smoke"."""
  options = [a for a in arg.split(",") if a]
  unknown = [a for a in options if a not in (*FIXES, "all", "smoke")]
  fixes = FIXES if "all" in options else tuple(a for a in options if a in FIXES)
  if unknown or not fixes:
    raise ValueError(f"configs/ablation.py:{arg}: name the fixes to undo, of {FIXES} or "
                     "'all' (and optionally 'smoke')")
  base = _arith_config(",".join(["terse", *(["smoke"] if "smoke" in options else [])]))
  # resolved: game.ppo.steps is a reference to max_steps in arith.py, and setting it
  # there would move the step budget too
  c = ml_collections.ConfigDict(base.to_dict())
  for fix in fixes:
    undo(c, fix)
  return c.lock()
