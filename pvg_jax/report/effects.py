"""The headline effects of the report: paired per-seed differences with t-intervals
(stats.py), for the main game, the correctness-only baseline and every control game.

All runs of one seed start from that seed's initial players, so per seed

    change      = measure(final prover of the run) - measure(initial prover)
    vs baseline = measure(final prover of the run) - measure(baseline's final prover)
    vs game     = measure(final prover of a control game) - measure(main game's final prover)

cancel what the seed's initial players contribute; the interval is taken over seeds. The
measures are those of the legibility evaluation (evals/run.py): helpful test accuracy and
each simulated judge's legibility.

The verifier side (`verifier_effects`) pairs the same way, with the run's own start as the
reference: cross-play cells (evals/run.py crossplay: verifier V_j on prover P_i's samples)
minus the (P init, V init) cell of the same run, so a row with the verifier fixed at V_init
isolates the prover's change and a row on the initial prover's samples the verifier's; and
the SRC attack's best-window gap and steps to exploit (report/attacks.py) on the last
round's verifier minus those on V_init.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pvg_jax.config import CONTROLS
from pvg_jax.report import attacks, data, stats
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


FINAL = "final"      # the run's last round, in VERIFIER_MEASURES
VERIFIER_MEASURES = (   # (name, cross-play matrix, prover, verifier)
    ("sneaky fool rate, V init fixed", "sneaky_fools", FINAL, INIT),
    ("sneaky fool rate, as played", "sneaky_fools", FINAL, FINAL),
    ("pairwise, P init fixed", "pairwise", INIT, FINAL),
    ("pairwise, as played", "pairwise", FINAL, FINAL),
)
ATTACK_MEASURE = "SRC attack best-window gap"
ATTACK_STEPS = "SRC attack steps to exploit (not found: budget)"   # right-censored


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


def crossplay_value(run: dict, key: str, prover: int | str, verifier: int | str) -> float:
  """Cross-play cell `key` (pairwise | sneaky_fools) of verifier `verifier` on prover
  `prover`'s samples; FINAL stands for the run's last round."""
  last = data.n_rounds(run) - 1
  prover, verifier = (last if x == FINAL else x for x in (prover, verifier))
  verifiers = data.get(run, "crossplay", "verifiers", default=[])
  if verifier not in verifiers:
    return math.nan
  return data.get(run, "crossplay", "provers", prover, key, verifiers.index(verifier))


def verifier_effects(exp: Experiment) -> dict[str, dict[str, dict[str, stats.Interval]]]:
  """arm -> measure -> {"start", "final", "change", "vs_game"}: the cross-play measures of
  VERIFIER_MEASURES and the SRC attack gap, for every arm with cross-play (the baseline has
  none); "start" is the (P init, V init) cell, "change" = final - start paired by seed."""
  kinds = {arm: runs for arm, runs in arms(exp).items()
           if any("crossplay" in r or "attacks" in r for r in runs.values())}
  game = kinds.get(f"game ({exp.reward})", {})
  measures = [(name, lambda r, k=key, p=prover, v=verifier: crossplay_value(r, k, p, v),
               lambda r, k=key: crossplay_value(r, k, INIT, INIT))
              for name, key, prover, verifier in VERIFIER_MEASURES]
  for name, fn in ((ATTACK_MEASURE, attacks.best_gap),
                   (ATTACK_STEPS, attacks.steps_or_budget)):
    measures.append((name, lambda r, f=fn: f(r, "src", data.n_rounds(r) - 1),
                     lambda r, f=fn: f(r, "src", INIT)))
  out: dict = {}
  for arm, runs in kinds.items():
    seeds = sorted(runs)
    out[arm] = {}
    for name, final_fn, start_fn in measures:
      final = [final_fn(runs[s]) for s in seeds]
      if not any(math.isfinite(v) for v in final):
        continue
      start = [start_fn(runs[s]) for s in seeds]
      cell = {"start": stats.t_interval(start), "final": stats.t_interval(final),
              "change": stats.paired(final, start)}
      if arm in CONTROLS:
        cell["vs_game"] = stats.paired(final, [final_fn(game[s]) if s in game else None
                                               for s in seeds])
      out[arm][name] = cell
  return out


def fmt_effect(iv: stats.Interval | None, digits: int = 3) -> str:
  """A paired effect as the tables write it: '+m [lo, hi]', * where it excludes 0."""
  if iv is None:
    return "-"
  return iv.fmt(digits, sign=True) + (" *" if iv.excludes_zero else "")


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
      rows.append(row + [fmt_effect(cells[m].get(c)) for c in ("change", "vs_baseline", "vs_game")])
  numbers["effects"] = {arm: {m: {c: list(iv.values) for c, iv in cells.items()}
                              for m, cells in by_measure.items()}
                        for arm, by_measure in table.items()}
  lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return [*lines, "", *_verifier_section(exp, numbers)]


def _verifier_section(exp: Experiment, numbers: dict) -> list[str]:
  table = verifier_effects(exp)
  if not any(table.values()):
    return []
  lines = ["**Verifier side.** `start`: the (initial prover, V init) cross-play cell; "
           "`final`: the named cell with the last round's prover and/or verifier; `change`: "
           "final - start per seed. With V init fixed only the prover moved; on the "
           "initial prover's samples only the verifier. Attack gap: the SRC attack's "
           "best-window incorrect score - target on the last round's verifier (start: on V "
           "init); higher is easier to exploit. Steps to exploit count an attack not found "
           "within its budget as the budget, a lower bound: where the attack on V init was "
           "not found either, the difference is unknown, not 0.", ""]
  header = ["run", "measure", "seeds", "start", "final", "change", "vs game"]
  lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for arm, cells in table.items():
    for m, cell in cells.items():
      digits = 1 if m == ATTACK_STEPS else 3
      lines.append("| " + " | ".join([arm, m, str(cell["final"].n), cell["start"].fmt(digits),
                                      cell["final"].fmt(digits), fmt_effect(cell["change"], digits),
                                      fmt_effect(cell.get("vs_game"), digits)]) + " |")
  numbers["verifier effects"] = {arm: {m: {c: list(iv.values) for c, iv in cells.items()}
                                       for m, cells in by_measure.items()}
                                 for arm, by_measure in table.items()}
  return [*lines, ""]
