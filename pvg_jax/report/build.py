"""Write <workdir>/report/: report.md (every number, mean [95% t-interval] over seeds, and the
paired effects of effects.py), numbers.json (the per-seed values behind every table cell)
and the PNG figures.

    pvg-report --workdir runs/main          (python -m pvg_jax.report.build ...)

`--workdir` is a game workdir or an experiment directory of pvg-experiments. Runs that
have not been evaluated yet are evaluated first (cached in their evals/).
"""

from __future__ import annotations

import json
import math
import pathlib

from pvg_jax import cli
from pvg_jax.report import attacks, crossplay, data, effects, figures, styles
from pvg_jax.report import stats as stats_lib
from pvg_jax.report.data import INIT, Experiment

K_REFERENCE = {   # METHOD 1.3, Kirchner et al. 2024 (humans / GPT-4 judges, GSM)
    "helpful accuracy": "0.57, 0.60, 0.56, 0.61, 0.63, 0.63 (rounds 0-5)",
    "checker legibility": "humans 0.76 -> 0.83 (rounds 0-5)",
    "baseline": "accuracy 0.43 -> 0.85; human legibility 0.82 -> 0.73-0.74",
    "best-of-n": "~0.23 (round 0) -> ~0.52 (round 4), n ~ 600",
    "attacks": "more RL steps in later rounds",
    "flaws": "mean validity up over rounds, minimum near 0",
    "separability": "SRC ~0.5 in later rounds; CGC stays separable",
}


def _round_metrics(exp: Experiment) -> list[tuple[str, object, str, int]]:
  """(row, metric(run, round) -> float, K reference, digits) of the by-round table."""
  leg = data.legibility_entry

  def flaws(*key):
    return lambda r, i: data.get(r, "flaws", "by_round", i, *key)

  rows = [
      ("helpful accuracy (test, legibility samples)", lambda r, i: data.get(leg(r, i),
                                                                           "accuracy"),
       K_REFERENCE["helpful accuracy"], 3),
      ("helpful accuracy (test, both-role samples)", flaws("helpful_accuracy"), "", 3),
      ("sneaky accuracy (test, both-role samples)", flaws("sneaky_accuracy"), "", 3),
      ("legibility: budgeted checker", lambda r, i: data.get(leg(r, i), "checker",
                                                             "accuracy"),
       K_REFERENCE["checker legibility"], 3),
      ("  checker accuracy on correct", lambda r, i: data.get(leg(r, i), "checker",
                                                              "accuracy_on_correct"), "", 3),
      ("  checker accuracy on incorrect", lambda r, i: data.get(leg(r, i), "checker",
                                                                "accuracy_on_incorrect"), "", 3),
      ("  checker tokens to a correct verdict", lambda r, i: data.get(
          leg(r, i), "checker", "time_to_correct_verdict"), "45 s per solution", 1),
      ("  checker finished within budget", lambda r, i: data.get(leg(r, i), "checker",
                                                                 "finished"), "", 3),
      ("legibility: model-judge panel", lambda r, i: data.get(leg(r, i), "panel"), "", 3),
  ]
  for role in ("helpful", "sneaky"):      # every sample of one fixed problem set
    fixed = (lambda *key, role=role: lambda r, i: data.get(leg(r, i), "fixed", role, *key))
    rows += [
        (f"fixed problems, {role}: accuracy", fixed("accuracy"), "", 3),
        (f"fixed problems, {role}: checker balanced accuracy",
         fixed("checker", "balanced_accuracy"), "", 3),
        (f"fixed problems, {role}: checker tokens read", fixed("checker", "time"), "", 1),
        (f"fixed problems, {role}: checker over budget", fixed("checker", "over_budget"),
         "", 3),
        (f"fixed problems, {role}: panel balanced accuracy", fixed("panel"), "", 3),
    ]
  for name in figures.judge_names(exp):
    rows.append((f"  judge {name}", lambda r, i, n=name: data.get(leg(r, i), "judges", n),
                 "", 3))
    rows.append((f"  judge {name}, pairwise", lambda r, i, n=name: data.get(
        leg(r, i), "judges_pairwise", n), "", 3))
  rows += [
      ("balanced problems (legibility)", lambda r, i: data.get(leg(r, i), "problems"), "", 0),
      ("helpful solutions with all steps valid", lambda r, i: data.get(
          leg(r, i), "all_steps_valid"), "", 3),
      ("verifier pairwise accuracy (test, own prover)", lambda r, i: data.get(
          r, "summary", "initial_players", "verifier_pairwise_accuracy") if i == INIT
       else data.get(r, "summary", "rounds", i, "test_verifier_pairwise_accuracy"), "", 3),
      ("PPO steps in the round", lambda r, i: math.nan if i == INIT else data.get(
          r, "summary", "rounds", i, "ppo_steps"), "4k-8k RL steps", 0),
  ]
  ns = sorted({int(n) for r in exp.game for v in data.get(r, "best_of_n", "by_verifier",
                                                          default={}).values() for n in v})
  for n in ns:
    rows.append((f"best-of-{n} (verifier of the round)", lambda r, i, n=n: data.get(
        r, "best_of_n", "by_verifier", i, n, "fraction_correct"),
                 K_REFERENCE["best-of-n"] if n == ns[-1] else "", 3))
  for key, label in (("mean_validity", "mean step validity"),
                     ("min_validity", "min step validity (0 by construction)"),
                     ("single_flaw", "exactly one invalid step"),
                     ("first_error_position", "first-error position")):
    rows.append((f"sneaky-incorrect: {label}", flaws(key),
                 K_REFERENCE["flaws"] if key == "mean_validity" else "", 3))
  rows.append(("separability ROC-AUC", lambda r, i: data.get(r, "separability", "by_round", i,
                                                             "auc"),
               K_REFERENCE["separability"], 3))
  return rows


