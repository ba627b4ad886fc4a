"""The arith world: generator, tokenizer, checker, flaw injector (hand-computed cases)."""

import collections

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

from pvg_jax.worlds.arith import checker, flaws, problems, tokenizer
from pvg_jax.worlds.arith import world as arith_world

SPEC = problems.WorldSpec()
TOK = tokenizer.Tokenizer()

# ann has 4 apples . ben has 3 times as many apples as ann . eve has 9 pears .
# cat has 5 more apples than ben . how many apples does cat have ?
HAND = problems.Problem(
    facts=(problems.Fact("ann", "start", "apples", value=4),
           problems.Fact("ben", "times", "apples", k=3, ref="ann"),
           problems.Fact("eve", "distractor", "pears", value=9),
           problems.Fact("cat", "more", "apples", k=5, ref="ben")),
    question="cat", item="apples", answer=17)


def test_hand_problem_text_and_solution():
  assert HAND.text() == ("ann has 4 apples . ben has 3 times as many apples as ann . "
                         "eve has 9 pears . cat has 5 more apples than ben . "
                         "how many apples does cat have ?")
  steps = HAND.canonical_steps()
  assert (problems.canonical_solution(steps, 17)
          == "ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17")
  assert HAND.numbers == {4, 3, 9, 5}


@pytest.mark.parametrize("solution, first_error, error_type, correct", [
    ("ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", None, "ok", True),
    ("ben = 4 * 3 = 12 ; cat = 5 + 12 = 17 ; answer 17", None, "ok", True),   # commuted
    ("ben = 3 * 4 = 13 ; cat = 13 + 5 = 18 ; answer 18", 0, "arith", False),
    ("ben = 3 * 4 = 12 ; cat = 12 + 5 = 16 ; answer 16", 1, "arith", False),
    ("ben = 3 * 9 = 27 ; cat = 27 + 5 = 32 ; answer 32", 0, "misread", False),  # distractor
    ("ben = 3 + 4 = 7 ; cat = 7 + 5 = 12 ; answer 12", 0, "misread", False),    # operation
    ("ben = 3 * 4 = 12 ; cat = 12 - 5 = 7 ; answer 7", 1, "misread", False),
    ("ben = 3 * 4 = 12 ; cat = 12 + 6 = 18 ; answer 18", 1, "ungrounded", False),
    ("dan = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17", 0, "ungrounded", True),
    ("cat = 12 + 5 = 17 ; answer 17", 0, "ungrounded", True),                   # skipped ben
    ("ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 12", 2, "misread", False),
    ("ben = 3 * 4 = 12 ; cat = 12 + 5 = 17", 2, "format", False),               # no answer
    ("ben = 3 * 4 ; cat = 12 + 5 = 17 ; answer 17", 0, "format", True),
    ("ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17 ; answer 17", 3, "format", True),
    ("", 0, "format", False),
])
def test_checker_hand_cases(solution, first_error, error_type, correct):
  result = checker.check(HAND, solution.split())
  assert result.first_error == first_error
  assert result.error_type == error_type
  assert result.correct == correct


def test_checker_arith_step_builds_on_claimed_value():
  result = checker.check(HAND, "ben = 3 * 4 = 13 ; cat = 13 + 5 = 18 ; answer 18".split())
  assert result.valid == (False, True, True)
  assert result.validity == pytest.approx(2 / 3)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(TOK.vocab + ("<unk>", "123", "")), max_size=60))
def test_checker_never_raises_on_arbitrary_tokens(words):
  result = checker.check(HAND, words)
  assert len(result.valid) == len(result.errors) >= 1
  assert result.error_type in (*checker.ERROR_TYPES, "ok")


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.lists(st.integers(-5, TOK.size + 5), max_size=60))
def test_checker_never_raises_on_arbitrary_ids(ids):
  checker.check(HAND, TOK.solution_words(np.array(ids, np.int64)))


