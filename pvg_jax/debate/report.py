"""The debate report: <root>/report/report.md and three figures from the seeds' games
(<root>/seed_<s>/, each with summary.json and evals/tournament.json; `pvg-report --workdir
<root>` dispatches here when the seeds are debate games).

  fig_debate_protocols.png  judge accuracy of every protocol over rounds (init = initial
                            players), mean and 95% t-interval over seeds
  fig_debate_elo.png        judge accuracy against the debater's Elo, debate and single
                            consultancy, every seed's checkpoints, a least-squares line each
  fig_debate_quotes.png     share of verified quotes for the right and the wrong side

Intervals are Student-t over seeds; differences between protocols are paired by seed (the
same initial players, questions and judges' starting points).
"""

from __future__ import annotations

import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pvg_jax.debate.game import PROTOCOLS  # noqa: E402
from pvg_jax.report import stats  # noqa: E402
from pvg_jax.report.build import markdown_table  # noqa: E402
from pvg_jax.train import read_json  # noqa: E402

# published orderings, as reported (different tasks, judges and debater training)
PUBLISHED = {
    "Arnesen et al. 2024 (QuALITY-HARD)": {"debate": 0.77, "double_consultancy": 0.75,
                                           "ensembled_consultancy": 0.72,
                                           "single_consultancy": 0.68},
    "Khan et al. 2024 (LLM judges, best-of-n)": {"debate": 0.76, "single_consultancy": 0.54,
                                                 "blind": 0.48}}
COLORS = dict(zip(PROTOCOLS, ("tab:blue", "tab:purple", "tab:orange", "tab:red", "tab:green",
                              "tab:gray")))


def load(root: pathlib.Path, evaluate: bool = False) -> list[dict]:
  """Every finished seed (<root>/seed_<s>/, or <root> itself when it is one game):
  {"seed", "summary", "tournament" (or None)}; evaluate=True runs missing tournaments."""
  dirs = ([root] if (root / "summary.json").exists() else
          sorted(root.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])))
  out = []
  for d in dirs:
    if not (d / "summary.json").exists():
      continue
    if evaluate:
      from pvg_jax.debate import evaluate as debate_evaluate
      from pvg_jax.evals.run import load_config
      debate_evaluate.evaluate(load_config(d), d)
    t = d / "evals" / "tournament.json"
    out.append({"seed": read_json(d / "config.json")["seed"],
                "summary": read_json(d / "summary.json"),
                "tournament": read_json(t) if t.exists() else None})
  if not out:
    raise FileNotFoundError(f"{root}: no seed_<s>/summary.json of a finished debate game")
  return out


def _rows(seed: dict) -> list[dict]:
  s = seed["summary"]
  return [s["initial_players"], *s["rounds"]]


def _labels(n: int) -> list[str]:
  return ["init", *[str(r) for r in range(n - 1)]]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
  return [*markdown_table(header, rows), ""]


def protocol_table(seeds: list[dict]) -> tuple[list[str], dict]:
  n = min(len(_rows(s)) for s in seeds)
  numbers, rows = {}, []
  for p in PROTOCOLS:
    cells = [stats.t_interval([_rows(s)[i][f"{p}_accuracy"] for s in seeds]) for i in range(n)]
    numbers[p] = [list(c.values) for c in cells]
    rows.append([p.replace("_", " "), *[c.fmt() for c in cells]])
  return _table(["protocol", *_labels(n)], rows), numbers


def paired_table(seeds: list[dict]) -> list[str]:
  """Final round: debate minus each other protocol, paired by seed; and each protocol's
  change from the initial players."""
  rows = []
  for p in PROTOCOLS:
    final = [_rows(s)[-1][f"{p}_accuracy"] for s in seeds]
    init = [_rows(s)[0][f"{p}_accuracy"] for s in seeds]
    debate = [_rows(s)[-1]["debate_accuracy"] for s in seeds]
    vs = "-" if p == "debate" else _star(stats.paired(debate, final))
    rows.append([p.replace("_", " "), _star(stats.paired(final, init)), vs])
  return _table(["protocol", "final - init", "debate - protocol (final)"], rows)


def _star(i: stats.Interval) -> str:
  return i.fmt(sign=True) + (" *" if i.excludes_zero else "")


def elo_table(seeds: list[dict]) -> list[str]:
  done = [s for s in seeds if s["tournament"]]
  if not done:
    return ["(no tournament yet: run `pvg-eval --workdir <seed dir>`)", ""]
  deb = [s["tournament"]["slope_debate_per_100_elo"] for s in done]
  con = [s["tournament"]["slope_consultancy_per_100_elo"] for s in done]
  spread = [np.ptp([p["elo"] for p in s["tournament"]["players"]]) for s in done]
  return _table(["measure", "value [95% t-interval over seeds]"], [
      ["debate accuracy per 100 Elo", _star(stats.t_interval(deb))],
      ["consultancy accuracy per 100 Elo", _star(stats.t_interval(con))],
      ["debate slope - consultancy slope (paired)", _star(stats.paired(deb, con))],
      ["right option's side wins (all tournament debates)", stats.t_interval(
          [s["tournament"]["correct_side_win_rate"] for s in done]).fmt()],
      ["Elo range of the checkpoints", stats.t_interval(spread).fmt(0)]])


