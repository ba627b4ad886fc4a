"""The headline effects of the report: paired per-seed differences with t-intervals
(stats.py), for the main game, the correctness-only baseline and every control game.

All runs of one seed start from that seed's initial players, so per seed

    change      = measure(final prover of the run) - measure(initial prover)
    vs baseline = measure(final prover of the run) - measure(baseline's final prover)
    vs game     = measure(final prover of a control game) - measure(main game's final prover)

cancel what the seed's initial players contribute; the interval is taken over seeds. The
measures are those of the legibility evaluation (evals/run.py): helpful test accuracy and
each simulated judge's legibility.
"""

from __future__ import annotations

from collections.abc import Sequence

from pvg_jax.config import CONTROLS
from pvg_jax.report import data, stats
from pvg_jax.report.data import INIT, Experiment

MEASURES = (("helpful accuracy", ("accuracy",)),
            ("checker legibility", ("checker", "accuracy")),
            ("checker on correct", ("checker", "accuracy_on_correct")),
            ("panel legibility", ("panel",)),
            ("checker, fixed problems, helpful", ("fixed", "helpful", "checker",
                                                  "balanced_accuracy")),
            ("checker, fixed problems, sneaky", ("fixed", "sneaky", "checker",
                                                 "balanced_accuracy")),
            ("sneaky accuracy, fixed problems", ("fixed", "sneaky", "accuracy")))


def final_value(run: dict, key: Sequence[str]) -> float:
  """A legibility-evaluation measure of the run's final prover (last round, last step)."""
  return data.get(data.legibility_entry(run, data.n_rounds(run) - 1), *key)


def init_value(run: dict, key: Sequence[str]) -> float:
  return data.get(data.legibility_entry(run, INIT), *key)


def _by_seed(runs: list[dict]) -> dict[int, dict]:
  return {int(r["config"]["seed"]): r for r in runs}


def arms(exp: Experiment) -> dict[str, dict[int, dict]]:
  """Every run kind of the experiment -> its runs by seed (main game first)."""
  out = {f"game ({exp.reward})": _by_seed(exp.game)}
  if exp.baseline:
    out["correctness baseline"] = _by_seed(exp.baseline)
  for name in CONTROLS:
    if exp.controls.get(name):
      out[name] = _by_seed(exp.controls[name])
  return out


def effects(exp: Experiment) -> dict[str, dict[str, dict[str, stats.Interval]]]:
  """arm -> measure -> {"final", "change", "vs_baseline", "vs_game"} intervals over seeds
  (vs_game for control games only)."""
  kinds = arms(exp)
  baseline = kinds.get("correctness baseline", {})
  game = kinds[f"game ({exp.reward})"]
  out: dict = {}
  for arm, runs in kinds.items():
    seeds = sorted(runs)
    out[arm] = {}
    for name, key in MEASURES:
      final = [final_value(runs[s], key) for s in seeds]
      cell = {"final": stats.t_interval(final),
              "change": stats.paired(final, [init_value(runs[s], key) for s in seeds])}
      if baseline and arm != "correctness baseline":
        cell["vs_baseline"] = stats.paired(final, [final_value(baseline[s], key)
                                                   if s in baseline else None for s in seeds])
      if arm in CONTROLS:
        cell["vs_game"] = stats.paired(final, [final_value(game[s], key) if s in game
                                               else None for s in seeds])
      out[arm][name] = cell
  return out


def section(exp: Experiment, numbers: dict) -> list[str]:
  """Markdown lines of the paired-effects section; fills numbers["effects"]."""
  table = effects(exp)
  if not table:
    return []
  lines = ["## Paired effects (per-seed differences, 95% t-intervals over seeds)", "",
           "Each cell: mean of the per-seed differences [t-interval]; an interval that "
           "excludes 0 is marked *. `final`: the run's final prover; `change`: final prover "
           "minus the initial prover of the "
           "same seed; `vs baseline`: final prover minus the correctness-only baseline's "
           "final prover of the same seed; `vs game`: a control game's final prover minus "
           "the main game's of the same seed.", ""]
  header = ["run", "measure", "seeds", "final", "change", "vs baseline", "vs game"]
  rows = []
  for arm, cells in table.items():
    for m, _ in MEASURES:
      row = [arm, m, str(cells[m]["final"].n), cells[m]["final"].fmt()]
      for c in ("change", "vs_baseline", "vs_game"):
        iv = cells[m].get(c)
        row.append("-" if iv is None else iv.fmt(sign=True) + (" *" if iv.excludes_zero
                                                                else ""))
      rows.append(row)
  numbers["effects"] = {arm: {m: {c: list(iv.values) for c, iv in cells.items()}
                              for m, cells in by_measure.items()}
                        for arm, by_measure in table.items()}
  lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return [*lines, ""]