def test_generation_is_deterministic():
  a = [problems.generate(SPEC, 7, "prover", i).text() for i in range(50)]
  b = [problems.generate(SPEC, 7, "prover", i).text() for i in range(50)]
  c = [problems.generate(SPEC, 8, "prover", i).text() for i in range(50)]
  assert a == b
  assert a != c


def test_splits_are_disjoint_on_100k_problems():
  texts = {}
  n = 100_000 // 3 + 1
  for split in problems.SPLITS:
    for seed in (0, 1):  # disjoint even across seeds: split is a function of the text
      texts[split, seed] = {problems.generate(SPEC, seed, split, i).text()
                            for i in range(n // 2 + 1)}
  for s1 in problems.SPLITS:
    for s2 in problems.SPLITS:
      if s1 < s2:
        for seed1 in (0, 1):
          for seed2 in (0, 1):
            assert not texts[s1, seed1] & texts[s2, seed2]
  assert sum(len(t) for t in texts.values()) > 90_000


def test_world_knobs_are_respected():
  spec = problems.WorldSpec(min_steps=3, max_steps=3, max_distractors=0, operations=("more",))
  for i in range(300):
    p = problems.generate(spec, 0, "test", i)
    assert len(p.derived) == 3
    assert all(f.kind == "more" for f in p.derived)
    assert all(0 <= v <= spec.max_value for v in p.true_values().values())
    assert not [f for f in p.facts if f.kind == "distractor"]


@pytest.mark.parametrize("digits", [False, True])
def test_tokenizer_round_trip(digits):
  tok = tokenizer.Tokenizer(99, digits)
  for i in range(300):
    p = problems.generate(SPEC, 0, "prover", i)
    text = p.text() + " " + problems.canonical_solution(p.canonical_steps(), p.answer)
    assert tok.decode(tok.encode(text)) == text
  assert len(tok.encode("ann has 17 apples")) == (5 if digits else 4)


def test_tokenizer_rejects_unknown_words():
  with pytest.raises(ValueError, match="'banana'"):
    TOK.encode("ann has 3 banana")
  with pytest.raises(ValueError, match="'100'"):
    TOK.encode("answer 100")


def test_flaw_injector_is_named_exactly_by_the_checker_on_5000_problems():
  types = collections.Counter()
  for i in range(5000):
    p = problems.generate(SPEC, 3, "verifier", i)
    flawed = flaws.inject(p, np.random.default_rng(i), max_number=99)
    result = checker.check(p, flawed.text().split())
    assert result.first_error == flawed.flaw_step, (p.text(), flawed.text())
    assert result.error_type == flawed.flaw_type, (p.text(), flawed.text())
    assert sum(not v for v in result.valid) == 1       # exactly one flaw, rest consistent
    assert not result.correct and flawed.answer != p.answer
    types[flawed.flaw_type] += 1
  assert types["arith"] > 1500 and types["misread"] > 1500


def test_layout_fits_every_problem_and_masks_solution(smoke_config):
  world = arith_world.ArithWorld(smoke_config.world, seed=0)
  batch = world.sft_batch("prover", range(64), [0, 1] * 32, np.random.default_rng(0))
  p = world.layout.prompt_len
  assert batch.tokens.shape == (64, world.layout.seq_len)
  assert (batch.tokens[:, p - 1] == world.tokenizer.ids[tokenizer.SEP]).all()
  assert (batch.tokens[:, p - 2] == np.where(np.arange(64) % 2, world.tokenizer.role_id(
      "sneaky"), world.tokenizer.role_id("helpful"))).all()
  assert batch.loss_mask.shape == (64, world.layout.solution_len)
  eos_cols = np.argmax(batch.tokens == world.tokenizer.eos_id, axis=1)
  assert (batch.loss_mask.sum(1) == eos_cols - p + 1).all()
  assert (batch.loss_mask == (np.arange(world.layout.solution_len) <= (eos_cols - p)[:, None])
          ).all()
  view = world.verifier_view(batch.tokens)
  assert (view[:, p - 2] == world.tokenizer.ids[tokenizer.VERIFY]).all()
