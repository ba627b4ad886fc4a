"""Solution styles of the arith world (worlds/arith/styles.py) and what they cost the
budgeted checker: hand-computed renderings, verdicts and costs, and properties over
thousands of generated problems."""

import collections
import json
import subprocess
import sys

import numpy as np
import pytest

from configs import arith
from pvg_jax.evals import judges
from pvg_jax.worlds.arith import checker, flaws, problems, styles, tokenizer
from pvg_jax.worlds.arith import world as arith_world
from tests.conftest import REPO
from tests.test_arith_world import HAND


def test_hand_problem_in_each_style():
  steps = HAND.canonical_steps()
  assert (styles.render(HAND, steps, 17, "full")
          == "ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17")
  assert styles.render(HAND, steps, 17, "terse") == "ben = 12 ; cat = 17 ; answer 17"
  assert styles.render(HAND, steps, 17, "merged") == "cat = 3 * 4 + 5 = 17 ; answer 17"
  assert (styles.render(HAND, steps, 17, "verbose")
          == "ann has 4 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17")
  with pytest.raises(ValueError, match="unknown style"):
    styles.render(HAND, steps, 17, "poetic")


@pytest.mark.parametrize("solution, first_error, error_type, correct", [
    ("ben = 12 ; cat = 17 ; answer 17", None, "ok", True),
    ("ben = 13 ; cat = 18 ; answer 18", 0, "arith", False),        # builds on its claim
    ("ben = 12 ; cat = 18 ; answer 18", 1, "arith", False),
    ("dan = 12 ; cat = 17 ; answer 17", 0, "ungrounded", True),
    ("cat = 17 ; answer 17", 0, "misread", True),                  # ben never claimed
    ("ben = x ; cat = 17 ; answer 17", 0, "format", True),
    ("cat = 3 * 4 + 5 = 17 ; answer 17", None, "ok", True),
    ("cat = 4 * 3 + 5 = 17 ; answer 17", None, "ok", True),        # first fact commuted
    ("cat = 3 * 4 + 5 = 18 ; answer 18", 0, "arith", False),
    ("cat = 3 * 4 - 5 = 7 ; answer 7", 0, "misread", False),       # second operation
    ("cat = 3 * 9 + 5 = 32 ; answer 32", 0, "misread", False),     # distractor operand
    ("cat = 3 * 4 + 6 = 18 ; answer 18", 0, "ungrounded", False),
    ("ben = 3 * 4 + 5 = 17 ; answer 17", 0, "misread", True),      # ben's fact starts a chain
    ("cat = 3 * 4 + 5 = 17 ; answer 12", 1, "misread", False),     # the hidden result is known
    ("ben = 12 ; cat = 12 + 5 = 17 ; answer 17", None, "ok", True),   # styles mix freely
    ("ann has 4 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", None, "ok", True),
    ("ann has 4 ; ben = 3 * 4 = 12 ; ben has 12 ; cat = 12 + 5 = 17 ; answer 17", None, "ok",
     True),
    ("ann has 5 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", 0, "misread", True),
    ("ben has 12 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", 0, "ungrounded", True),
    ("eve has 9 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", 0, "ungrounded", True),
    ("ann has x ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", 0, "format", True),
    ("ben = 3 * 4 = 13 ; ben has 13 ; cat = 13 + 5 = 18 ; answer 18", 0, "arith", False),
])
def test_checker_reads_terse_and_merged_clauses(solution, first_error, error_type, correct):
  result = checker.check(HAND, solution.split())
  assert (result.first_error, result.error_type, result.correct) == (
      first_error, error_type, correct)


def test_every_style_of_every_solution_is_judged_like_the_full_one():
  """Canonical steps in any style are valid and correct; a flaw-injected solution keeps
  exactly one invalid clause in any style."""
  spec = problems.WorldSpec()
  seen = collections.Counter()
  for i in range(1500):
    p = problems.generate(spec, 0, "test", i)
    flawed = flaws.inject(p, np.random.default_rng(i), max_number=99)
    for style in styles.STYLES:
      words = styles.render(p, p.canonical_steps(), p.answer, style).split()
      result = checker.check(p, words)
      assert result.correct and result.error_type == "ok", (style, words)
      seen[style, styles.style_of(checker.clauses(words))] += 1
      bad = checker.check(p, styles.render(p, flawed.steps, flawed.answer, style).split())
      assert not bad.correct and sum(not v for v in bad.valid) == 1, (style, bad)
  assert seen["full", "full"] == seen["terse", "terse"] == seen["verbose", "verbose"] == 1500
  # merged needs two chained steps, else the solution falls back to full clauses
  assert seen["merged", "merged"] > 1000 and seen["merged", "merged"] + seen[
      "merged", "full"] == 1500


