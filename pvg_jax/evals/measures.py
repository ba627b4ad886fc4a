"""The numbers of METHOD 1.3, as pure functions of sample arrays (no models, no files).

Everything here is exact given its inputs and seeded where it draws, so the evaluation
driver can cache the inputs and tests can check each measure on hand-made arrays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from pvg_jax import rollout
from pvg_jax.worlds.arith import checker


@dataclasses.dataclass(frozen=True)
class BalancedPick:
  """K's legibility protocol: up to one correct and one incorrect sample per problem."""

  rows: np.ndarray            # indices of the picked samples (correct, incorrect, ...)
  problems: int               # problems kept (each contributes one of each)
  dropped_all_correct: int
  dropped_all_incorrect: int


def balanced_pick(problem_index: np.ndarray, correct: np.ndarray,
                  rng: np.random.Generator) -> BalancedPick:
  """For every problem with at least one correct and one incorrect sample, pick one of each
  uniformly at random; problems whose samples are all correct or all incorrect are dropped
  and counted (K Fig. 8b protocol)."""
  rows, kept, all_c, all_i = [], 0, 0, 0
  for p in np.unique(problem_index):
    sel = np.flatnonzero(problem_index == p)
    good, bad = sel[correct[sel]], sel[~correct[sel]]
    if not len(bad):
      all_c += 1
    elif not len(good):
      all_i += 1
    else:
      rows += [rng.choice(good), rng.choice(bad)]
      kept += 1
  return BalancedPick(np.array(rows, int), kept, all_c, all_i)