def fig_protocols(seeds: list[dict], out: pathlib.Path) -> pathlib.Path:
  n = min(len(_rows(s)) for s in seeds)
  fig, ax = plt.subplots(figsize=(7, 4))
  for k, p in enumerate(PROTOCOLS):
    cells = [stats.t_interval([_rows(s)[i][f"{p}_accuracy"] for s in seeds]) for i in range(n)]
    x = np.arange(n) + 0.04 * (k - len(PROTOCOLS) / 2)
    mean = np.array([c.mean for c in cells])
    err = np.nan_to_num(np.array([[c.mean - c.low, c.high - c.mean] for c in cells]).T)
    ax.errorbar(x, mean, yerr=err, marker="o", capsize=3, color=COLORS[p],
                label=p.replace("_", " "))
  ax.axhline(0.5, color="black", lw=0.8, ls=":")
  ax.set_xticks(range(n), _labels(n))
  ax.set_xlabel("round (init = initial players)")
  ax.set_ylabel("judge accuracy (held-out questions)")
  ax.set_title(f"Judge accuracy per protocol ({len(seeds)} seeds, 95% t-intervals)")
  ax.legend(fontsize=7, ncol=2)
  return _save(fig, out / "fig_debate_protocols.png")


def fig_elo(seeds: list[dict], out: pathlib.Path) -> pathlib.Path | None:
  done = [s for s in seeds if s["tournament"]]
  if not done:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  for key, color, label in (("debate_accuracy", "tab:blue", "debate"),
                            ("consultancy_accuracy", "tab:red", "single consultancy")):
    x = np.concatenate([[p["elo"] for p in s["tournament"]["players"]] for s in done])
    y = np.concatenate([[p[key] for p in s["tournament"]["players"]] for s in done])
    ax.scatter(x, y, s=18, color=color, alpha=0.7, label=label)
    if np.ptp(x) > 0:
      fit = np.polyfit(x, y, 1)
      xs = np.linspace(x.min(), x.max(), 10)
      ax.plot(xs, np.polyval(fit, xs), color=color, lw=1)
  ax.axhline(0.5, color="black", lw=0.8, ls=":")
  ax.set_xlabel("debater Elo (round robin before the final debate judge)")
  ax.set_ylabel("judge accuracy")
  ax.set_title(f"Accuracy vs persuasiveness ({len(done)} seeds' checkpoints)")
  ax.legend(fontsize=8)
  return _save(fig, out / "fig_debate_elo.png")


def fig_quotes(seeds: list[dict], out: pathlib.Path) -> pathlib.Path:
  n = min(len(_rows(s)) for s in seeds)
  fig, ax = plt.subplots(figsize=(6, 4))
  for policy, ls in (("debater", "-"), ("consultant", "--")):
    for side, color in (("right", "tab:green"), ("wrong", "tab:red")):
      vals = [stats.t_interval([_rows(s)[i][f"{policy}_verified_{side}_side"] for s in seeds])
              for i in range(n)]
      ax.plot(range(n), [v.mean for v in vals], ls=ls, marker="o", color=color,
              label=f"{policy}, {side} side")
  ax.set_xticks(range(n), _labels(n))
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel("round (init = initial players)")
  ax.set_ylabel("share of quotes verified")
  ax.set_title(f"Quote verification per side (mean over {len(seeds)} seeds)")
  ax.legend(fontsize=8)
  return _save(fig, out / "fig_debate_quotes.png")


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def write_report(root: str | pathlib.Path, evaluate: bool = True) -> pathlib.Path:
  """<root>/report/report.md (+ numbers.json and the figures); returns report.md's path.
  evaluate=True first runs the tournament of every seed that lacks one."""
  root = pathlib.Path(root)
  seeds = load(root, evaluate)
  out = root / "report"
  out.mkdir(parents=True, exist_ok=True)
  table, numbers = protocol_table(seeds)
  lines = [f"# Debate report: {root}", "",
           f"{len(seeds)} seed(s): {', '.join(str(s['seed']) for s in seeds)}. Cells: mean "
           "[95% Student-t interval over seeds]; * where a paired interval excludes 0.", "",
           "## Judge accuracy per protocol (held-out questions, unseen names)", "", *table,
           "![protocols](fig_debate_protocols.png)", "",
           "## Paired differences", "", *paired_table(seeds),
           "## Accuracy against debater Elo", "", *elo_table(seeds)]
  if fig_elo(seeds, out) is not None:
    lines += ["![elo](fig_debate_elo.png)", ""]
  fig_protocols(seeds, out)
  fig_quotes(seeds, out)
  lines += ["## Quotes", "", "![quotes](fig_debate_quotes.png)", "",
            "## Published orderings (as reported; other tasks and training)", "",
            *_table(["source", *[p.replace("_", " ") for p in PROTOCOLS]],
                    [[src, *[f"{v[p]:.2f}" if p in v else "-" for p in PROTOCOLS]]
                     for src, v in PUBLISHED.items()])]
  (out / "numbers.json").write_text(json.dumps(numbers, indent=1))
  path = out / "report.md"
  path.write_text("\n".join(lines) + "\n")
  return path
