"""The report's figures (matplotlib, Agg), mirroring K Figs. 4-8. Every figure is drawn from
an `Experiment` (evaluated runs); error bars and bands are 95% t-intervals over seeds."""

from __future__ import annotations

import pathlib

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pvg_jax.evals import measures  # noqa: E402
from pvg_jax.report import data  # noqa: E402
from pvg_jax.report.data import INIT, Experiment, Stat  # noqa: E402

GAME_COLOR, BASELINE_COLOR = "tab:blue", "tab:red"


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _errorbar(ax, xs, stats: list[Stat], **kw):
  mean = np.array([s.mean for s in stats])
  err = np.array([[s.mean - s.low, s.high - s.mean] for s in stats]).T
  err = np.nan_to_num(err)
  return ax.errorbar(xs, mean, yerr=err, capsize=3, marker="o", **kw)


def _rounds_axis(ax, rounds: list[int]) -> None:
  ax.set_xticks(rounds, [data.round_label(r) for r in rounds])
  ax.set_xlabel("round (init = initial players)")


def _seeds(exp: Experiment) -> str:
  return f"{len(exp.game)} seed{'s' if len(exp.game) != 1 else ''}"


def dynamics(exp: Experiment, path: pathlib.Path, smooth: int = 5) -> pathlib.Path | None:
  """K Fig. 5: verifier scores and accuracies of both roles vs PPO steps, per round."""
  rounds = max((data.n_rounds(r) for r in exp.game), default=0)
  if not rounds:
    return None
  fig, axes = plt.subplots(2, rounds, figsize=(4 * rounds, 6.5), squeeze=False)
  series = (("helpful_correct_score", "helpful, correct", "tab:green", "-"),
            ("helpful_incorrect_score", "helpful, incorrect", "tab:green", ":"),
            ("sneaky_correct_score", "sneaky, correct", "tab:red", "-"),
            ("sneaky_incorrect_score", "sneaky, incorrect", "tab:red", ":"))
  for r in range(rounds):
    curves = [data.get(run, "dynamics", "rounds", r, default=None) for run in exp.game]
    curves = [c for c in curves if c]
    for key, label, color, style in series:
      _band(axes[0, r], curves, key, smooth, color=color, linestyle=style, label=label)
    for key, label, color in (("helpful_accuracy", "helpful", "tab:green"),
                              ("sneaky_accuracy", "sneaky", "tab:red")):
      _band(axes[1, r], curves, key, smooth, color=color, label=label)
    axes[0, r].set_title(f"round {r}: verifier score")
    axes[1, r].set_title(f"round {r}: training accuracy")
    axes[1, r].set_ylim(0, 1)
    for ax in axes[:, r]:
      ax.set_xlabel("PPO step")
  axes[0, 0].set_ylabel("mean verifier score")
  axes[1, 0].set_ylabel("accuracy")
  axes[0, 0].legend(fontsize=7)
  axes[1, 0].legend(fontsize=7)
  fig.suptitle(f"Prover dynamics ({exp.reward}, {_seeds(exp)}, {smooth}-step moving mean)")
  return _save(fig, path)


def _band(ax, curves: list[dict], key: str, smooth: int, **kw) -> None:
  if not curves:
    return
  length = min(len(c["step"]) for c in curves)
  ys = np.array([_moving_mean(np.asarray(c[key][:length], float), smooth) for c in curves])
  xs = np.asarray(curves[0]["step"][:length])
  with np.errstate(all="ignore"):
    mean = np.nanmean(ys, axis=0)
  ax.plot(xs, mean, **kw)
  if len(curves) > 1:
    ax.fill_between(xs, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), alpha=0.15,
                    color=kw.get("color"))


def _moving_mean(y: np.ndarray, w: int) -> np.ndarray:
  out = np.empty_like(y)
  for i in range(len(y)):
    window = y[max(0, i - w + 1):i + 1]
    out[i] = np.nanmean(window) if np.isfinite(window).any() else np.nan
  return out