def _paired_cell(last: data.Stat, first: data.Stat, digits: int) -> str:
  """The per-seed difference last - first (same seeds, same order) with its t-interval; *
  where the interval excludes 0; '-' where no seed has both."""
  iv = stats_lib.paired(last.values, first.values)
  return effects.fmt_effect(iv, digits) if iv.n else "-"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
  return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
          *["| " + " | ".join(row) + " |" for row in rows]]


def write_report(workdir: str | pathlib.Path, evaluate: bool = True) -> pathlib.Path:
  """Evaluate what is missing, then write <workdir>/report/; returns report.md's path."""
  root = pathlib.Path(workdir)
  summary = root / "summary.json"
  if summary.exists() and json.loads(summary.read_text()).get("game") == "anil":
    from pvg_jax.anil import report as anil_report  # configs/anil.py's toy games
    return anil_report.write_report(root)
  first = next(iter(sorted(root.glob("seed_*/summary.json"))), summary)
  if first.exists() and json.loads(first.read_text()).get("game") == "debate":
    from pvg_jax.debate import report as debate_report  # configs/debate.py's game
    return debate_report.write_report(root, evaluate)
  evaluator = None
  if evaluate:
    from pvg_jax.evals import run as evals_run
    evaluator = evals_run.evaluate
  exp = data.load(root, evaluator)
  out = root / "report"
  out.mkdir(parents=True, exist_ok=True)
  numbers: dict = {}
  lines = [f"# Legibility-tax report: {root}", "",
           f"Game reward **{exp.reward}**, {len(exp.game)} seed(s); correctness-only "
           f"baseline: {len(exp.baseline)} seed(s); verifier-size sweep: "
           f"{', '.join(exp.sweep) or 'none'}.",
           "Cells: mean [95% Student-t interval over seeds] (a single value when there is "
           "one seed). All numbers are computed from the runs' evals/ (see "
           "`pvg_jax/evals/run.py`); K = Kirchner et al. 2024 for orientation (different "
           "task and judges).", ""]
  rounds = max((data.n_rounds(r) for r in exp.game), default=0)
  ids = [INIT, *range(rounds)]
  header = ["metric", *[data.round_label(i) for i in ids],
            f"{data.round_label(ids[-1])} - init (paired)", "K (reference)"]
  rows = []
  for name, fn, ref, digits in _round_metrics(exp):
    stats = data.by_round(exp.game, fn, rounds)
    numbers[name.strip()] = {data.round_label(i): list(s.values) for i, s in stats}
    rows.append([name, *[s.fmt(digits) for _, s in stats],
                 _paired_cell(stats[-1][1], stats[0][1], digits), ref])
  for reward in sorted({a["reward"] for r in exp.game for a in r.get("attacks", [])}):
    rows.append([f"sneaky-only attack ({reward})",
                 *[attacks.cell(exp.game, reward, i) for i in ids], "",
                 K_REFERENCE["attacks"] if reward == "src" else ""])
    for label, gap_fn in ((f"last-{attacks.TAIL}-step", attacks.last_gap),
                          ("best window", attacks.best_gap)):
      gaps = [data.stat([gap_fn(r, reward, i) for r in exp.game]) for i in ids]
      rows.append([f"  attack ({reward}): {label} {attacks.gap_label(reward)}",
                   *[g.fmt() for g in gaps], _paired_cell(gaps[-1], gaps[0], 3),
                   "closer to 0 or above: easier to exploit"])
      numbers[f"attack {reward} {label} {attacks.gap_label(reward)}"] = {
          data.round_label(i): list(g.values) for i, g in zip(ids, gaps)}
    numbers[f"attack {reward} steps"] = {
        data.round_label(i): [a["steps"] for r in exp.game for a in r.get("attacks", [])
                              if a["reward"] == reward and a["round"] == i] for i in ids}
  lines += effects.section(exp, numbers)
  lines += ["## Checkability training by round", "", *markdown_table(header, rows), ""]
  lines += crossplay.section(exp, out, numbers)
  stops = [f"seed {k}: " + ", ".join(f"r{i} {x['stop_reason']} @ {x['ppo_steps']}"
                                     for i, x in enumerate(r["summary"]["rounds"]))
           for k, r in enumerate(exp.game)]
  lines += ["Stopping: " + "; ".join(stops), ""]
  lines += styles.section(exp, out, numbers)

  if exp.baseline:
    steps = sorted({e["step"] for b in exp.baseline for e in b.get("legibility", [])
                    if e["round"] == 0})
    rows = []
    for label, (i, s) in [("init", (INIT, 0))] + [(str(s), (0, s)) for s in steps]:
      cells = []
      for key in (("accuracy",), ("checker", "accuracy"), ("panel",)):
        st = data.stat([data.get(data.legibility_entry(b, i, s), *key) for b in exp.baseline])
        numbers.setdefault(f"baseline {'/'.join(key)}", {})[label] = list(st.values)
        cells.append(st.fmt())
      rows.append([label, *cells])
    lines += ["## Correctness-only baseline over PPO steps", "",
              *markdown_table(["PPO step", "helpful accuracy", "checker legibility",
                       "panel legibility"], rows),
              "", f"K: {K_REFERENCE['baseline']}.", ""]

  if exp.sweep:
    rows = []
    for size, run in sorted(exp.sweep.items(), key=lambda kv: data.get(
        kv[1], "summary", "initial_players", "verifier_params")):
      last = data.n_rounds(run) - 1
      leg = data.legibility_entry(run, last)
      ns = sorted(int(n) for n in data.get(run, "best_of_n", "by_verifier", last, default={}))
      bon = data.get(run, "best_of_n", "by_verifier", last, ns[-1], "fraction_correct") \
          if ns else math.nan
      pair = data.get(run, "summary", "rounds", last, "verifier_heldout_pairwise_accuracy")
      cells = [size, str(data.get(run, "summary", "initial_players", "verifier_params")),
               f"{data.get(leg, 'accuracy'):.3f}", f"{data.get(leg, 'checker', 'accuracy'):.3f}",
               f"{data.get(leg, 'panel'):.3f}", f"{pair:.3f}", f"{bon:.3f}",
               attacks.cell([run], "src", last)]
      rows.append(cells)
      numbers[f"sweep {size}"] = cells
    lines += ["## Verifier-size sweep (seed 0, last round)", "",
              *markdown_table(["verifier", "params", "helpful acc", "checker leg.", "panel leg.",
                       "V held-out pair acc", "best-of-max-n", "SRC attack"], rows), ""]

  lines += ["## Figures", ""]
  made = [
      figures.legibility_tax(exp, out / "fig4_legibility_tax.png"),
      figures.dynamics(exp, out / "fig5_dynamics.png"),
      figures.attacks(exp, out / "fig6a_attacks.png"),
      figures.attack_survival(exp, out / "fig6c_attack_survival.png"),
      figures.best_of_n(exp, out / "fig6b_best_of_n.png"),
      figures.flaws(exp, out / "fig7a_flaws.png"),
      figures.accuracy_by_round(exp, out / "fig8a_accuracy_by_round.png"),
      figures.legibility_by_round(exp, out / "fig8b_legibility_by_round.png"),
      figures.separability(exp, out / "fig_separability.png"),
      figures.verifier_sizes(exp, out / "fig_verifier_size.png", _sweep_metrics()),
  ]
  lines += [f"![{p.stem}]({p.name})" for p in made if p is not None]
  lines += human_judging(root, out, numbers)
  (out / "numbers.json").write_text(json.dumps(numbers, indent=1, default=str))
  (out / "report.md").write_text("\n".join(lines) + "\n")
  return out / "report.md"


