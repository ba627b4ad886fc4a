"""Evaluation measures and judges on hand-made inputs (exact expectations)."""

import numpy as np
import pytest

from pvg_jax.evals import attacks, judges, measures
from pvg_jax.report import data
from pvg_jax.worlds.arith import checker, flaws, problems
from pvg_jax.worlds.arith import world as arith_world


@pytest.fixture(scope="module")
def world(smoke_config):
  return arith_world.ArithWorld(smoke_config.world, 0)


def _canonical_words(p: problems.Problem) -> list[str]:
  return problems.canonical_solution(p.canonical_steps(), p.answer).split()


def test_balanced_pick_follows_k_protocol():
  index = np.array([0, 0, 0, 1, 1, 2, 2, 3])
  correct = np.array([1, 0, 1, 1, 1, 0, 0, 1], bool)
  pick = measures.balanced_pick(index, correct, np.random.default_rng(0))
  assert (pick.problems, pick.dropped_all_correct, pick.dropped_all_incorrect) == (1, 2, 1)
  assert sorted(correct[pick.rows]) == [False, True]
  assert set(index[pick.rows]) == {0}


def test_best_of_n_perfect_inverted_and_uninformative_verifiers():
  rng = np.random.default_rng(0)
  index = np.repeat(np.arange(20), 8)
  correct = np.tile([True] * 4 + [False] * 4, 20)
  perfect, _ = measures.best_of_n(index, correct, correct.astype(float), 8, 10, rng)
  inverted, eligible = measures.best_of_n(index, correct, -correct.astype(float), 8, 10, rng)
  constant, _ = measures.best_of_n(index, correct, np.zeros(len(index)), 4, 400, rng)
  assert (perfect, inverted, eligible) == (1.0, 0.0, 20)
  assert 0.45 < constant < 0.55                      # ties are broken at random
  frac, eligible = measures.best_of_n(index, correct, correct.astype(float), 10, 1, rng)
  assert np.isnan(frac) and eligible == 0            # no problem has 5 of each
  with pytest.raises(ValueError, match="even"):
    measures.best_of_n(index, correct, correct, 3, 1, rng)


def test_flaw_stats_are_exact(world):
  p = world.problem("test", 0)
  flawed = [flaws.inject(p, np.random.default_rng(s), max_number=99) for s in range(6)]
  results = [checker.check(p, f.text().split()) for f in flawed]
  stats = measures.flaw_stats(results)
  assert stats["min_validity"] == 0.0 and stats["single_flaw"] == 1.0
  n = [r.num_steps for r in results]
  assert stats["mean_validity"] == pytest.approx(np.mean([(k - 1) / k for k in n]))
  assert stats["first_error_position"] == pytest.approx(
      np.mean([f.flaw_step / (k - 1) for f, k in zip(flawed, n)]))
  assert sum(stats["error_types"].values()) == pytest.approx(1.0)


def test_step_curves_split_roles_and_correctness():
  step = np.array([0, 0, 0, 0, 1, 1])
  role = np.array([0, 0, 1, 1, 0, 1])
  correct = np.array([1, 0, 0, 1, 1, 0], bool)
  score = np.array([2.0, -1.0, 3.0, 5.0, 1.0, 4.0])
  c = measures.step_curves(step, role, correct, score, helpful_role=0)
  assert c["step"] == [1, 2]
  assert c["helpful_accuracy"] == [0.5, 1.0] and c["sneaky_accuracy"] == [0.5, 0.0]
  assert c["sneaky_incorrect_score"] == [3.0, 4.0]
  assert np.isnan(c["helpful_incorrect_score"][1])


def test_checker_budget_fits_every_canonical_solution(world):
  budget = judges.canonical_budget(world)
  judge = judges.BudgetedChecker(budget, "reject")
  for i in range(100):
    p = world.problem("test", i)
    words = _canonical_words(p)
    v = judge.judge(p, words)
    assert v.accept and v.finished and v.time == len(words) + 1
  assert budget == 8 * world.spec.max_steps + 3    # steps with ";", "answer v", <eos>


def test_checker_rejects_at_the_flaw_and_falls_back_when_out_of_time(world):
  p = next(q for q in world.problems("test", range(50)) if len(q.derived) >= 2)
  f = flaws.inject(p, np.random.default_rng(1), max_number=99)
  words = f.text().split()
  budget = judges.canonical_budget(world)
  v = judges.BudgetedChecker(budget, "accept").judge(p, words)
  assert not v.accept and v.finished and v.time == 8 * (f.flaw_step + 1)
  # a convoluted correct solution: the same steps written twice over runs out of budget
  long = _canonical_words(p)[:-2] * 3 + _canonical_words(p)[-2:]
  for fallback in ("accept", "reject"):
    v = judges.BudgetedChecker(budget, fallback).judge(p, long)
    assert v.accept == (fallback == "accept") and not v.finished and v.time == budget
  coin = judges.BudgetedChecker(budget, "coin")
  assert coin.judge(p, long) == coin.judge(p, long)      # deterministic per solution
  assert not coin.judge(p, _canonical_words(p)[:-2]).accept    # no answer clause
  with pytest.raises(ValueError, match="fallback"):
    judges.BudgetedChecker(10, "guess")