def accuracy_by_round(exp: Experiment, path: pathlib.Path) -> pathlib.Path:
  """K Fig. 8a: helpful (and sneaky) test accuracy of each round's prover."""
  fig, ax = plt.subplots(figsize=(5.5, 4))
  helpful = data.by_round(exp.game, lambda r, i: data.get(data.legibility_entry(r, i),
                                                          "accuracy"))
  sneaky = data.by_round(exp.game, lambda r, i: data.get(r, "flaws", "by_round", i,
                                                         "sneaky_accuracy"))
  xs = [i for i, _ in helpful]
  _errorbar(ax, xs, [s for _, s in helpful], color=GAME_COLOR, label="helpful")
  _errorbar(ax, xs, [s for _, s in sneaky], color="tab:gray", label="sneaky", linestyle="--")
  if exp.baseline:
    final = data.stat([data.get(data.legibility_entry(b, 0), "accuracy")
                       for b in exp.baseline])
    ax.axhline(final.mean, color=BASELINE_COLOR, linestyle=":",
               label="correctness-only baseline (end)")
  _rounds_axis(ax, xs)
  ax.set_ylim(0, 1)
  ax.set_ylabel("test accuracy")
  ax.set_title(f"Prover accuracy by round ({exp.reward}, {_seeds(exp)})")
  ax.legend(fontsize=8)
  return _save(fig, path)


def judge_names(exp: Experiment) -> list[str]:
  for run in exp.game + exp.baseline:
    for e in run.get("legibility", []):
      if e.get("judges"):
        return sorted(e["judges"])
  return []


def legibility_by_round(exp: Experiment, path: pathlib.Path) -> pathlib.Path:
  """K Fig. 8b: judge accuracy on balanced helpful samples of each round's prover, and the
  checker's time to a correct verdict."""
  fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(11, 4))
  checker = data.by_round(exp.game, lambda r, i: data.get(
      data.legibility_entry(r, i), "checker", "accuracy"))
  panel = data.by_round(exp.game, lambda r, i: data.get(data.legibility_entry(r, i), "panel"))
  xs = [i for i, _ in checker]
  _errorbar(ax, xs, [s for _, s in checker], color="black", label="budgeted checker")
  _errorbar(ax, xs, [s for _, s in panel], color="tab:purple", label="model-judge panel")
  for name in judge_names(exp):
    one = data.by_round(exp.game, lambda r, i, n=name: data.get(
        data.legibility_entry(r, i), "judges", n))
    ax.plot(xs, [s.mean for _, s in one], alpha=0.4, linewidth=1, label=f"judge {name}")
  ax.axhline(0.5, color="gray", linewidth=0.5)
  _rounds_axis(ax, xs)
  ax.set_ylim(0.3, 1.0)
  ax.set_ylabel("judge accuracy (balanced correct/incorrect)")
  ax.set_title("Legibility of the helpful prover by round")
  ax.legend(fontsize=7)
  time = data.by_round(exp.game, lambda r, i: data.get(
      data.legibility_entry(r, i), "checker", "time_to_correct_verdict"))
  _errorbar(ax_t, xs, [s for _, s in time], color="black")
  _rounds_axis(ax_t, xs)
  ax_t.set_ylabel("tokens read to a correct verdict")
  ax_t.set_title("Budgeted checker: time to a correct verdict")
  fig.suptitle(f"{exp.reward}, {_seeds(exp)}")
  return _save(fig, path)


def _path_stats(runs: list[dict], points: list[tuple[int, int]], key) -> list[Stat]:
  return [data.stat([data.get(data.legibility_entry(r, i, s), *key) for r in runs])
          for i, s in points]


