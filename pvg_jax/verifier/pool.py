"""The sample pool: the provers' solutions on the verifier split, on disk, and the verifier's
balanced draw from it (METHOD 1.1). (The PPO and evaluation samples of every round are kept
beside it, in <workdir>/rollouts/round_<i>/.)

Source j of the pool holds the samples of one prover on the verifier split: source 0 is
the initial prover, source j >= 1 the prover trained in round j - 1. Each source is one
`source_{j}.npz` written atomically (temp file + rename), so a crash never leaves half a
source, and the pool survives restarts and feeds the evaluations.

In round i the verifier trains on sources 0..i (METHOD 1.1). Every verifier step draws a
fresh balanced batch (`BalancedSampler.batch`): `batch_size` distinct problems, and for each
k solutions, k/2 correct and k/2 incorrect. For each solution a source is chosen with the
round's mixture weights, renormalized over the sources that still have an undrawn solution
of the needed correctness for that problem (a source without one cannot contribute, so its
share goes to the others for that problem only); the solution is then drawn from that
source without replacement, and with replacement only once every source has run out.
Problems lacking correct or incorrect solutions in every source are never drawn, and
counted.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from pvg_jax import rollout

FIELDS = ("problem_index", "role", "tokens", "kv_mask", "correct", "first_error", "error_type",
          "validity")


def parse_mixture(kind: str) -> str | tuple[float, ...]:
  """'equal', 'exp2', or comma-separated weights of sources 0, 1, ... ('1,1,2')."""
  if kind in ("equal", "exp2"):
    return kind
  try:
    return tuple(float(w) for w in kind.split(","))
  except ValueError:
    raise ValueError(f"mixture {kind!r}: use 'equal', 'exp2' or comma-separated weights, "
                     "one per round (e.g. '1,1,2')") from None


def mixture_weights(kind: str, n_sources: int) -> np.ndarray:
  """Normalized weights of sources 0..n_sources-1 (see parse_mixture)."""
  parsed = parse_mixture(kind)
  if parsed == "equal":
    w = np.ones(n_sources)
  elif parsed == "exp2":
    w = 2.0 ** np.arange(n_sources)
  else:
    w = np.asarray(parsed)[:n_sources]
    if len(w) < n_sources:
      raise ValueError(f"mixture {kind!r} lists fewer than {n_sources} sources")
  return w / w.sum()


@dataclasses.dataclass
class VerifierData:
  """k solutions per problem, balanced. tokens/kv_mask: [N, k, T]; correct: [N, k]."""

  problem_index: np.ndarray
  tokens: np.ndarray
  kv_mask: np.ndarray
  correct: np.ndarray
  source: np.ndarray


class BalancedSampler:
  """Balanced draws from pool sources (see the module docstring), indexed once per round."""

  def __init__(self, data: list[dict[str, np.ndarray]], sources: list[int],
               weights: np.ndarray, problems: np.ndarray):
    self.data, self.sources, self.weights = data, sources, np.asarray(weights, float)
    by_source = [_index(d, problems) if w > 0 else {} for d, w in zip(data, self.weights)]
    # rows[p][want] = list over sources of that source's rows of problem p with correct=want
    self.rows, self.skipped_no_correct, self.skipped_no_incorrect = {}, 0, 0
    for p in problems:
      entry = {want: [b.get((int(p), want), []) for b in by_source] for want in (True, False)}
      if not any(entry[True]):
        self.skipped_no_correct += 1
      elif not any(entry[False]):
        self.skipped_no_incorrect += 1
      else:
        self.rows[int(p)] = entry
    self.problems = np.array(sorted(self.rows), int)

  def __len__(self) -> int:
    return len(self.problems)

  def _pick(self, lists: list[list[int]], n: int, rng: np.random.Generator):
    """n (source, row) picks from per-source row lists, without replacement until every
    source has run out."""
    left = [list(rows) for rows in lists]
    picks = []
    for _ in range(n):
      if not any(left):
        left = [list(rows) for rows in lists]
      avail = [j for j, rows in enumerate(left) if rows]
      w = self.weights[avail]
      j = avail[rng.choice(len(avail), p=w / w.sum())]
      picks.append((j, left[j].pop(rng.integers(len(left[j])))))
    return picks

  def batch(self, rng: np.random.Generator, batch_size: int, k: int) -> VerifierData:
    """`batch_size` distinct problems (all of them, with repeats, if fewer), k balanced
    solutions each."""
    if k % 2:
      raise ValueError(f"k={k} solutions per problem must be even (half correct)")
    chosen = rng.choice(self.problems, size=batch_size, replace=len(self) < batch_size)
    picks = [self._pick(self.rows[int(p)][True], k // 2, rng)
             + self._pick(self.rows[int(p)][False], k // 2, rng) for p in chosen]
    tokens = np.stack([np.stack([self.data[j]["tokens"][r] for j, r in pk]) for pk in picks])
    kv = np.stack([np.stack([self.data[j]["kv_mask"][r] for j, r in pk]) for pk in picks])
    correct = np.tile(np.repeat([True, False], k // 2), (len(chosen), 1))
    source = np.array([[self.sources[j] for j, _ in pk] for pk in picks])
    return VerifierData(chosen, tokens, kv, correct, source)


class SamplePool:
  def __init__(self, directory: str | pathlib.Path):
    self.directory = pathlib.Path(directory)
    self.directory.mkdir(parents=True, exist_ok=True)

  def path(self, source: int) -> pathlib.Path:
    return self.directory / f"source_{source}.npz"

  def has(self, source: int) -> bool:
    return self.path(source).exists()

  def add(self, source: int, ro: rollout.Rollouts) -> None:
    rollout.save_arrays(self.path(source), {f: getattr(ro, f) for f in FIELDS})

  def load(self, source: int) -> dict[str, np.ndarray]:
    if not self.has(source):
      raise FileNotFoundError(f"sample pool source {source} missing: {self.path(source)}")
    with np.load(self.path(source)) as data:
      return {f: data[f] for f in FIELDS}

  def sampler(self, sources: list[int], weights: np.ndarray,
              problems: np.ndarray) -> BalancedSampler:
    """Balanced draws from `sources` with mixture `weights` over `problems`."""
    return BalancedSampler([self.load(s) for s in sources], sources, weights, problems)


def _index(data: dict[str, np.ndarray], problems: np.ndarray) -> dict:
  """(problem, correct) -> row indices, for the requested problems."""
  wanted = set(int(p) for p in problems)
  out: dict = {}
  for row, (p, c) in enumerate(zip(data["problem_index"], data["correct"])):
    if int(p) in wanted:
      out.setdefault((int(p), bool(c)), []).append(row)
  return out