def test_style_of_a_written_solution():
  of = lambda text: styles.style_of(checker.clauses(text.split()))  # noqa: E731
  assert of("ben = 3 * 4 = 12 ; answer 12") == "full"
  assert of("ben = 12 ; cat = 17 ; answer 17") == "terse"
  assert of("cat = 3 * 4 + 5 = 17 ; dan = 17 + 1 = 18 ; answer 18") == "merged"
  assert of("ben = 12 ; cat = 12 + 5 = 17 ; answer 17") == "mixed"
  assert of("ben 12 ; answer 12") == "mixed"
  assert of("answer 12") == "none"
  assert of("ann has 4 ; ben = 3 * 4 = 12 ; answer 12") == "verbose"
  assert of("ann has 4 ; ben = 12 ; answer 12") == "mixed"


def test_every_style_fits_the_layout():
  cfg = arith.get_config("styles")
  with cfg.unlocked():
    cfg.world.styles, cfg.world.style_weights = styles.STYLES, (1.0,) * len(styles.STYLES)
  world = arith_world.ArithWorld(cfg.world, 0)
  plain = arith_world.ArithWorld(arith.get_config("").world, 0)
  assert world.layout.solution_len == plain.layout.solution_len + 4 * cfg.world.max_steps
  for p in world.problems("test", range(300)):
    for style in styles.STYLES:
      tokenizer.encode_solution(world.tokenizer, world.layout,
                                styles.render(p, p.canonical_steps(), p.answer, style))


def test_a_single_style_world_draws_nothing():
  """With world.styles = ("full",) the solutions and the random stream are exactly the
  single-style world's (defaults and caches made before styles stay valid)."""
  cfg = arith.get_config("")
  world = arith_world.ArithWorld(cfg.world, 0)
  rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
  for i in range(20):
    p = world.problem("test", i)
    assert world.solution_text(p, 0, rng_a) == problems.canonical_solution(
        p.canonical_steps(), p.answer)
    assert world.solution_text(p, 1, rng_a) == flaws.inject(
        p, rng_b, max_number=cfg.world.max_number).text()
  assert rng_a.random() == rng_b.random()


def test_a_styled_world_writes_each_style_for_both_roles():
  world = arith_world.ArithWorld(arith.get_config("styles").world, 0)
  rng = np.random.default_rng(0)
  counts = collections.Counter()
  for i in range(600):
    p = world.problem("prover", i)
    if len(p.derived) < 3:
      continue
    for role in (0, 1):
      text = world.solution_text(p, role, rng)
      counts[role, styles.style_of(checker.clauses(text.split()))] += 1
      world.tokenizer.encode(text)                 # every style is in the vocabulary
  for role in (0, 1):
    drawn = world.styles
    shares = [counts[role, s] / sum(counts[role, t] for t in drawn) for s in drawn]
    assert all(0.2 < x < 0.45 for x in shares), (role, shares)


def test_clause_costs_and_a_budget_that_binds_for_its_share():
  effort = (("terse", 6), ("merged", 8))
  judge = judges.BudgetedChecker(100, "reject", effort)
  steps = HAND.canonical_steps()
  cost = {s: judge.cost(styles.render(HAND, steps, 17, s).split()) for s in styles.STYLES}
  # full 2 x (7 + 1); terse 2 x (3 + 1 + 6); merged 9 + 1 + 8; verbose: full + "ann has 4"
  # (3 + 1, nothing hidden); answer clause 2 + 1
  assert cost == {"full": 19, "terse": 23, "merged": 21, "verbose": 23}
  v = judges.BudgetedChecker(20, "reject", effort).judge(HAND, "ben = 12 ; cat = 17 ; answer 17"
                                                         .split())
  assert not v.finished and v.time == 20                 # the terse one runs out at 20
  cfg = arith.get_config("styles")
  world = arith_world.ArithWorld(cfg.world, 0)
  judge = judges.make_checker(cfg.evals, world)
  assert dict(judge.effort) == {"terse": 6, "merged": 8}
  rng = np.random.default_rng(judges.JUDGE_STREAM)
  costs = np.array([judge.cost(world.solution_text(p, 0, rng).split())
                    for p in world.problems("test", range(512))])
  share = cfg.evals.checker_budget_share
  assert np.mean(costs > judge.budget) <= share < np.mean(costs > judge.budget - 1)
  # the single-style default keeps the longest canonical solution as its budget
  plain = arith.get_config("")
  assert judges.make_checker(plain.evals, arith_world.ArithWorld(plain.world, 0)).budget == (
      judges.canonical_budget(arith_world.ArithWorld(plain.world, 0)))