def legibility_tax(exp: Experiment, path: pathlib.Path) -> pathlib.Path:
  """K Fig. 4 / the legibility tax: accuracy vs legibility over training, checkability
  training (each round's final prover) vs the correctness-only baseline (its snapshots)."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
  rounds = max((data.n_rounds(r) for r in exp.game), default=0)
  game_points = [(INIT, 0)] + [(i, None) for i in range(rounds)]
  base_steps = sorted({e["step"] for b in exp.baseline for e in b.get("legibility", [])
                       if e["round"] == 0})
  base_points = [(INIT, 0)] + [(0, s) for s in base_steps]
  for ax, key, name in ((axes[0], ("checker", "accuracy"), "budgeted checker"),
                        (axes[1], ("panel",), "model-judge panel")):
    for runs, points, color, label in (
        (exp.game, game_points, GAME_COLOR, f"checkability training ({exp.reward}), rounds"),
        (exp.baseline, base_points, BASELINE_COLOR, "correctness-only RL, PPO steps")):
      if not runs:
        continue
      acc = _path_stats(runs, points, ("accuracy",))
      leg = _path_stats(runs, points, key)
      xs, ys = [a.mean for a in acc], [g.mean for g in leg]
      ax.errorbar(xs, ys, xerr=np.nan_to_num([[a.mean - a.low for a in acc],
                                              [a.high - a.mean for a in acc]]),
                  yerr=np.nan_to_num([[g.mean - g.low for g in leg],
                                      [g.high - g.mean for g in leg]]),
                  color=color, marker="o", capsize=2, label=label)
      for (i, s), x, y in zip(points, xs, ys):
        if i == INIT and runs is not exp.game and exp.game:
          continue                      # the shared starting point is labelled once
        tag = "init" if i == INIT else (f"r{i}" if runs is exp.game else f"{s}")
        if np.isfinite(x) and np.isfinite(y):
          ax.annotate(tag, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                      color=color)
    ax.set_xlabel("prover accuracy (helpful, test)")
    ax.set_ylabel(f"legibility: {name} accuracy")
    ax.set_title(f"Legibility tax ({name})")
    ax.legend(fontsize=7)
  fig.suptitle(f"Accuracy vs legibility over training ({_seeds(exp)})")
  return _save(fig, path)


def attacks(exp: Experiment, path: pathlib.Path) -> pathlib.Path | None:
  """K Fig. 6a: PPO steps a fresh sneaky-only attacker needs to exploit each round's
  verifier; hollow markers at the budget: not found within it."""
  rewards = sorted({a["reward"] for r in exp.game for a in r.get("attacks", [])})
  if not rewards:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  budget = max(a["budget"] for r in exp.game for a in r.get("attacks", []))
  for k, reward in enumerate(rewards):
    color = f"C{k}"
    for run_i, run in enumerate(exp.game):
      found = {a["round"]: a["steps"] for a in run.get("attacks", []) if a["reward"] == reward}
      rounds = sorted(found)
      xs = [r + 0.08 * (k - 1) + 0.02 * run_i for r in rounds]
      ys = [found[r] if found[r] is not None else budget for r in rounds]
      ax.plot(xs, ys, color=color, alpha=0.5, linewidth=1)
      for x, r, y in zip(xs, rounds, ys):
        ax.plot(x, y, marker="o", color=color,
                markerfacecolor=color if found[r] is not None else "none",
                label=reward if (run_i == 0 and r == rounds[0]) else None)
  all_rounds = sorted({a["round"] for r in exp.game for a in r.get("attacks", [])})
  ax.set_xticks(all_rounds, [data.round_label(r) for r in all_rounds])
  ax.axhline(budget, color="gray", linestyle=":", linewidth=1)
  ax.text(0.5, budget * 1.02, "budget (hollow markers: not found)", va="bottom", ha="center",
          fontsize=7, color="gray", transform=ax.get_yaxis_transform())
  ax.set_xlabel("round of the attacked verifier")
  ax.set_ylabel("PPO steps to a successful exploit")
  ax.set_ylim(0, budget * 1.12)
  ax.set_title(f"Sneaky-only attacks (one line per seed, {_seeds(exp)})")
  ax.legend(fontsize=8, title="attack reward")
  return _save(fig, path)


def attack_survival(exp: Experiment, path: pathlib.Path) -> pathlib.Path | None:
  """Survival of the sneaky-only attacks: the share of attacks (seeds pooled) on each
  round's verifier not yet successful after t PPO steps, one panel per reward. A robust
  verifier's curve stays high; an attack not found within its budget is censored there."""
  rewards = sorted({a["reward"] for r in exp.game for a in r.get("attacks", [])})
  if not rewards:
    return None
  fig, axes = plt.subplots(1, len(rewards), figsize=(4.2 * len(rewards), 3.6), squeeze=False)
  rounds = sorted({a["round"] for r in exp.game for a in r.get("attacks", [])})
  for ax, reward in zip(axes[0], rewards):
    for k, i in enumerate(rounds):
      found = [a for r in exp.game for a in r.get("attacks", [])
               if a["reward"] == reward and a["round"] == i]
      if not found:
        continue
      ts, alive = measures.survival([a["steps"] for a in found],
                                    max(a["budget"] for a in found))
      ax.step(ts, alive, where="post", color=plt.cm.viridis(k / max(len(rounds) - 1, 1)),
              label=f"V {data.round_label(i)} ({len(found)})")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("attacker PPO steps")
    ax.set_ylabel("share of attacks not yet successful")
    ax.set_title(f"{reward} attacks", fontsize=9)
    ax.legend(fontsize=7, title="verifier (attacks)", title_fontsize=7)
  fig.suptitle(f"Steps to exploit, as survival curves ({_seeds(exp)})", fontsize=9)
  return _save(fig, path)


