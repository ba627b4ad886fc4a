"""Multi-seed experiments and the verifier-size sweep, each one command.

    pvg-experiments --config configs/arith.py --workdir runs/main --seeds 3
    pvg-experiments --config configs/arith.py --workdir runs/main --sweep v16k,v30k,p120k

lays out (and resumes) its runs as

    <workdir>/seed_<s>/init_players/      initial players and judges, shared by the seed's runs
    <workdir>/seed_<s>/<reward>/          the game (config's reward, SRC by default)
    <workdir>/seed_<s>/correctness/       the correctness-only baseline (same initial players)
    <workdir>/seed_<s>/<control>/         with --controls: control games (config.CONTROLS:
                                          cgc, oracle_verifier, no_sneaky, frozen_verifier)
    <workdir>/sweep/<verifier size>/      the game of seed 0 with another verifier size (the
                                          config's own size is seed_0/<reward>)

then evaluates every run (pvg_jax.evals.run, cached) and writes the report with 95% t-intervals
over seeds (pvg_jax.report). Seeds run one after another: each game's host loop (the
Python step checker grades every batch) leaves little to gain from vmapping seeds on a CPU.
"""

from __future__ import annotations

import pathlib

import ml_collections
from absl import flags, logging
from ml_collections import config_flags

from pvg_jax import cli
from pvg_jax import config as config_lib
from pvg_jax import train as train_lib
from pvg_jax.evals import run as evals_run

BASELINE = "correctness"
CONTROL_PARTS = config_lib.CONTROL_PARTS


def seed_dir(root: pathlib.Path, seed: int) -> pathlib.Path:
  return root / f"seed_{seed}"


def sweep_dir(root: pathlib.Path, size: str) -> pathlib.Path:
  return root / "sweep" / size


def run_config(cfg: ml_collections.ConfigDict, root: pathlib.Path, seed: int,
               reward: str | None = None, verifier_size: str | None = None,
               control: str | None = None) -> ml_collections.ConfigDict:
  """The config of one run: `cfg` with the seed, the shared initial-player directory, and
  optionally another reward (the baseline: one long run), verifier size or control game."""
  out = ml_collections.ConfigDict(cfg.to_dict())
  out.seed = seed
  out.init_players_dir = str(seed_dir(root, seed) / "init_players")
  if reward == BASELINE and cfg.game.reward != BASELINE:
    config_lib.as_baseline(out)
  if control is not None:
    config_lib.as_control(out, control)
  if verifier_size is not None:
    out.verifier.size = verifier_size
  return out


def _train_and_evaluate(cfg, workdir: pathlib.Path, parts: tuple[str, ...] | None = None
                        ) -> None:
  if not (workdir / "summary.json").exists():
    train_lib.train(cfg, workdir)
  if _is_debate(cfg):
    from pvg_jax.debate import evaluate as debate_evaluate
    debate_evaluate.evaluate(cfg, workdir)
  else:
    evals_run.evaluate(workdir, cfg, parts)


def _is_debate(cfg) -> bool:
  return cfg.get("game_type") == "debate"


def seeds(cfg: ml_collections.ConfigDict, root: pathlib.Path, n_seeds: int,
          baseline: bool = True, controls: tuple[str, ...] = (),
          control_parts: tuple[str, ...] | None = CONTROL_PARTS,
          parts: tuple[str, ...] | None = None) -> list[pathlib.Path]:
  """Games (baselines, control games) for seeds 0..n-1, each evaluated (control games with
  `control_parts` only); returns their workdirs. A seed's runs share its initial players.
  `parts` (default: all that apply) restricts every run's evaluations, e.g. to run all the
  games and their cheap evaluations before the attacks."""
  for name in controls:
    if name not in config_lib.CONTROLS:
      raise cli.UserError(f"--controls: unknown {name!r}; choose from "
                          f"{sorted(config_lib.CONTROLS)}")
  evals_run.check_parts(parts)     # before any game is trained

  def only(applicable: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if parts is None:
      return applicable
    return tuple(p for p in (applicable or evals_run.PARTS) if p in parts)

  done = []
  if _is_debate(cfg):               # one game per seed: no reward baseline or controls
    if controls:
      raise cli.UserError("--controls: the debate game has no control games")
    for seed in range(n_seeds):
      workdir = seed_dir(root, seed)
      logging.warning("seed %d: debate in %s", seed, workdir)
      _train_and_evaluate(run_config(cfg, root, seed), workdir)
      done.append(workdir)
    return done
  for seed in range(n_seeds):
    base_parts = only(evals_run.BASELINE_PARTS)
    runs = [(cfg.game.reward, run_config(cfg, root, seed),
             base_parts if cfg.game.reward == BASELINE else only(None))]
    if baseline and cfg.game.reward != BASELINE:
      runs.append((BASELINE, run_config(cfg, root, seed, BASELINE), base_parts))
    runs += [(name, run_config(cfg, root, seed, control=name), only(control_parts))
             for name in controls]
    for name, run_cfg, run_parts in runs:
      workdir = seed_dir(root, seed) / name
      logging.warning("seed %d: %s in %s", seed, name, workdir)
      _train_and_evaluate(run_cfg, workdir, run_parts)
      done.append(workdir)
  return done


def sweep(cfg: ml_collections.ConfigDict, root: pathlib.Path, sizes: list[str]
          ) -> list[pathlib.Path]:
  """The seed-0 game with each verifier size (METHOD 1.3 item 9), each evaluated."""
  done = []
  for size in sizes:
    workdir = (seed_dir(root, 0) / cfg.game.reward if size == cfg.verifier.size
               else sweep_dir(root, size))
    _train_and_evaluate(run_config(cfg, root, 0, verifier_size=size), workdir)
    done.append(workdir)
  return done


def main(argv) -> None:
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {argv[1:]}")
  from pvg_jax.report import build as report_build
  logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  root, cfg = pathlib.Path(f.workdir), f.config
  if f.seeds:
    seeds(cfg, root, f.seeds, f.baseline, tuple(f.controls),
          parts=tuple(f.parts) if f.parts else None)
  if f.sweep:
    sweep(cfg, root, f.sweep)
  if f.report:
    print(f"report: {report_build.write_report(root)}")


def run() -> None:
  """Console-script entry point (pvg-experiments). Flags are defined here, not at import,
  so the module can be imported next to other command-line modules."""
  config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                  lock_config=False)
  flags.DEFINE_string("workdir", None, "Root directory of the experiment.")
  flags.DEFINE_integer("seeds", 3, "Seeds of the main game (0 to skip).")
  flags.DEFINE_bool("baseline", True, "Also run the correctness-only baseline.")
  flags.DEFINE_list("controls", [], "Control games per seed, of "
                    f"{sorted(config_lib.CONTROLS)} (e.g. all of them, comma-separated).")
  flags.DEFINE_list("parts", [], "Evaluations to run per game (default: all that apply; "
                    "the others can follow in a later call, their results are cached).")
  flags.DEFINE_list("sweep", [], "Verifier sizes for the size sweep (seed 0).")
  flags.DEFINE_bool("report", True, "Write <workdir>/report/ at the end.")
  flags.mark_flags_as_required(["config", "workdir"])
  cli.run_app("pvg-experiments", main)


if __name__ == "__main__":
  run()