def best_of_n(problem_index: np.ndarray, correct: np.ndarray, scores: np.ndarray, n: int,
              draws: int, rng: np.random.Generator) -> tuple[float, int]:
  """Balanced best-of-n (METHOD 1.3 item 6): over problems with >= n/2 correct and >= n/2
  incorrect samples, draw n/2 of each, keep the highest-scored; the fraction of kept
  samples that are correct, averaged over `draws` draws per problem.
  Returns (fraction, number of eligible problems); nan if none is eligible."""
  if n % 2:
    raise ValueError(f"balanced best-of-n needs an even n, got {n}")
  hits, total, eligible = 0.0, 0, 0
  for p in np.unique(problem_index):
    sel = np.flatnonzero(problem_index == p)
    good, bad = sel[correct[sel]], sel[~correct[sel]]
    if len(good) < n // 2 or len(bad) < n // 2:
      continue
    eligible += 1
    for _ in range(draws):
      pick = rng.permutation(np.concatenate([rng.choice(good, n // 2, replace=False),
                                             rng.choice(bad, n // 2, replace=False)]))
      best = pick[np.argmax(scores[pick])]        # ties: the first of a random order
      hits += float(correct[best])
      total += 1
  return (hits / total if total else float("nan")), eligible


def flaw_stats(results: Sequence[checker.CheckResult]) -> dict:
  """Exact per-step validity of (sneaky-incorrect) solutions: our version of K Fig. 7a.

  mean_validity: mean over solutions of the fraction of valid clauses; min_validity: mean
  over solutions of the minimum per-clause validity (0 as soon as one clause is invalid -
  for incorrect solutions always 0 under an exact checker, since all-valid steps end in the
  true answer: K's "minimum stays near 0" holds here by construction);
  single_flaw: fraction with exactly one invalid clause (a localized flaw);
  first_error_position: index of the first invalid clause / (clauses - 1), so 0 = the
  first clause and 1 = the last (the answer);
  error_types: the mix of first-error types."""
  if not results:
    return {"solutions": 0}
  valid = [np.array(r.valid, float) for r in results]
  positions = [r.first_error / max(r.num_steps - 1, 1) for r in results
               if r.first_error is not None]
  types = [r.error_type for r in results]
  return {
      "solutions": len(results),
      "mean_validity": float(np.mean([v.mean() for v in valid])),
      "min_validity": float(np.mean([v.min() for v in valid])),
      "single_flaw": float(np.mean([(v == 0).sum() == 1 for v in valid])),
      "first_error_position": float(np.mean(positions)) if positions else float("nan"),
      "error_types": {t: types.count(t) / len(types) for t in (*checker.ERROR_TYPES, "ok")},
  }


def step_curves(step: np.ndarray, role: np.ndarray, correct: np.ndarray, score: np.ndarray,
                helpful_role: int) -> dict[str, list]:
  """Per PPO step: mean verifier score of helpful/sneaky x correct/incorrect samples and the
  accuracy of each role (K Fig. 5). nan where a step had no such sample."""
  steps = np.unique(step)
  out: dict[str, list] = {"step": [int(s) + 1 for s in steps]}
  for name, want_role in (("helpful", role == helpful_role), ("sneaky", role != helpful_role)):
    acc, sc_c, sc_i = [], [], []
    for s in steps:
      at = (step == s) & want_role
      acc.append(float(correct[at].mean()) if at.any() else float("nan"))
      c, i = at & correct, at & ~correct
      sc_c.append(float(score[c].mean()) if c.any() else float("nan"))
      sc_i.append(float(score[i].mean()) if i.any() else float("nan"))
    out[f"{name}_accuracy"], out[f"{name}_correct_score"] = acc, sc_c
    out[f"{name}_incorrect_score"] = sc_i
  return out


def balanced_accuracy(accept: np.ndarray, correct: np.ndarray) -> float:
  """(P(accept | correct) + P(reject | incorrect)) / 2; nan if either class is empty.

  The legibility of a fixed set of samples: every sample of a fixed problem subset is
  judged, and the two classes weigh equally whatever the prover's accuracy, so the
  problems do not change from one checkpoint to the next (K's balanced pick re-selects them
  by accuracy at every checkpoint)."""
  accept, correct = np.asarray(accept, bool), np.asarray(correct, bool)
  if correct.all() or not correct.any():
    return float("nan")
  return float((accept[correct].mean() + (~accept[~correct]).mean()) / 2)


def crossplay(problem_index: np.ndarray, correct: np.ndarray, helpful: np.ndarray,
              scores: Sequence[np.ndarray]) -> dict[str, list[float]]:
  """One prover's samples (both roles) scored by each verifier in `scores`: per verifier,
  the pairwise accuracy over same-problem (correct, incorrect) pairs of both roles, and the
  share of same-problem (helpful-correct, sneaky-incorrect) pairs the verifier ranks the
  sneaky one higher (the sneaky role's fool rate, ties 1/2)."""
  hc, si = helpful & correct, ~helpful & ~correct
  pairwise, fooled = [], []
  for s in scores:
    pairwise.append(rollout.pairwise_accuracy(problem_index, correct, s)[0])
    wins = pairs = 0.0
    for p in np.unique(problem_index[si]):
      good, bad = s[hc & (problem_index == p)], s[si & (problem_index == p)]
      if len(good) and len(bad):
        diff = bad[:, None] - good[None, :]
        wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
        pairs += diff.size
    fooled.append(wins / pairs if pairs else float("nan"))
  return {"pairwise": pairwise, "sneaky_fools": fooled}


def survival(steps: Sequence[int | None], budget: int) -> tuple[list[int], list[float]]:
  """Kaplan-Meier-style survival of attacks without censoring before the budget: the share
  of attacks not yet successful after t steps, t = 0..budget (None: not found in budget)."""
  n = len(steps)
  if not n:
    return [], []
  ts = list(range(budget + 1))
  return ts, [sum(s is None or s > t for s in steps) / n for t in ts]


def best_gap(values: Sequence[float], target: float, window: int) -> float:
  """The largest mean over `window` consecutive steps of values - target (nan-aware): how
  close an attack came to its success threshold (>= 0: it reached it)."""
  v = np.asarray(values, float) - target
  if len(v) < window:
    return float("nan")
  means = [np.nanmean(v[i:i + window]) if np.isfinite(v[i:i + window]).any() else -np.inf
           for i in range(len(v) - window + 1)]
  best = max(means)
  return float(best) if np.isfinite(best) else float("nan")