@pytest.mark.slow
def test_survey_of_a_styled_world(tmp_path):
  """pvg-survey end to end at smoke size: trains the initial players of a styled world,
  writes survey.json/.md with every role's style shares summing to 1 and every style's
  generator pairs scored, before and after a short correctness probe."""
  out = subprocess.run([sys.executable, "-m", "pvg_jax.evals.survey", "--config",
                        str(REPO / "configs" / "arith.py") + ":smoke,styles", "--workdir",
                        str(tmp_path), "--problems", "16", "--samples", "2", "--probe",
                        "correctness", "--probe_steps", "2"],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
  assert out.returncode == 0, out.stderr[-2000:]
  result = json.loads((tmp_path / "survey.json").read_text())
  for role in ("helpful", "sneaky"):
    assert sum(r[f"{role}_share"] for r in result["samples"].values()) == pytest.approx(1.0)
  assert set(result["generated"]) == {"full", "terse", "merged"}   # the styles option
  assert all(0.0 <= r["verifier_pairwise"] <= 1.0 for r in result["generated"].values())
  assert result["checker_effort"] == {"terse": 6, "merged": 8}
  assert "| style (generator-written) |" in (tmp_path / "survey.md").read_text()
  after = result["after_probe"]
  assert (after["probe"], after["steps"]) == ("correctness", 2)
  assert sum(r["helpful_share"] for r in after["samples"].values()) == pytest.approx(1.0)
  assert after["generated"] == result["generated"]          # the verifier did not move
  bad = subprocess.run([sys.executable, "-m", "pvg_jax.evals.survey", "--config",
                        str(REPO / "configs" / "gsm8k.py") + ":smoke", "--workdir",
                        str(tmp_path / "g")], capture_output=True, text=True, timeout=300,
                       cwd=REPO)
  assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
  typo = subprocess.run([sys.executable, "-m", "pvg_jax.evals.survey", "--config",
                         str(REPO / "configs" / "arith.py") + ":smoke,styles", "--workdir",
                         str(tmp_path / "t"), "--probe", "zeroo"], capture_output=True,
                        text=True, timeout=300, cwd=REPO)
  assert typo.returncode == 2 and "--probe: unknown 'zeroo'" in typo.stderr, typo.stderr
  assert len(typo.stderr.strip().splitlines()) == 1 and not (tmp_path / "t").exists()


def test_the_terse_world_budget_splits_full_from_terse_solutions():
  """configs/arith.py:terse: a 3-step full solution fits the checker's budget, the same
  steps written terse do not (and 4-step solutions exceed it in both styles)."""
  cfg = arith.get_config("terse")
  world = arith_world.ArithWorld(cfg.world, 0)
  judge = judges.make_checker(cfg.evals, world)
  for p in world.problems("test", range(200)):
    cost = {s: judge.cost(styles.render(p, p.canonical_steps(), p.answer, s).split())
            for s in ("full", "terse")}
    n = len(p.derived)
    assert (cost["full"] <= judge.budget) == (n <= 3), (n, cost)
    assert (cost["terse"] <= judge.budget) == (n <= 2), (n, cost)


def test_style_breakdown_of_written_solutions():
  """survey.style_breakdown (the evaluations' styles part): per style of given solutions,
  the share, the accuracy and the checker's over-budget share, against what the terse
  world's budget implies (3-step full solutions fit, 3-step terse ones do not)."""
  from pvg_jax import rollout
  from pvg_jax.evals import survey
  cfg = arith.get_config("terse")
  world = arith_world.ArithWorld(cfg.world, 0)
  judge = judges.make_checker(cfg.evals, world)
  probs = [p for p in world.problems("test", range(200)) if len(p.derived) == 3][:10]
  rows = [(p, s, answer) for p in probs for s, answer in
          (("full", p.answer), ("terse", p.answer), ("terse", p.answer), ("terse", -1))]
  index = np.array([world.problems("test", range(200)).index(p) for p, _, _ in rows])
  solutions = np.stack([tokenizer.encode_solution(
      world.tokenizer, world.layout, styles.render(p, p.canonical_steps(), a, s) if a >= 0
      else styles.render(p, p.canonical_steps(), p.answer + 1, s)) for p, s, a in rows])
  roles = np.full(len(rows), arith_world.ROLE_HELPFUL)
  batch = world.sequences(world.prompts([p for p, _, _ in rows], roles), solutions)
  checks = [world.check(p, s) for (p, _, _), s in zip(rows, solutions)]
  ro = rollout.Rollouts(index, roles, batch.tokens, batch.kv_mask, batch.loss_mask,
                        np.zeros(solutions.shape, np.float32),
                        np.array([c.correct for c in checks]), np.zeros(len(rows), int),
                        np.array(["ok"] * len(rows)), np.ones(len(rows)))
  out = survey.style_breakdown(world, judge, "test", ro)
  assert out["full"]["share"] == pytest.approx(0.25) and out["terse"]["share"] == 0.75
  assert out["full"]["accuracy"] == 1.0 and out["terse"]["accuracy"] == pytest.approx(2 / 3)
  assert out["full"]["over_budget"] == 0.0 and out["terse"]["over_budget_correct"] == 1.0
  assert out["merged"]["share"] == 0.0 and out["merged"]["accuracy"] is None
