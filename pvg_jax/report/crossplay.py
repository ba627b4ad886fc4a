"""The cross-play matrix of the report: every verifier V_i (V_init included) scored on every
prover P_j's samples (the initial prover included), from each run's evals/crossplay.json.

A row is one prover, a column one verifier; the diagonal is the game as played. Reading
along a row changes only the verifier (is a later verifier better on the same samples?),
down a column only the prover (are a later prover's samples easier or harder for the same
verifier?), so verifier and prover changes are not confounded. Two matrices: pairwise
accuracy (same-problem correct vs incorrect, both roles) and the sneaky role's fool rate
(same-problem sneaky-incorrect ranked above helpful-correct).
"""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pvg_jax.report import data  # noqa: E402
from pvg_jax.report.data import Experiment  # noqa: E402

MATRICES = (("pairwise", "pairwise accuracy (higher: better verifier)"),
            ("sneaky_fools", "sneaky fool rate (higher: sneaky wins)"))


def matrices(exp: Experiment) -> dict[str, tuple[list[int], list[int], list[list[data.Stat]]]]:
  """key -> (prover rounds, verifier rounds, [prover][verifier] Stat over seeds)."""
  runs = [r for r in exp.game if "crossplay" in r]
  if not runs:
    return {}
  verifiers = runs[0]["crossplay"]["verifiers"]
  provers = [int(p) for p in runs[0]["crossplay"]["provers"]]
  out = {}
  for key, _ in MATRICES:
    grid = [[data.stat([data.get(r, "crossplay", "provers", p, key, j) for r in runs])
             for j in range(len(verifiers))] for p in provers]
    out[key] = (provers, verifiers, grid)
  return out


def section(exp: Experiment, out: pathlib.Path, numbers: dict) -> list[str]:
  """Markdown lines (tables and the figure) of the cross-play section; fills numbers."""
  mats = matrices(exp)
  if not mats:
    return []
  lines = ["## Cross-play: every verifier on every prover's samples", "",
           "Rows: the prover whose samples are scored (both roles, the same fixed test "
           "problems); columns: the verifier. Mean [95% t-interval] over seeds.", ""]
  for key, title in MATRICES:
    provers, verifiers, grid = mats[key]
    header = ["prover \\ verifier", *[f"V {data.round_label(v)}" for v in verifiers]]
    lines += [f"**{title}**", "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for p, row in zip(provers, grid):
      lines.append("| " + " | ".join([f"P {data.round_label(p)}", *[s.fmt() for s in row]])
                   + " |")
    lines.append("")
    numbers[f"crossplay {key}"] = {data.round_label(p): {data.round_label(v): list(s.values)
                                                         for v, s in zip(verifiers, row)}
                                   for p, row in zip(provers, grid)}
  path = figure(mats, out / "fig_crossplay.png")
  return [*lines, f"![{path.stem}]({path.name})", ""]


def figure(mats: dict, path: pathlib.Path) -> pathlib.Path:
  """Two heatmaps (pairwise accuracy, sneaky fool rate), means over seeds, values written."""
  fig, axes = plt.subplots(1, len(MATRICES), figsize=(5.2 * len(MATRICES), 4.2))
  for ax, (key, title) in zip(np.atleast_1d(axes), MATRICES):
    provers, verifiers, grid = mats[key]
    values = np.array([[s.mean for s in row] for row in grid], float)
    im = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
    for (i, j), v in np.ndenumerate(values):
      if np.isfinite(v):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(verifiers)), [f"V {data.round_label(v)}" for v in verifiers])
    ax.set_yticks(range(len(provers)), [f"P {data.round_label(p)}" for p in provers])
    ax.set_xlabel("verifier")
    ax.set_ylabel("prover whose samples are scored")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
  fig.suptitle("Cross-play: verifier changes along a row, prover changes down a column",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
