"""Intervals over seeds and paired effects (pvg_jax/report/stats.py): hand-computed values
and coverage by simulation, where the old percentile bootstrap falls short."""

import math

import numpy as np
import pytest

from pvg_jax.report import stats


def test_t_interval_by_hand():
  # mean 0.5, s = 0.1, n = 3: half-width t_{0.975, 2} * 0.1 / sqrt(3) = 4.3027 * 0.057735
  t = stats.t_interval([0.4, 0.5, 0.6, None, float("nan")])
  assert t.n == 3 and t.mean == pytest.approx(0.5)
  assert t.high - t.mean == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
  assert t.fmt() == "0.500 [0.252, 0.748]"
  one = stats.t_interval([0.7])
  assert (one.mean, one.low, one.high, one.fmt()) == (0.7, 0.7, 0.7, "0.700")
  assert stats.t_interval([]).fmt() == "n/a"


def test_paired_differences_remove_what_the_seeds_share():
  """Large seed-to-seed spread, small consistent effect: the unpaired intervals overlap,
  the paired interval excludes zero."""
  base = np.array([0.42, 0.48, 0.45, 0.51, 0.39])
  game = base + np.array([0.031, 0.029, 0.035, 0.027, 0.030])
  d = stats.paired(game, base)
  assert d.mean == pytest.approx(0.0304) and d.excludes_zero
  assert d.fmt(sign=True).startswith("+0.030 [")
  a, b = stats.t_interval(game), stats.t_interval(base)
  assert a.low < b.high                               # unpaired: indistinguishable
  # a seed missing on one side is dropped from the pairs, not misaligned
  d = stats.paired([0.5, None, 0.7], [0.4, 0.6, 0.5])
  assert d.n == 2 and d.values[1] != d.values[1] and d.mean == pytest.approx(0.15)
  with pytest.raises(ValueError, match="one per seed"):
    stats.paired([1.0], [1.0, 2.0])


def test_t_intervals_cover_at_their_level_where_the_bootstrap_does_not():
  rng = np.random.default_rng(0)
  trials, n = 4000, 3
  x = rng.normal(0.0, 1.0, (trials, n))
  covered = np.mean([(lambda t: t.low <= 0.0 <= t.high)(stats.t_interval(row)) for row in x])
  assert abs(covered - 0.95) < 0.015
  # the percentile bootstrap of 3 values is about their range: coverage 1 - 2 / 2^3 = 0.75
  in_range = np.mean((x.min(axis=1) <= 0.0) & (0.0 <= x.max(axis=1)))
  assert abs(in_range - 0.75) < 0.02


def test_min_detectable_effect():
  # (t_{0.975, 4} + t_{0.8, 4}) * sd / sqrt(5) = (2.7764 + 0.9410) * sd / 2.2361
  assert stats.min_detectable_effect(0.02, 5) == pytest.approx(3.7174 * 0.02 / math.sqrt(5),
                                                               rel=1e-3)
  assert stats.min_detectable_effect(0.02, 10) < stats.min_detectable_effect(0.02, 5)
  assert stats.min_detectable_effect(0.02, 1) == math.inf
  # simulated power at the MDE is about 0.8 (a little above: the central-t planning rule)
  rng = np.random.default_rng(1)
  mde = stats.min_detectable_effect(1.0, 5)
  hits = np.mean([stats.t_interval(rng.normal(mde, 1.0, 5)).excludes_zero
                  for _ in range(3000)])
  assert 0.75 < hits < 0.9
