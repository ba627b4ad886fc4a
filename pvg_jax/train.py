"""The main job as a library call: validate the config, guard the workdir, play the game.

`train(cfg, workdir)` is what `pvg-train` (pvg_jax.main) runs; the experiment driver and the
tests call it directly. Order matters for operations (docs/operations.md): the whole config
is validated before anything is written; a finished workdir is only read (it may be
read-only); otherwise the workdir is locked (one run at a time), config.json is written
once, atomically, and SIGTERM is honoured from then on.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib

import jax

from pvg_jax import cli, files, preemption, sharding
from pvg_jax import config as config_lib
from pvg_jax.games import checkability
from pvg_jax.metrics import MetricWriter

POST_HOC = ("evals",)  # config blocks read only after the game; changing them is allowed
# where things are, not what is played: the initial players' cache is checked by its own
# keys, so an experiment directory that was moved or copied resumes
LOCATIONS = ("init_players_dir",)


def game_config_diff(saved: dict, cfg) -> list[str]:
  """Keys (dotted) where `cfg` differs from a saved config.json, post-hoc blocks aside."""
  current = json.loads(cfg.to_json_best_effort(sort_keys=True))
  legacy = {"compute_dtype": config_lib.DEFAULT_COMPUTE_DTYPE}   # runs saved before the key
  def game(c: dict) -> dict:
    out = {**legacy, **{k: v for k, v in c.items() if k not in POST_HOC + LOCATIONS}}
    if isinstance(out.get("world"), dict):
      out["world"] = config_lib.without_legacy_world_keys(out["world"])
    return out
  return sorted(_diff(game(saved), game(current)))


def read_json(path: pathlib.Path) -> dict:
  """A JSON file of the workdir; a damaged one is a UserError naming it."""
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise cli.UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno}); restore it or "
                        "use another --workdir") from None
  except UnicodeDecodeError:
    raise cli.UserError(f"{path}: not UTF-8 text; restore it or use another --workdir"
                        ) from None


def check_workdir_config(cfg, workdir: pathlib.Path, allow_change: bool) -> bool:
  """Refuse to continue a workdir created with another config (unless allowed). Returns
  whether config.json has to be (re)written: it is absent, or a change was allowed."""
  path = workdir / "config.json"
  if not path.exists():
    return True
  diff = game_config_diff(read_json(path), cfg)
  if diff and not allow_change:
    raise config_lib.ConfigError(
        f"{workdir} holds a run with a different config (keys: {', '.join(diff)}); use "
        "another --workdir, or --allow_config_change to continue it deliberately")
  return bool(diff)


def write_config(cfg, workdir: pathlib.Path) -> None:
  if jax.process_index() == 0:
    current = json.loads(cfg.to_json_best_effort(sort_keys=True))
    files.atomic_write_text(workdir / "config.json",
                            json.dumps(current, indent=1, sort_keys=True))


def _diff(a, b, prefix=""):
  for key in set(a) | set(b):
    va, vb = a.get(key), b.get(key)
    if isinstance(va, dict) and isinstance(vb, dict):
      yield from _diff(va, vb, f"{prefix}{key}.")
    elif va != vb:
      yield f"{prefix}{key}"


def game_parts(cfg):
  """(validate, game class, print_table) of the config's game: the checkability game, or
  with game_type "debate" the debate game (pvg_jax.debate). Both play the shared round
  loop (pvg_jax.games.rounds) and write the same outputs."""
  if cfg.get("game_type", "checkability") == "debate":
    from pvg_jax.debate import config as debate_config
    from pvg_jax.debate import game as debate_game
    return debate_config.validate, debate_game.DebateGame, debate_game.print_table
  return config_lib.validate, checkability.CheckabilityGame, print_table


def train(cfg, workdir: str | pathlib.Path, allow_config_change: bool = False) -> dict:
  """The main job; returns the summary it writes to <workdir>/summary.json."""
  validate, game_cls, table = game_parts(cfg)
  validate(cfg)
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise cli.UserError(f"--workdir {workdir} is a file, not a directory")
  rewrite = check_workdir_config(cfg, workdir, allow_config_change)
  if (workdir / "summary.json").exists() and not rewrite:   # finished: read, write nothing
    summary = read_json(workdir / "summary.json")
    timing_path = workdir / "timing.json"
    table(summary, read_json(timing_path) if timing_path.exists() else {})
    return summary
  workdir.mkdir(parents=True, exist_ok=True)
  lock = files.WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
  with lock, preemption.handler():
    if rewrite:
      write_config(cfg, workdir)
    mesh = sharding.make_mesh(cfg.mesh.shape)
    writer = MetricWriter(workdir)
    try:
      game = game_cls(cfg, workdir, mesh, writer)
      summary = game.run()
    finally:
      writer.close()
    checkability.write_outputs(workdir, summary, game.timing)
  table(summary, game.timing)
  return summary


def print_table(summary: dict, timing: dict) -> None:
  init = summary["initial_players"]
  init_time = timing.get("initial_players", {})
  rows = [("init", init["helpful_accuracy"], init["sneaky_accuracy"],
           init["verifier_pairwise_accuracy"], init["helpful_correct_score"],
           init["sneaky_incorrect_score"], "-", "-",
           sum(v for k, v in init_time.items() if k.endswith("seconds")))]
  for r in summary["rounds"]:
    rows.append((str(r["round"]), r["helpful_accuracy"], r["sneaky_accuracy"],
                 r["verifier_heldout_pairwise_accuracy"], r["helpful_correct_score"],
                 r["sneaky_incorrect_score"], str(r["ppo_steps"]), r["stop_reason"],
                 timing.get(r["round"], timing.get(str(r["round"]), {})).get("seconds",
                                                                           math.nan)))
  print(f"{'round':>5} {'helpful':>8} {'sneaky':>7} {'V pair':>7} {'V(h+)':>7} {'V(s-)':>7} "
        f"{'steps':>6} {'stop':<22} {'sec':>6}")
  for row in rows:
    print(f"{row[0]:>5} {row[1]:8.3f} {row[2]:7.3f} {row[3]:7.3f} {row[4]:+7.2f} "
          f"{row[5]:+7.2f} {row[6]:>6} {row[7]:<22} {row[8]:6.0f}")
