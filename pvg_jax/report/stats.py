"""Intervals over seeds that mean what their label says, and paired effects.

A percentile bootstrap over a handful of seeds is no 95% interval: with 3 seeds each
extreme value keeps resampling mass 1/27 > 2.5%, so the "interval" is the range of the
seeds, which covers the mean about 75% of the time. With n seeds (n small) the honest
interval for a mean is Student's t:

    mean +- t_{1 - a/2, n - 1} * s / sqrt(n)                  (s: the seeds' sample std)

A seed's initial players move every measure of that seed together (their spread swamps
effects of a few points), so effects are measured *paired*: per seed, the game's value
minus the baseline's (both from that seed's initial players), or a round's value minus the
initial players' value, and the t-interval is taken over those differences, d_i = a_i - b_i:

    mean(d) +- t_{1 - a/2, n - 1} * s_d / sqrt(n)

The minimum detectable effect of such a paired comparison (two-sided level a, power 1 - b),
given the std of the differences s_d expected from earlier runs, is

    MDE = (t_{1 - a/2, n - 1} + t_{1 - b, n - 1}) * s_d / sqrt(n)

(the noncentral-t power computed with central quantiles, the usual planning rule).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Interval:
  """A mean over seeds with its t-interval; `values` are the per-seed values (or paired
  differences) it was computed from, nan where a seed had none."""

  mean: float
  low: float
  high: float
  values: tuple[float, ...]
  level: float = LEVEL

  @property
  def n(self) -> int:
    return sum(math.isfinite(v) for v in self.values)

  def fmt(self, digits: int = 3, sign: bool = False) -> str:
    """'m [lo, hi]' (one value: just it; none: 'n/a'); sign=True writes +/- on the mean."""
    if not math.isfinite(self.mean):
      return "n/a"
    m = f"{self.mean:+.{digits}f}" if sign else f"{self.mean:.{digits}f}"
    if self.n <= 1:
      return m
    return f"{m} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

  @property
  def excludes_zero(self) -> bool:
    return self.n > 1 and (self.low > 0 or self.high < 0)


def _finite(values: Sequence[float | None]) -> tuple[float, ...]:
  return tuple(float(v) if v is not None and math.isfinite(float(v)) else math.nan
               for v in values)


def t_interval(values: Sequence[float | None], level: float = LEVEL) -> Interval:
  """Mean and Student-t interval of the finite values (see the module docstring)."""
  clean = _finite(values)
  x = np.array([v for v in clean if math.isfinite(v)])
  if not len(x):
    return Interval(math.nan, math.nan, math.nan, clean, level)
  mean = float(x.mean())
  if len(x) == 1:
    return Interval(mean, mean, mean, clean, level)
  half = float(scipy_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
  return Interval(mean, mean - half, mean + half, clean, level)


def paired(a: Sequence[float | None], b: Sequence[float | None],
           level: float = LEVEL) -> Interval:
  """t-interval of the per-seed differences a_i - b_i (seeds where both are finite)."""
  if len(a) != len(b):
    raise ValueError(f"paired values need one per seed on both sides, got {len(a)} and "
                     f"{len(b)}")
  return t_interval([x - y for x, y in zip(_finite(a), _finite(b))], level)


def min_detectable_effect(sd: float, n: int, level: float = LEVEL, power: float = 0.8
                          ) -> float:
  """The smallest true mean difference that a paired t-test over n seeds detects with
  probability `power` at two-sided `level`, when the differences have std `sd`."""
  if n < 2:
    return math.inf
  df = n - 1
  return float((scipy_stats.t.ppf(0.5 + level / 2, df) + scipy_stats.t.ppf(power, df))
               * sd / math.sqrt(n))
