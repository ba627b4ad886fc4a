"""The toy games' report: <workdir>/report/report.md and two figures, from summary.json and
metrics.jsonl (`pvg-report --workdir runs/anil` dispatches here).

  fig_anil_protocols.png  completeness vs soundness error per formulation, one panel per
                          task, 95% t-interval bars over seeds; the best sound protocol's
                          completeness as a dashed line.
  fig_anil_training.png   P(accept | true) and P(accept | false) of the training batches
                          along the outer steps, per formulation (mean over seeds).
"""

from __future__ import annotations

import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvg_jax.anil.game import FORMULATIONS  # noqa: E402

COLORS = {"simultaneous": "tab:gray", "prover_leads:steps": "tab:orange",
          "prover_leads:unrolled": "tab:red", "verifier_leads:steps": "tab:cyan",
          "verifier_leads:unrolled": "tab:blue"}
TASK_NAMES = {"bec": "binary erasure channel", "ftp": "FindThePlus"}


def _cell(stat: dict, bounds: tuple[float, float] = (0.0, 1.0)) -> str:
  """mean [lo, hi]; the t-interval clipped to `bounds` (probabilities: [0, 1])."""
  if stat["lo"] != stat["lo"]:   # NaN: one seed
    return f"{stat['mean']:.3f}"
  lo, hi = max(stat["lo"], bounds[0]), min(stat["hi"], bounds[1])
  return f"{stat['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _ordered(formulations: dict) -> list[str]:
  """The formulations in the order of game.FORMULATIONS (summary.json sorts its keys)."""
  return sorted(formulations, key=lambda f: (f not in FORMULATIONS,
                                             FORMULATIONS.index(f) if f in FORMULATIONS else 0))


def _err(stat: dict):
  """Error-bar lengths of the interval clipped to [0, 1] (None with one seed)."""
  if stat["lo"] != stat["lo"]:
    return None
  return [[stat["mean"] - max(stat["lo"], 0.0)], [min(stat["hi"], 1.0) - stat["mean"]]]


def protocols_figure(summary: dict, path: pathlib.Path) -> pathlib.Path:
  tasks = list(summary["tasks"])
  fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    t = summary["tasks"][task]
    for form in _ordered(t["formulations"]):
      c, s = t["formulations"][form]["completeness"], t["formulations"][form]["soundness_error"]
      xerr, yerr = _err(s), _err(c)
      ax.errorbar(s["mean"], c["mean"], xerr=xerr, yerr=yerr, marker="o", capsize=3,
                  color=COLORS.get(form), label=form)
    ax.axhline(t["optimal_sound_completeness"], color="k", linestyle="--", linewidth=1,
               label="best sound protocol")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("soundness error: worst P(accept | false) found")
    ax.set_ylabel("completeness: P(accept | true)")
    ax.set_title(f"{TASK_NAMES.get(task, task)} ({summary['seeds']} seeds)")
    ax.grid(alpha=0.3)
  axes[0, -1].legend(fontsize=8, loc="lower right")
  fig.suptitle("Sound and complete = top left corner")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _curves(workdir: pathlib.Path) -> dict:
  """{phase: {step: record}} from metrics.jsonl; a resumed run's repeated steps keep the
  last record."""
  out: dict = {}
  path = workdir / "metrics.jsonl"
  for line in path.read_text().splitlines() if path.exists() else []:
    rec = json.loads(line)
    out.setdefault(rec["phase"], {})[rec["step"]] = rec
  return out


def training_figure(summary: dict, workdir: pathlib.Path, path: pathlib.Path) -> pathlib.Path:
  curves = _curves(workdir)
  tasks = list(summary["tasks"])
  fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.0), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for form in _ordered(summary["tasks"][task]["formulations"]):
      recs = curves.get(f"{task}.{form.replace(':', '.')}", {})
      steps = sorted(recs)
      color = COLORS.get(form)
      ax.plot(steps, [recs[s]["accept_true"] for s in steps], color=color, label=form)
      ax.plot(steps, [recs[s]["accept_false"] for s in steps], color=color, linestyle=":")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("outer step")
    ax.set_ylabel("P(accept) on training batches")
    ax.set_title(f"{TASK_NAMES.get(task, task)}: true (solid), false (dotted)")
    ax.grid(alpha=0.3)
  axes[0, -1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def write_report(workdir: str | pathlib.Path) -> pathlib.Path:
  """Write <workdir>/report/ for a configs/anil.py run; returns report.md's path."""
  workdir = pathlib.Path(workdir)
  summary = json.loads((workdir / "summary.json").read_text())
  out = workdir / "report"
  out.mkdir(parents=True, exist_ok=True)
  tol = summary["tolerance"]
  lines = [f"# Prover-verifier games on toy tasks: {workdir}", "",
           f"{summary['seeds']} seeds per formulation (paired: the same initial players and "
           "batches), held-out instances. Cells: mean [95% t-interval over seeds]. "
           "Completeness = P(accept | true) with the trained prover; soundness error = the "
           "worst held-out P(accept | false) found by re-optimized attackers (`audit`) or by "
           "trying every pointer (`pointer`); intervals are clipped to [0, 1]. Sound: soundness "
           "error <= "
           f"{tol}; complete: completeness within {tol} of the best sound protocol's.", ""]
  for task, t in summary["tasks"].items():
    lines += [f"## {TASK_NAMES.get(task, task)}", "",
              f"Best sound protocol's completeness (instances with a window that proves the "
              f"claim): {t['optimal_sound_completeness']:.3f}", "",
              "| formulation | completeness | soundness error | audit | pointer | game prover "
              "P(acc. false) | verifier acc. | verdict |", "|" + "---|" * 8]
    for form in _ordered(t["formulations"]):
      r = t["formulations"][form]
      verdict = ("sound" if r["sound"] else "unsound") + ", " + (
          "complete" if r["complete"] else "incomplete")
      lines.append(f"| {form} | " + " | ".join(_cell(r[m]) for m in (
          "completeness", "soundness_error", "soundness_error_audit",
          "soundness_error_pointer", "game_prover_accept_false", "verifier_accuracy"))
          + f" | {verdict} |")
    lines.append("")
    paired = [f for f in _ordered(t["formulations"]) if "minus_reference" in t["formulations"][f]]
    if paired:
      lines += [f"Paired over seeds, formulation minus {summary['reference']} (mean [95% "
                "t-interval of the per-seed differences]):", "",
                "| formulation | completeness difference | soundness error difference |",
                "|---|---|---|"]
      for form in paired:
        d = t["formulations"][form]["minus_reference"]
        lines.append(f"| {form} | {_cell(d['completeness'], (-1, 1))} | "
                     f"{_cell(d['soundness_error'], (-1, 1))} |")
      lines.append("")
  figs = [protocols_figure(summary, out / "fig_anil_protocols.png"),
          training_figure(summary, workdir, out / "fig_anil_training.png")]
  lines += ["## Figures", "", *[f"![{p.stem}]({p.name})" for p in figs]]
  (out / "report.md").write_text("\n".join(lines) + "\n")
  return out / "report.md"