def best_of_n(exp: Experiment, path: pathlib.Path) -> pathlib.Path | None:
  """K Fig. 6b: balanced best-of-n accuracy of each round's verifier vs n."""
  if not any("best_of_n" in r for r in exp.game):
    return None
  fig, ax = plt.subplots(figsize=(5.5, 4))
  ns = sorted({int(n) for r in exp.game
               for v in data.get(r, "best_of_n", "by_verifier", default={}).values()
               for n in v})
  rounds = max(data.n_rounds(r) for r in exp.game)
  for k, i in enumerate([INIT, *range(rounds)]):
    stats = [data.stat([data.get(r, "best_of_n", "by_verifier", i, n, "fraction_correct")
                        for r in exp.game]) for n in ns]
    _errorbar(ax, ns, stats, label=f"verifier {data.round_label(i)}",
              color=plt.cm.viridis(k / max(rounds, 1)))
  ax.set_xscale("log", base=2)
  ax.set_xticks(ns, [str(n) for n in ns])
  ax.set_xlabel("n (n/2 correct + n/2 incorrect initial-prover samples)")
  ax.set_ylabel("fraction of picks that are correct")
  ax.set_ylim(0, 1)
  ax.set_title(f"Balanced best-of-n ({_seeds(exp)})")
  ax.legend(fontsize=7)
  return _save(fig, path)


def flaws(exp: Experiment, path: pathlib.Path) -> pathlib.Path:
  """K Fig. 7a, exact: step validity of sneaky-incorrect test solutions by round."""
  fig, (ax, ax_mix) = plt.subplots(1, 2, figsize=(11, 4))
  keys = (("mean_validity", "mean step validity"), ("min_validity", "min step validity"),
          ("single_flaw", "exactly one invalid step"),
          ("first_error_position", "first error position (0 first, 1 last)"))
  xs = None
  for key, label in keys:
    s = data.by_round(exp.game, lambda r, i, k=key: data.get(r, "flaws", "by_round", i, k))
    xs = [i for i, _ in s]
    _errorbar(ax, xs, [v for _, v in s], label=label)
  _rounds_axis(ax, xs)
  ax.set_ylim(-0.05, 1.05)
  ax.set_title("Sneaky-incorrect solutions: step validity")
  ax.legend(fontsize=7)
  types = ("format", "ungrounded", "misread", "arith")
  bottom = np.zeros(len(xs))
  for t in types:
    s = data.by_round(exp.game, lambda r, i, t=t: data.get(r, "flaws", "by_round", i,
                                                           "error_types", t))
    h = np.nan_to_num([v.mean for _, v in s])
    ax_mix.bar(xs, h, bottom=bottom, label=t)
    bottom += h
  _rounds_axis(ax_mix, xs)
  ax_mix.set_ylabel("share of first errors")
  ax_mix.set_title("Type of the first error")
  ax_mix.legend(fontsize=7)
  fig.suptitle(f"Exact flaw analysis ({exp.reward}, {_seeds(exp)})")
  return _save(fig, path)


def separability(exp: Experiment, path: pathlib.Path) -> pathlib.Path:
  """Helpful-vs-sneaky separability by a tiny classifier (ROC-AUC), by round."""
  fig, ax = plt.subplots(figsize=(5.5, 4))
  s = data.by_round(exp.game, lambda r, i: data.get(r, "separability", "by_round", i, "auc"))
  xs = [i for i, _ in s]
  _errorbar(ax, xs, [v for _, v in s], color=GAME_COLOR)
  ax.axhline(0.5, color="gray", linestyle=":")
  _rounds_axis(ax, xs)
  ax.set_ylim(0.3, 1.02)
  ax.set_ylabel("ROC-AUC (helpful vs sneaky, role hidden)")
  ax.set_title(f"Separability of the two roles ({_seeds(exp)})")
  return _save(fig, path)


def verifier_sizes(exp: Experiment, path: pathlib.Path, metrics) -> pathlib.Path | None:
  """Verifier-size sweep: the final round's numbers against the verifier's parameters."""
  if len(exp.sweep) < 2:
    return None
  sizes = sorted(exp.sweep, key=lambda k: data.get(exp.sweep[k], "summary",
                                                   "initial_players", "verifier_params"))
  params = [data.get(exp.sweep[k], "summary", "initial_players", "verifier_params")
            for k in sizes]
  fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
  for ax, (label, fn) in zip(axes[0], metrics):
    ax.plot(params, [fn(exp.sweep[k]) for k in sizes], marker="o")
    for x, k, y in zip(params, sizes, [fn(exp.sweep[k]) for k in sizes]):
      if np.isfinite(y):
        ax.annotate(k, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ys = [fn(exp.sweep[k]) for k in sizes]
    finite = [y for y in ys if np.isfinite(y)]
    if finite:    # at least +-0.05 around the values: small differences look small
      ax.set_ylim(min(finite) - 0.05, max(finite) + 0.05)
    ax.set_xlabel("verifier parameters")
    ax.set_title(label, fontsize=9)
  fig.suptitle("Verifier-size sweep (seed 0, last round)")
  return _save(fig, path)
