"""Solution styles in the report (styled worlds; the `styles` part of evals/run.py).

What the legibility-tax mechanism of a styled world moves (docs/reproduction_plan.md): per
checkpoint, each style's share of the prover's helpful (and sneaky) samples, its accuracy,
and the share of its correct samples that the budgeted checker cannot finish in time; and
the paired per-seed change of each style's share (final prover minus the initial one, game
minus the correctness-only baseline of the same seed). Empty for single-style worlds.
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvg_jax.report import data, stats  # noqa: E402
from pvg_jax.report.data import INIT, Experiment  # noqa: E402


def world_styles(exp: Experiment) -> list[str]:
  runs = [r for r in exp.game + exp.baseline if r.get("styles")]
  return list(runs[0]["config"]["world"]["styles"]) if runs else []


def _value(run: dict, round_: int, role: str, style: str, key: str,
           step: int | None = None) -> float:
  entry = data.legibility_entry(run, round_, step, part="styles")
  return data.get(entry, role, style, key)


def _final(run: dict, role: str, style: str, key: str) -> float:
  return _value(run, data.n_rounds(run) - 1, role, style, key)


def section(exp: Experiment, out: pathlib.Path, numbers: dict) -> list[str]:
  """Markdown lines (tables and the figure) of the styles section; fills numbers."""
  names = world_styles(exp)
  if not names:
    return []
  rounds = max(data.n_rounds(r) for r in exp.game) if exp.game else 0
  checkpoints = [(f"game {data.round_label(i)}", exp.game, i) for i in [INIT, *range(rounds)]]
  if exp.baseline:
    checkpoints.append(("baseline, end", exp.baseline, None))
  checkpoints += [(f"{name}, end", runs, None) for name, runs in exp.controls.items()]
  header = ["checkpoint", *[f"{s}: {k}" for s in names
                            for k in ("share", "accuracy", "over budget (correct)")]]
  lines = ["## Solution styles (helpful samples of the legibility evaluation)", "",
           "Per style: share of the prover's helpful samples on the fixed test problems, "
           "their accuracy, and the share of the correct ones the budgeted checker cannot "
           "finish within its budget (its verdict is then a coin). Mean [95% t-interval] "
           "over seeds.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for label, runs, round_ in checkpoints:
    cells = []
    for s in names:
      for key in ("share", "accuracy", "over_budget_correct"):
        st = data.stat([_value(r, round_, "helpful", s, key) if round_ is not None
                        else _final(r, "helpful", s, key) for r in runs])
        numbers.setdefault(f"styles helpful {s} {key}", {})[label] = list(st.values)
        cells.append(st.fmt())
    lines.append("| " + " | ".join([label, *cells]) + " |")
  lines += ["", *_paired(exp, names, numbers), ""]
  path = figure(exp, names, out / "fig_styles.png")
  return [*lines, f"![{path.stem}]({path.name})", ""]


def _paired(exp: Experiment, names: list[str], numbers: dict) -> list[str]:
  """Per style: the paired change of its share of helpful and of sneaky samples."""
  seed = lambda run: int(run["config"]["seed"])  # noqa: E731
  base = {seed(r): r for r in exp.baseline}
  rows, header = [], []
  for role in ("helpful", "sneaky"):
    for s in names:
      final = [_final(r, role, s, "share") for r in exp.game]
      cells = {"game: share change": stats.paired(
          final, [_value(r, INIT, role, s, "share") for r in exp.game])}
      if base:
        cells["game - baseline"] = stats.paired(
            final, [_final(base[seed(r)], role, s, "share") if seed(r) in base else None
                    for r in exp.game])
        cells["baseline: share change"] = stats.paired(
            [_final(b, role, s, "share") for b in exp.baseline],
            [_value(b, INIT, role, s, "share") for b in exp.baseline])
      numbers[f"styles {role} {s} share, paired"] = {k: list(iv.values)
                                                     for k, iv in cells.items()}
      header = ["role", "style", *cells]
      rows.append([role, s, *[iv.fmt(sign=True) + (" *" if iv.excludes_zero else "")
                              for iv in cells.values()]])
  return ["Paired per-seed differences of each style's share (final prover; *: the 95% "
          "t-interval excludes 0):", "", "| " + " | ".join(header) + " |",
          "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in rows]]


def figure(exp: Experiment, names: list[str], path: pathlib.Path) -> pathlib.Path:
  """Each style's share of helpful samples: the game by round (left), the baseline over
  its PPO steps (right); means over seeds with 95% t-intervals."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
  rounds = max(data.n_rounds(r) for r in exp.game) if exp.game else 0
  ids = [INIT, *range(rounds)]
  for s in names:
    sts = [data.stat([_value(r, i, "helpful", s, "share") for r in exp.game]) for i in ids]
    _line(axes[0], range(len(ids)), sts, s)
  axes[0].set_xticks(range(len(ids)), [data.round_label(i) for i in ids])
  axes[0].set_xlabel("checkability training: round")
  steps = sorted({e["step"] for b in exp.baseline for e in b.get("styles") or []
                  if e["round"] == 0})
  for s in names:
    sts = [data.stat([_value(b, INIT, "helpful", s, "share") for b in exp.baseline])]
    sts += [data.stat([_value(b, 0, "helpful", s, "share", step) for b in exp.baseline])
            for step in steps]
    _line(axes[1], [0, *steps], sts, s)
  axes[1].set_xlabel("correctness-only baseline: PPO step")
  axes[0].set_ylabel("share of helpful samples")
  for ax in axes:
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle(f"Solution styles of the helpful role ({len(exp.game)} seed(s))", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _line(ax, xs, sts: list[stats.Interval], label: str) -> None:
  means = [s.mean for s in sts]
  err = [[s.mean - s.low for s in sts], [s.high - s.mean for s in sts]]
  ax.errorbar(list(xs), means, yerr=err, marker="o", capsize=3, label=label)