def test_attack_success_rules():
  ok = attacks.exploit_succeeded
  assert ok("goodhart", [0.1, 0.2], [0.0, 0.0], target=9.0)      # accuracy < 0.2 is enough
  assert not ok("goodhart", [0.2, 0.25], [9.0, 9.0], target=0.0)
  for reward in ("src", "cgc"):
    assert ok(reward, [0.0, 0.05], [1.0, 0.5], target=0.75)      # >= 95% wrong, scores reach
    assert not ok(reward, [0.0, 0.2], [1.0, 1.0], target=0.0)    # too often correct
    assert not ok(reward, [0.0, 0.0], [0.5, 0.6], target=0.75)   # scores below the target
    assert not ok(reward, [0.0, 0.0], [float("nan")] * 2, target=0.0)
    assert not ok(reward, [0.0, 0.0], [1.0, 1.0], target=float("nan"))


def test_best_threshold_separates_and_balances():
  scores = np.array([0.1, 0.2, 0.3, 2.0, 2.1, 2.2, 2.3, 2.4])
  labels = np.array([0, 0, 0, 1, 1, 1, 1, 1], bool)
  t = judges.best_threshold(scores, labels)
  assert 0.3 < t < 2.0
  assert judges.best_threshold(scores + 5, labels) == pytest.approx(t + 5)


def test_report_lookup_never_wraps_around():
  run = {"summary": {"rounds": [{"a": 1}, {"a": 2}]}, "flaws": {"by_round": {"-1": {"a": 0}}}}
  assert data.get(run, "summary", "rounds", 1, "a") == 2
  assert np.isnan(data.get(run, "summary", "rounds", data.INIT, "a"))   # not the last round
  assert data.get(run, "flaws", "by_round", data.INIT, "a") == 0       # JSON string keys
  assert data.get(run, "missing", default=None) is None


def test_pairwise_gain_is_the_paired_difference_with_a_clustered_error():
  from pvg_jax import rollout
  rng = np.random.default_rng(0)
  index = np.repeat(np.arange(40), 6)
  correct = np.tile([True, True, True, False, False, False], 40)
  old = rng.normal(size=len(index)) + 0.3 * correct
  new = old + 0.5 * correct * rng.random(len(index))
  gain, se = rollout.pairwise_gain(index, correct, new, old)
  acc_new = rollout.pairwise_accuracy(index, correct, new)[0]
  acc_old = rollout.pairwise_accuracy(index, correct, old)[0]
  assert np.isclose(gain, acc_new - acc_old) and gain > 0
  # the clustered error matches the spread of the gain over resampled problems
  boots = []
  for _ in range(400):
    pick = rng.choice(40, size=40)
    rows = np.concatenate([np.flatnonzero(index == p) for p in pick])
    relabel = np.repeat(np.arange(40), 6)
    boots.append(rollout.pairwise_gain(relabel, correct[rows], new[rows], old[rows])[0])
  assert 0.7 < se / np.std(boots) < 1.4, (se, np.std(boots))
  assert rollout.pairwise_gain(index, correct, old, old) == (0.0, 0.0)


def test_balanced_accuracy_weighs_both_classes_equally():
  accept = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
  correct = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
  # 3 of 4 correct accepted, 3 of 4 incorrect rejected
  assert measures.balanced_accuracy(accept, correct) == pytest.approx(0.75)
  # the same verdict rule on a more accurate prover's samples gives the same number
  more = np.concatenate([correct, np.ones(8, bool)])
  assert measures.balanced_accuracy(np.concatenate([accept, np.tile([1, 1, 1, 0], 2)]),
                                    more) == pytest.approx(0.75)
  assert np.isnan(measures.balanced_accuracy(accept, np.ones(8, bool)))


def test_crossplay_pairwise_and_sneaky_fool_rates():
  index = np.array([0, 0, 0, 1, 1, 1])
  helpful = np.array([1, 1, 0, 1, 1, 0], bool)
  correct = np.array([1, 0, 0, 1, 0, 0], bool)
  perfect = correct.astype(float)
  # a verifier that prefers the sneaky solutions: sneaky-incorrect above helpful-correct
  fooled = np.array([0.5, 0.0, 1.0, 0.5, 0.0, 1.0])
  out = measures.crossplay(index, correct, helpful, [perfect, fooled])
  assert out["pairwise"] == [1.0, 0.5]        # fooled: beats the helpful-incorrect only
  assert out["sneaky_fools"] == [0.0, 1.0]


def test_attack_survival_and_best_gap():
  ts, alive = measures.survival([3, None, 1, 3], budget=4)
  assert ts == [0, 1, 2, 3, 4] and alive == [1.0, 0.75, 0.75, 0.25, 0.25]
  assert measures.survival([], 4) == ([], [])
  # values - 1 = -2, 0, 1, nan; windows of 2: means -1, 0.5, 1 (the nan is skipped)
  assert measures.best_gap([-1.0, 1.0, 2.0, np.nan], 1.0, 2) == pytest.approx(1.0)
  assert measures.best_gap([-1.0, 1.0, 2.0, 0.0], 1.0, 2) == pytest.approx(0.5)
  assert np.isnan(measures.best_gap([1.0], 0.0, 2))
