"""Human legibility per checkpoint from a campaign's judgments (K Fig. 8b's human curve).

Definitions (docs/human-judging.md):
- a judgment is right when the answer matches the label; a timeout is not right (the judge
  reached no verdict within the limit), so accuracy = right / judgments; accuracy among
  answered judgments is reported beside it, with the timeout rate;
- time used: the server-measured seconds from serving to answer, a timeout counting as the
  limit; median per checkpoint;
- exclusion (K excluded 4 of 75 trainers at chance): a judge with at least `min_judgments`
  answered judgments whose accuracy on them is at or below `exclude_at_or_below` (0.5) is
  left out of every number, and listed;
- intervals: 95% two-way bootstrap percentile intervals, resampling judges and, within each
  checkpoint, items, independently (a crossed design: one judge's judgments are not
  independent, nor are one item's); a judgment's weight in a resample is (times its judge
  was drawn) x (times its item was drawn). The simulated judges' accuracy on the same items
  (the budgeted checker, each panel model and the panel's mean) has an items-only interval;
- accuracy against the time limit: for limits t up to the campaign's, the accuracy had
  answers slower than t been timeouts.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from pvg_jax import files
from pvg_jax.judging import campaign as campaign_lib
from pvg_jax.judging import store as store_lib

CI_LABEL = "95% two-way (judges x items) bootstrap percentile interval"


@dataclasses.dataclass(frozen=True)
class Judgments:
  """One row per kept judgment, as index arrays."""
  judge: np.ndarray      # int index into `judges`
  item: np.ndarray       # int index into `items`
  checkpoint: np.ndarray
  right: np.ndarray      # float 0/1
  label: np.ndarray      # bool: the solution is correct
  timeout: np.ndarray    # bool
  time_s: np.ndarray
  judges: list[str]
  items: list[str]


def exclusions(rows: list[dict], c: campaign_lib.Campaign, threshold: float,
               min_judgments: int) -> dict[str, float]:
  """Judges at or below `threshold` accuracy on their answered judgments -> that accuracy."""
  answered: dict[str, list[bool]] = {}
  for r in rows:
    if r["answer"] != store_lib.TIMEOUT:
      answered.setdefault(r["judge"], []).append(
          (r["answer"] == "correct") == c.items[r["item"]].correct)
  return {j: float(np.mean(v)) for j, v in sorted(answered.items())
          if len(v) >= min_judgments and np.mean(v) <= threshold}


def arrays(rows: list[dict], c: campaign_lib.Campaign, excluded=()) -> Judgments:
  rows = [r for r in rows if r["judge"] not in excluded]
  judges = sorted({r["judge"] for r in rows})
  items = sorted({r["item"] for r in rows})
  ckpts = [x.id for x in c.checkpoints]
  jx, ix = {j: n for n, j in enumerate(judges)}, {i: n for n, i in enumerate(items)}
  it = [c.items[r["item"]] for r in rows]
  timeout = np.array([r["answer"] == store_lib.TIMEOUT for r in rows], bool)
  label = np.array([x.correct for x in it], bool)
  said = np.array([r["answer"] == "correct" for r in rows], bool)
  return Judgments(
      judge=np.array([jx[r["judge"]] for r in rows], int),
      item=np.array([ix[r["item"]] for r in rows], int),
      checkpoint=np.array([ckpts.index(x.checkpoint) for x in it], int),
      right=((said == label) & ~timeout).astype(float), label=label, timeout=timeout,
      time_s=np.minimum(np.array([r["elapsed_s"] for r in rows], float), c.limit_s),
      judges=judges, items=items)


def _resampled_weights(n: int, groups: np.ndarray | None, draws: int,
                       rng: np.random.Generator) -> np.ndarray:
  """[draws, n] multiplicities of n units resampled with replacement (within each group)."""
  if groups is None:
    return rng.multinomial(n, np.full(n, 1 / n), size=draws).astype(float)
  out = np.zeros((draws, n))
  for g in np.unique(groups):
    members = np.flatnonzero(groups == g)
    out[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)),
                                      size=draws)
  return out


def bootstrap(j: Judgments, masks: dict[str, np.ndarray], resamples: int, seed: int,
              value: np.ndarray | None = None, by_judge: bool = True) -> dict[str, list]:
  """Percentile intervals of the weighted mean of `value` (default: right) over each mask."""
  value = j.right if value is None else value
  rng = np.random.default_rng([seed, 8817])
  item_ckpt = np.zeros(len(j.items), int)
  item_ckpt[j.item] = j.checkpoint
  stats = {k: [] for k in masks}
  for start in range(0, resamples, 250):
    b = min(250, resamples - start)
    wi = _resampled_weights(len(j.items), item_ckpt, b, rng)[:, j.item]
    w = wi * _resampled_weights(len(j.judges), None, b, rng)[:, j.judge] if by_judge else wi
    for k, m in masks.items():
      den = (w * m).sum(axis=1)
      with np.errstate(invalid="ignore", divide="ignore"):
        stats[k].append((w * m * value).sum(axis=1) / den)
  out = {}
  for k, v in stats.items():
    v = np.concatenate(v)
    v = v[np.isfinite(v)]
    out[k] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else None
  return out


def limit_curve(j: Judgments, mask: np.ndarray, limit_s: float, points: int = 9
                ) -> list[list[float]]:
  """[(t, accuracy had the limit been t)]: answers that took longer than t count as timeouts
  (what a pilot reads to set the limit where accuracy is off its ceiling)."""
  ts = np.linspace(limit_s / points, limit_s, points)
  return [[float(t), float((j.right[mask] * (j.time_s[mask] <= t)).mean())] for t in ts]


def analyze(c: campaign_lib.Campaign, rows: list[dict], exclude_at_or_below: float = 0.5,
            min_judgments: int = 10, resamples: int = 2000) -> dict:
  """Per checkpoint: accuracy (overall, on correct, on incorrect, when answered), timeout
  rate, median time, accuracy against the time limit, and each simulated judge on the same
  items; intervals as the module says."""
  excluded = exclusions(rows, c, exclude_at_or_below, min_judgments)
  j = arrays(rows, c, excluded)
  names = sorted({k for it in c.items.values() for k in it.simulated})
  sim_right = {k: np.array([c.items[i].simulated.get(k) == c.items[i].correct
                            for i in j.items], float)[j.item] for k in names}
  panel = [k for k in names if k != "checker"]
  if panel:
    sim_right["panel"] = np.mean([sim_right[k] for k in panel], axis=0)
  out = {}
  for n, ck in enumerate(c.checkpoints):
    m = j.checkpoint == n
    if not m.any():
      continue
    masks = {"accuracy": m, "accuracy_on_correct": m & j.label,
             "accuracy_on_incorrect": m & ~j.label}
    # each judged item once for a simulated judge (it judges an item the same way each time)
    first = np.zeros(len(j.right), bool)
    rows_m = np.flatnonzero(m)
    first[rows_m[np.unique(j.item[rows_m], return_index=True)[1]]] = True
    ci = bootstrap(j, masks, resamples, c.seed)
    answered = m & ~j.timeout
    out[ck.id] = {
        "label": ck.label, "round": ck.round, "role": ck.role, "source": ck.source,
        "judgments": int(m.sum()), "judges": int(len(np.unique(j.judge[m]))),
        "items": int(first.sum()),
        **{k: float(j.right[v].mean()) if v.any() else None for k, v in masks.items()},
        **{f"{k}_ci": ci[k] for k in masks},
        "answered_accuracy": float(j.right[answered].mean()) if answered.any() else None,
        "timeout_rate": float(j.timeout[m].mean()),
        "median_time_s": float(np.median(j.time_s[m])),
        "accuracy_by_limit": limit_curve(j, m, c.limit_s),
        "simulated": {k: float(v[first].mean()) for k, v in sim_right.items()},
        "simulated_ci": {k: bootstrap(j, {"s": first}, resamples, c.seed, v,
                                      by_judge=False)["s"] for k, v in sim_right.items()}}
  return {"campaign": c.name, "limit_s": c.limit_s, "judgments": int(len(j.right)),
          "judges": len(j.judges), "excluded_judges": excluded,
          "exclusion_rule": f"answered accuracy <= {exclude_at_or_below} with >= "
                            f"{min_judgments} answered judgments",
          "interval": CI_LABEL, "resamples": resamples, "checkpoints": out}


def table(result: dict) -> list[str]:
  def cell(d, k):
    v, ci = d.get(k), d.get(f"{k}_ci")
    if v is None:
      return "-"
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
  def sim(d, k):
    v, ci = d["simulated"].get(k), d["simulated_ci"].get(k)
    return "-" if v is None else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
  sims = [k for k in ("checker", "panel") if any(
      k in d["simulated"] for d in result["checkpoints"].values())]
  lines = ["| checkpoint | judgments (judges, items) | accuracy | on correct | on incorrect "
           "| answered acc. | timeouts | median s | "
           + " | ".join(f"{k}, same items" for k in sims) + " |",
           "|" + "---|" * (8 + len(sims))]
  for d in result["checkpoints"].values():
    lines.append(f"| {d['label']} | {d['judgments']} ({d['judges']}, {d['items']}) | "
                 f"{cell(d, 'accuracy')} | {cell(d, 'accuracy_on_correct')} | "
                 f"{cell(d, 'accuracy_on_incorrect')} | {d['answered_accuracy'] or 0:.3f} | "
                 f"{d['timeout_rate']:.3f} | {d['median_time_s']:.1f} | "
                 + " | ".join(sim(d, k) for k in sims) + " |")
  return lines


def write(directory: str | pathlib.Path, **kw) -> dict:
  """analyze() the campaign in `directory`; writes results.json, results.md and
  human_legibility.png there."""
  from pvg_jax.judging import figure, server
  directory = pathlib.Path(directory)
  store = server.open_store(directory)
  result = analyze(store.campaign, store.judgments(), **kw)
  store.close()
  files.atomic_write_text(directory / "results.json", json.dumps(result, indent=1) + "\n")
  png = figure.human_legibility(result, directory / "human_legibility.png")
  excluded = ", ".join(f"{k} ({v:.2f})" for k, v in result["excluded_judges"].items())
  md = [f"# Human judging: campaign {result['campaign']}", "",
        f"{result['judgments']} judgments by {result['judges']} judges, "
        f"{result['limit_s']:g} s per solution. Excluded ({result['exclusion_rule']}): "
        f"{excluded or 'none'}. Brackets: {result['interval']} ({result['resamples']} "
        "resamples). A timeout counts as not right.", "", *table(result), "",
        f"![human legibility]({png.name})" if png else ""]
  files.atomic_write_text(directory / "results.md", "\n".join(md) + "\n")
  return result
