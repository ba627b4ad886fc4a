"""Sample prover solutions for problems and roles, grade and step-check them, score them.

The data flow of every phase that needs prover samples: prompts -> jitted KV-cache sampler
-> host-side grader/checker -> jitted verifier scores. Batches are padded to one fixed
size, so each jitted function compiles once per run.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Sequence

import jax
import numpy as np

from pvg_jax import cli, files, preemption
from pvg_jax.worlds.arith import world as arith_world


@dataclasses.dataclass
class Rollouts:
  """N sampled solutions. tokens: [N, T] full sequences in the shared layout."""

  problem_index: np.ndarray   # [N] int, index into the split
  role: np.ndarray            # [N] int, ROLE_HELPFUL / ROLE_SNEAKY
  tokens: np.ndarray          # [N, T] int32
  kv_mask: np.ndarray         # [N, T] bool
  solution_mask: np.ndarray   # [N, S] bool
  logprobs: np.ndarray        # [N, S] float32, sampling log-probs
  correct: np.ndarray         # [N] bool, grader verdict
  first_error: np.ndarray     # [N] int, -1 when every step is valid
  error_type: np.ndarray      # [N] str, checker's error type ('ok' if none)
  validity: np.ndarray        # [N] float, fraction of valid clauses


def save_arrays(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  """Write arrays to `path` (.npz) atomically: a crash never leaves a partial file."""
  files.atomic_save_npz(path, arrays)


def both_roles(n_problems: int, per_role: int) -> tuple[np.ndarray, np.ndarray]:
  """(problem_index, role) for problems 0..n-1, `per_role` samples of each role each."""
  index = np.repeat(np.arange(n_problems), 2 * per_role)
  roles = np.tile(np.repeat([arith_world.ROLE_HELPFUL, arith_world.ROLE_SNEAKY], per_role),
                  n_problems)
  return index, roles


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
  """x padded to n rows by repeating its last row (fixed batch shapes)."""
  return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)]) if len(x) < n else x


def sample_rollouts(world: arith_world.ArithWorld, sample_fn: Callable, params,
                    split: str, problem_index: Sequence[int], roles: Sequence[int],
                    key: jax.Array, batch_size: int, progress=None) -> Rollouts:
  """Sample one solution per (problem_index[i], roles[i]), in fixed-size batches.

  sample_fn(params, prompts [batch_size, P], key) -> sampler.Samples (jitted once).
  The key of batch b is fold_in(key, b), so results do not depend on anything else.
  """
  problem_index, roles = np.asarray(problem_index), np.asarray(roles)
  probs = world.problems(split, problem_index)
  prompts = world.prompts(probs, roles)
  outs = []
  for b, start in enumerate(range(0, len(prompts), batch_size)):
    if preemption.requested():
      raise cli.Preempted("SIGTERM during sampling; run the same command to resume")
    chunk = pad_rows(prompts[start:start + batch_size], batch_size)
    outs.append(sample_fn(params, chunk, jax.random.fold_in(key, b)))
    if progress is not None:
      progress.update(1)
  outs = jax.device_get(outs)
  n = len(prompts)
  sols = np.concatenate([o.tokens for o in outs])[:n]
  batch = world.sequences(prompts, sols)
  checks = [world.check(p, s) for p, s in zip(probs, sols)]
  return Rollouts(
      problem_index=problem_index, role=roles, tokens=batch.tokens, kv_mask=batch.kv_mask,
      solution_mask=np.concatenate([o.mask for o in outs])[:n],
      logprobs=np.concatenate([o.logprobs for o in outs])[:n],
      correct=np.array([c.correct for c in checks]),
      first_error=np.array([-1 if c.first_error is None else c.first_error for c in checks]),
      error_type=np.array([c.error_type for c in checks]),
      validity=np.array([c.validity for c in checks]))


def score_sequences(world: arith_world.ArithWorld, score_fn: Callable, params,
                    tokens: np.ndarray, batch_size: int) -> np.ndarray:
  """Verifier scores [N] of full sequences (role token hidden), in fixed-size batches."""
  view = world.verifier_view(tokens)
  mask = view != world.tokenizer.pad_id
  outs = [score_fn(params, pad_rows(view[s:s + batch_size], batch_size),
                   pad_rows(mask[s:s + batch_size], batch_size))
          for s in range(0, len(view), batch_size)]
  return np.concatenate(jax.device_get(outs))[:len(view)]


def pairwise_accuracy(problem_index: np.ndarray, correct: np.ndarray,
                      scores: np.ndarray) -> tuple[float, int, int]:
  """P(score(correct) > score(incorrect)) over same-problem pairs (ties 1/2).

  Returns (accuracy, number of pairs, number of problems with at least one pair).
  """
  wins, pairs, problems = 0.0, 0, 0
  for p in np.unique(problem_index):
    sel = problem_index == p
    good, bad = scores[sel & correct], scores[sel & ~correct]
    if len(good) and len(bad):
      diff = good[:, None] - bad[None, :]
      wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
      pairs += diff.size
      problems += 1
  return (wins / pairs if pairs else float("nan")), pairs, problems


def pairwise_gain(problem_index: np.ndarray, correct: np.ndarray, scores_new: np.ndarray,
                  scores_old: np.ndarray) -> tuple[float, float]:
  """Paired change of pairwise accuracy from scores_old to scores_new on the same samples,
  and its standard error with pairs clustered by problem.

  With W_p the pairs and D_p = wins_new_p - wins_old_p of problem p (H problems with pairs),
  the gain is G = sum_p D_p / sum_p W_p (exactly the difference of the two pooled
  accuracies) and its cluster-robust standard error (the ratio estimator's linearization)
  is sqrt(H / (H - 1) * sum_p (D_p - G W_p)^2) / sum_p W_p. Both verifiers are judged on
  the same pairs, so the shared difficulty of a problem cancels and the error is much
  smaller than either accuracy's.
  """
  d, w = [], []
  for p in np.unique(problem_index):
    sel = problem_index == p
    good, bad = sel & correct, sel & ~correct
    if good.any() and bad.any():
      wins = [((s[good][:, None] - s[bad][None, :]) > 0).sum()
              + 0.5 * ((s[good][:, None] - s[bad][None, :]) == 0).sum()
              for s in (scores_new, scores_old)]
      d.append(float(wins[0] - wins[1]))
      w.append(float(good.sum() * bad.sum()))
  if len(d) < 2:
    return float("nan"), float("nan")
  d, w = np.array(d), np.array(w)
  gain = d.sum() / w.sum()
  h = len(d)
  return float(gain), float(np.sqrt(h / (h - 1) * np.square(d - gain * w).sum()) / w.sum())


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """Area under the ROC curve of `scores` for binary `labels` (ties 1/2); nan if one class."""
  labels = np.asarray(labels, bool)
  pos, neg = scores[labels], scores[~labels]
  if not len(pos) or not len(neg):
    return float("nan")
  order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
  ranks = np.empty(len(order))
  values = np.concatenate([pos, neg])[order]
  ranks[order] = _average_ranks(values)
  return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(sorted_values: np.ndarray) -> np.ndarray:
  ranks = np.arange(1, len(sorted_values) + 1, dtype=float)
  _, start, counts = np.unique(sorted_values, return_index=True, return_counts=True)
  for s, c in zip(start, counts):
    ranks[s:s + c] = ranks[s:s + c].mean()
  return ranks
