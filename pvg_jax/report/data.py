"""Evaluated runs -> per-seed series -> means with 95% t-intervals over seeds (stats.py).

An experiment directory is either one game workdir (its sibling `correctness/`, if
finished, is the baseline) or the layout of pvg_jax.experiments: seed_<s>/<reward>/,
seed_<s>/correctness/, sweep/<size>/. Every number here is read from the runs' evals.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Sequence

from pvg_jax.config import CONTROL_PARTS, CONTROLS
from pvg_jax.report import stats

INIT = -1


@dataclasses.dataclass
class Experiment:
  root: pathlib.Path
  game: list[dict]                 # results.json of the game, one per seed
  baseline: list[dict]             # results.json of the correctness-only baseline, per seed
  sweep: dict[str, dict]           # verifier size -> results.json of the seed-0 game
  reward: str
  controls: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
                                   # control game (config.CONTROLS) -> results.json per seed


def find_runs(root: pathlib.Path) -> tuple[list[pathlib.Path], list[pathlib.Path],
                                           dict[str, pathlib.Path]]:
  """(game workdirs, baseline workdirs, sweep workdirs by verifier size) under `root`
  (control games, find_controls, aside)."""
  seeds = sorted(root.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))
  if not seeds:
    if not (root / "config.json").exists():
      raise FileNotFoundError(f"{root} is neither a game workdir (config.json) nor an "
                              "experiment directory (seed_*/)")
    base = root.parent / "correctness"
    baseline = [base] if (base / "summary.json").exists() and base != root else []
    return [root], baseline, {}
  games, baselines = [], []
  for s in seeds:
    runs = [p for p in sorted(s.iterdir()) if (p / "config.json").exists()]
    games += [p for p in runs if p.name != "correctness" and p.name not in CONTROLS]
    baselines += [p for p in runs if p.name == "correctness"]
  if len({p.name for p in games}) > 1:
    raise ValueError(f"{root} holds games with different rewards "
                     f"({sorted({p.name for p in games})}); report one at a time")
  sweep = {p.name: p for p in sorted((root / "sweep").glob("*"))
           if (p / "config.json").exists()}
  if sweep and games:
    size = json.loads((games[0] / "config.json").read_text())["verifier"]["size"]
    sweep.setdefault(size, games[0])
  return games, baselines, sweep


def find_controls(root: pathlib.Path) -> dict[str, list[pathlib.Path]]:
  """Control game -> its workdirs, one per seed that has it (seed_<s>/<control>/)."""
  out: dict[str, list[pathlib.Path]] = {}
  for s in sorted(root.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])):
    for name in CONTROLS:
      if (s / name / "config.json").exists():
        out.setdefault(name, []).append(s / name)
  return out


def load(root: str | pathlib.Path, evaluate: Callable[..., dict] | None = None
         ) -> Experiment:
  """Every run's evaluation results: from `evaluate(workdir, parts=...)` if given (it
  reuses what is cached and current; control games get CONTROL_PARTS, as pvg-experiments
  gives them), else as last written to evals/results.json."""
  root = pathlib.Path(root)
  games, baselines, sweep = find_runs(root)

  def results(workdir: pathlib.Path, parts: tuple[str, ...] | None = None) -> dict:
    path = workdir / "evals" / "results.json"
    if evaluate is not None:           # cached parts are reused, stale ones recomputed
      return evaluate(workdir, parts=parts)
    if not path.exists():
      raise FileNotFoundError(f"{path} missing: run pvg-eval --workdir {workdir}")
    return json.loads(path.read_text())

  game = [results(w) for w in games]
  reward = game[0]["config"]["game"]["reward"] if game else "?"
  controls = {name: [results(w, CONTROL_PARTS) for w in dirs]
              for name, dirs in find_controls(root).items()}
  return Experiment(root, game, [results(w) for w in baselines],
                    {k: results(w) for k, w in sweep.items()}, reward, controls)


# -- reading one run -----------------------------------------------------------------------

def n_rounds(run: dict) -> int:
  return len(run["summary"]["rounds"])


def final_step(run: dict, round_: int) -> int:
  return 0 if round_ == INIT else int(run["summary"]["rounds"][round_]["ppo_steps"])


def legibility_entry(run: dict, round_: int, step: int | None = None,
                     part: str = "legibility") -> dict | None:
  """The legibility evaluation of a prover (default: the round's final one), or the entry
  of another per-prover part (e.g. "styles")."""
  want = (INIT, 0) if round_ == INIT else (round_, final_step(run, round_) if step is None
                                           else step)
  for e in run.get(part) or []:
    if (e["round"], e["step"]) == want:
      return e
  return None


def get(d, *path, default=math.nan):
  """d[p0][p1]... with JSON's string keys for ints; `default` where anything is missing."""
  for p in path:
    if isinstance(d, dict):
      d = d.get(str(p), d.get(p)) if not isinstance(p, str) else d.get(p)
    elif isinstance(d, list) and isinstance(p, int) and 0 <= p < len(d):
      d = d[p]
    else:
      return default
    if d is None:
      return default
  return d


# -- aggregation ---------------------------------------------------------------------------

Stat = stats.Interval


def stat(values: Sequence[float | None]) -> Stat:
  """Mean and 95% Student-t interval over seeds (nan/None ignored; stats.py says why not a
  bootstrap). numbers.json keeps each seed's value."""
  return stats.t_interval(values)


def by_round(runs: list[dict], metric: Callable[[dict, int], float | None],
             rounds: int | None = None, include_init: bool = True) -> list[tuple[int, Stat]]:
  """[(round, Stat over seeds)] for init (round -1) and rounds 0..R-1."""
  if not runs:
    return []
  rounds = rounds if rounds is not None else max(n_rounds(r) for r in runs)
  ids = ([INIT] if include_init else []) + list(range(rounds))
  return [(i, stat([metric(r, i) if i < n_rounds(r) else None for r in runs])) for i in ids]


def round_label(i: int) -> str:
  return "init" if i == INIT else str(i)
