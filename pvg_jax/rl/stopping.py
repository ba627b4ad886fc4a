"""Stopping rules of a prover phase (METHOD 1.2), as a small resumable host-side monitor.

- src: stop when the mean verifier score of sneaky-incorrect solutions reaches that of
  helpful-correct ones (score parity). (K also reports when sneaky accuracy falls below
  10%: `sneaky_below_step` is the first step at which the window's sneaky accuracy is
  below SNEAKY_ACCURACY_MARK; it is recorded, it does not stop the round.)
- cgc: score parity AND sneaky accuracy < 5%.
- goodhart: training accuracy < 0.2 averaged over the last 80 RL steps.
- correctness: the step budget only.
The step budget applies to every reward. Parity and accuracy are judged on a moving window
of the last `window` steps, so one noisy batch does not end a round.
"""

from __future__ import annotations

import dataclasses

import numpy as np

GOODHART_WINDOW = 80
GOODHART_ACCURACY = 0.2
CGC_SNEAKY_ACCURACY = 0.05
SNEAKY_ACCURACY_MARK = 0.1


@dataclasses.dataclass
class StepStats:
  """What one PPO step saw: sums and counts so windows average exactly."""

  helpful_correct_score: float = 0.0
  helpful_correct_n: int = 0
  sneaky_incorrect_score: float = 0.0
  sneaky_incorrect_n: int = 0
  sneaky_correct_n: int = 0
  sneaky_n: int = 0
  correct_n: int = 0
  n: int = 0

  @classmethod
  def from_samples(cls, scores, correct, helpful) -> StepStats:
    scores, correct, helpful = (np.asarray(x) for x in (scores, correct, helpful))
    hc, si = helpful & correct, ~helpful & ~correct
    return cls(float(scores[hc].sum()), int(hc.sum()), float(scores[si].sum()), int(si.sum()),
               int((~helpful & correct).sum()), int((~helpful).sum()), int(correct.sum()),
               len(correct))


class StopMonitor:
  """Feeds on StepStats; `update` returns the reason to stop or None. `state()` is a JSON
  dict from which the monitor resumes exactly."""

  def __init__(self, reward: str, max_steps: int, window: int, state: dict | None = None):
    self.reward, self.max_steps, self.window = reward, max_steps, window
    state = state or {}
    self.history: list[StepStats] = [StepStats(**h) for h in state.get("history", [])]
    self.sneaky_below_step: int | None = state.get("sneaky_below_step")

  def state(self) -> dict:
    keep = max(self.window, GOODHART_WINDOW)
    return {"history": [dataclasses.asdict(h) for h in self.history[-keep:]],
            "sneaky_below_step": self.sneaky_below_step}

  def _sum(self, steps: int) -> StepStats:
    total = StepStats()
    for h in self.history[-steps:]:
      for f in dataclasses.fields(StepStats):
        setattr(total, f.name, getattr(total, f.name) + getattr(h, f.name))
    return total

  def summary(self) -> dict[str, float]:
    """Window means: helpful-correct and sneaky-incorrect scores, sneaky accuracy."""
    s = self._sum(self.window)
    nan = float("nan")
    return {
        "helpful_correct_score": s.helpful_correct_score / s.helpful_correct_n
        if s.helpful_correct_n else nan,
        "sneaky_incorrect_score": s.sneaky_incorrect_score / s.sneaky_incorrect_n
        if s.sneaky_incorrect_n else nan,
        "sneaky_accuracy": s.sneaky_correct_n / s.sneaky_n if s.sneaky_n else nan,
        "train_accuracy": s.correct_n / s.n if s.n else nan,
    }

  def update(self, stats: StepStats, step: int) -> str | None:
    self.history.append(stats)
    w = self.summary()
    if (self.sneaky_below_step is None and len(self.history) >= self.window
        and w["sneaky_accuracy"] < SNEAKY_ACCURACY_MARK):
      self.sneaky_below_step = step
    parity = (len(self.history) >= self.window
              and w["sneaky_incorrect_score"] >= w["helpful_correct_score"])
    if self.reward == "src":
      if parity:
        return "score_parity"
    elif self.reward == "cgc":
      if parity and w["sneaky_accuracy"] < CGC_SNEAKY_ACCURACY:
        return "score_parity_and_sneaky_below_5pct"
    elif self.reward == "goodhart" and len(self.history) >= GOODHART_WINDOW:
      recent = self._sum(GOODHART_WINDOW)
      if recent.correct_n / max(recent.n, 1) < GOODHART_ACCURACY:
        return "accuracy_below_0.2_over_80_steps"
    if step >= self.max_steps:
      return "step_budget"
    return None
