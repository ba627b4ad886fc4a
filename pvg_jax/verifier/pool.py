"""The sample pool: the provers' solutions on the verifier split, on disk, and the verifier's
balanced draw from it (METHOD 1.1). (The PPO and evaluation samples of every round are kept
beside it, in <workdir>/rollouts/round_<i>/.)

Source j of the pool holds the samples of one prover on the verifier split: source 0 is
the initial prover, source j >= 1 the prover trained in round j - 1. Each source is one
`source_{j}.npz` written atomically (temp file + rename), so a crash never leaves half a
source, and the pool survives restarts and feeds the evaluations.

In round i the verifier trains on sources 0..i. For every verifier-split problem, k
solutions are drawn, k/2 correct and k/2 incorrect, each from a source chosen with the
round's mixture weights among the sources that have such a solution for that problem.
Problems lacking correct or incorrect solutions in every source are skipped and counted.
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
  skipped_no_correct: int
  skipped_no_incorrect: int


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

  def draw(self, sources: list[int], weights: np.ndarray, problems: np.ndarray, k: int,
           rng: np.random.Generator) -> VerifierData:
    """Balanced k-per-problem draw (k even) from `sources` with mixture `weights`."""
    if k % 2:
      raise ValueError(f"k={k} solutions per problem must be even (half correct)")
    data = [self.load(s) for s in sources]
    by_source = [_index(d, problems) for d in data]
    rows, skipped_c, skipped_i = [], 0, 0
    for p in problems:
      picks = []
      for want in (True, False):
        avail = [(j, by_source[j].get((int(p), want), [])) for j in range(len(sources))]
        avail = [(j, rows_) for j, rows_ in avail if rows_]
        if not avail:
          break
        w = np.array([weights[j] for j, _ in avail])
        for _ in range(k // 2):
          j, rows_ = avail[rng.choice(len(avail), p=w / w.sum())]
          picks.append((j, rows_[rng.integers(len(rows_))]))
      else:
        rows.append((p, picks))
        continue
      if want:
        skipped_c += 1
      else:
        skipped_i += 1
    if not rows:
      empty = np.zeros((0, k, data[0]["tokens"].shape[1]))
      return VerifierData(np.zeros(0, int), empty.astype(np.int32), empty.astype(bool),
                          np.zeros((0, k), bool), np.zeros((0, k), int), skipped_c, skipped_i)
    tokens = np.stack([np.stack([data[j]["tokens"][r] for j, r in picks]) for _, picks in rows])
    kv = np.stack([np.stack([data[j]["kv_mask"][r] for j, r in picks]) for _, picks in rows])
    correct = np.tile(np.repeat([True, False], k // 2), (len(rows), 1))
    source = np.array([[sources[j] for j, _ in picks] for _, picks in rows])
    return VerifierData(np.array([p for p, _ in rows]), tokens, kv, correct, source,
                        skipped_c, skipped_i)


def _index(data: dict[str, np.ndarray], problems: np.ndarray) -> dict:
  """(problem, correct) -> row indices, for the requested problems."""
  wanted = set(int(p) for p in problems)
  out: dict = {}
  for row, (p, c) in enumerate(zip(data["problem_index"], data["correct"])):
    if int(p) in wanted:
      out.setdefault((int(p), bool(c)), []).append(row)
  return out
