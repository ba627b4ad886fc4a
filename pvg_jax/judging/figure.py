"""The human-legibility figure: human accuracy per checkpoint beside the simulated checker on
the same solutions (K Fig. 8b's human curve, and the baseline's point as in K Fig. 4)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROLE_STYLE = {"helpful": ("tab:blue", "o"), "sneaky": ("tab:orange", "s")}
BASELINE_COLOR = "tab:red"


def _bar(d: dict, key: str) -> tuple[float, list[float]]:
  v, ci = d.get(key), d.get(f"{key}_ci")
  if key.startswith("simulated:"):
    name = key.split(":", 1)[1]
    v, ci = d["simulated"].get(name), d["simulated_ci"].get(name)
  if v is None:
    return np.nan, [0.0, 0.0]
  return v, [v - ci[0], ci[1] - v] if ci else [0.0, 0.0]


SERIES = (("accuracy", "-", 1.0, "humans"),
          ("simulated:checker", "--", 0.55, "budgeted checker"),
          ("simulated:panel", ":", 0.55, "model-judge panel"))


def human_legibility(result: dict, path: pathlib.Path) -> pathlib.Path | None:
  """Left: accuracy by round per role (humans solid, simulated judges on the same items
  dashed / dotted), the baseline at its own x. Middle: accuracy had the limit been shorter.
  Right: median time used. Returns None when there are no judgments."""
  ck = result["checkpoints"]
  if not ck:
    return None
  rounds = sorted({d["round"] for d in ck.values() if d["source"] == "game"})
  base_x = (max(rounds) + 1) if rounds else 0
  fig, (ax, ax_l, ax_t) = plt.subplots(1, 3, figsize=(15, 4.4))
  has = {key for key, *_ in SERIES if key == "accuracy" or any(
      key.split(":", 1)[1] in d["simulated"] for d in ck.values())}
  for role, (color, marker) in ROLE_STYLE.items():
    pts = sorted((d["round"], d) for d in ck.values()
                 if d["role"] == role and d["source"] == "game")
    if not pts:
      continue
    xs = np.array([x for x, _ in pts], float) + (0.06 if role == "sneaky" else 0)
    for n, (key, style, alpha, who) in enumerate(SERIES):
      if key not in has:
        continue
      vals = [_bar(d, key) for _, d in pts]
      ax.errorbar(xs + 0.1 * n, [v for v, _ in vals], yerr=np.array([e for _, e in vals]).T,
                  color=color, marker=marker, linestyle=style, capsize=3, alpha=alpha,
                  label=f"{who}, {role} prover")
    ax_t.plot(xs, [d["median_time_s"] for _, d in pts], color=color, marker=marker,
              label=f"{role} prover")
    for r, d in pts:
      t, a = np.array(d["accuracy_by_limit"]).T
      ax_l.plot(t, a, color=color, alpha=0.35 + 0.65 * (r - min(rounds) + 1) /
                (len(rounds) or 1), label=f"{role}, {'init' if r < 0 else f'round {r}'}")
  for d in (d for d in ck.values() if d["source"] == "baseline"):
    v, e = _bar(d, "accuracy")
    ax.errorbar([base_x], [v], yerr=np.array([e]).T, color=BASELINE_COLOR, marker="D",
                capsize=3, linestyle="none", label="humans, correctness-only baseline")
    ax_t.plot([base_x], [d["median_time_s"]], color=BASELINE_COLOR, marker="D",
              linestyle="none", label="baseline")
    t, a = np.array(d["accuracy_by_limit"]).T
    ax_l.plot(t, a, color=BASELINE_COLOR, label="baseline")
  base = any(d["source"] == "baseline" for d in ck.values())
  ticks = [*rounds] + ([base_x] if base else [])
  labels = ["init" if r < 0 else str(r) for r in rounds] + (["baseline"] if base else [])
  for a in (ax, ax_t):
    a.set_xticks(ticks, labels)
    a.set_xlabel("prover checkpoint (round; init = initial prover)")
  ax.axhline(0.5, color="gray", linewidth=0.5)
  ax.set_ylim(0, 1.02)
  ax.set_ylabel("judge accuracy (balanced correct/incorrect)")
  ax.set_title("Time-limited judges on the same solutions")
  ax.legend(fontsize=6.5, loc="lower left")
  ax_l.axhline(0.5, color="gray", linewidth=0.5)
  ax_l.set_ylim(0, 1.02)
  ax_l.set_xlabel("time limit t (s): slower answers counted as timeouts")
  ax_l.set_ylabel("human accuracy")
  ax_l.set_title("Accuracy against the time limit")
  ax_l.legend(fontsize=6.5, loc="lower right")
  ax_t.axhline(result["limit_s"], color="gray", linewidth=0.5, linestyle=":")
  ax_t.set_ylim(0, result["limit_s"] * 1.08)
  ax_t.set_ylabel("median seconds used (timeouts = the limit)")
  ax_t.set_title("Human time per solution")
  ax_t.legend(fontsize=7)
  fig.suptitle(f"campaign {result['campaign']}: {result['judgments']} judgments, "
               f"{result['judges']} judges; bars: {result['interval']}", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