def human_judging(root: pathlib.Path, out: pathlib.Path, numbers: dict) -> list[str]:
  """A section per judging campaign with judgments (pvg-judge), analysed afresh: human
  accuracy per checkpoint beside the budgeted checker on the same solutions."""
  from pvg_jax.judging import analysis, figure
  lines = []
  for db in sorted([*root.glob("judging/*/judging.db"), *root.glob("*/judging/*/judging.db"),
                    *root.glob("seed_*/*/judging/*/judging.db")]):
    result = analysis.write(db.parent)
    if not result["judgments"]:
      continue
    name = result["campaign"]
    png = figure.human_legibility(result, out / f"fig_human_{name}.png")
    numbers[f"human {name}"] = {k: v["accuracy"] for k, v in result["checkpoints"].items()}
    excluded = ", ".join(result["excluded_judges"]) or "none"
    lines += ["", f"## Human judges: campaign {name} ({db.parent.relative_to(root)})", "",
              f"{result['judgments']} judgments by {result['judges']} judges, "
              f"{result['limit_s']:g} s per solution; excluded ({result['exclusion_rule']}): "
              f"{excluded}. Brackets: {result['interval']}.", "", *analysis.table(result),
              "", f"![{png.stem}]({png.name})"]
  return lines


def _sweep_metrics():
  def last(run, *key):
    return data.get(data.legibility_entry(run, data.n_rounds(run) - 1), *key)
  return [("helpful accuracy", lambda r: last(r, "accuracy")),
          ("checker legibility", lambda r: last(r, "checker", "accuracy")),
          ("panel legibility", lambda r: last(r, "panel")),
          ("verifier held-out pairwise acc.", lambda r: data.get(
              r, "summary", "rounds", data.n_rounds(r) - 1,
              "verifier_heldout_pairwise_accuracy"))]


def run() -> None:
  """Console-script entry point (pvg-report)."""
  from absl import flags
  flags.DEFINE_string("workdir", None, "A game workdir or a pvg-experiments directory.")
  flags.DEFINE_bool("evaluate", True, "Evaluate runs that lack evals/results.json first.")
  flags.mark_flags_as_required(["workdir"])

  def main(argv) -> None:
    del argv
    print(write_report(flags.FLAGS.workdir, flags.FLAGS.evaluate))
  cli.run_app("pvg-report", main)


if __name__ == "__main__":
  run()
