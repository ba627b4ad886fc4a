"""The debate game's parts: quote checks (incl. the known failure modes of looser checkers),
the reading world and its judge views per protocol, the judge's order-averaged decision
and loss, the debaters' reward, consultancy accuracies, and the Elo fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import debate as debate_config
from pvg_jax.config import ConfigError
from pvg_jax.debate import config as debate_validate
from pvg_jax.debate import judging
from pvg_jax.worlds.reading import passages, quotes
from pvg_jax.worlds.reading.world import ReadingWorld

PASSAGE = "ann likes red . eve owns a cat . ann lives in paris .".split()


def verdicts(argument: str) -> list[bool]:
  return [q.verified for q in quotes.find(argument.split(), PASSAGE, "<q>", "</q>")]


@pytest.mark.parametrize("argument,expected", [
    ("<q> ann lives in paris . </q>", [True]),
    ("<q> eve owns a cat </q> <q> ann likes red </q>", [True, True]),
    ("<q> . eve owns </q>", [True]),                     # verbatim across a fact boundary
    ("<q> paris is where ann lives </q>", [False]),     # paraphrase inside quote marks
    ("<q> ann lives in rome . </q>", [False]),          # invented
    ("<q> ann ... owns a cat </q>", [False]),           # fragments joined by an ellipsis
    ("<q> ann owns a cat </q>", [False]),               # the same claim without the ellipsis
    ("<q> </q>", [False]),                              # empty
    ("<q> ann likes red", [True]),                      # left open at the end: still checked
    ("<q> eve <q> owns </q>", [False]),                 # no nesting: <q> is a word inside
    ("ann likes red .", []),                            # no quote marks, no quote
])
def test_quote_verdicts(argument, expected):
  assert verdicts(argument) == expected


def test_each_fragment_is_verbatim_but_the_joined_quote_is_not():
  """The ellipsis case is the failure mode: each piece passes a per-fragment check, and the
  join asserts something the passage never says ("ann owns a cat")."""
  for fragment in (["ann"], ["owns", "a", "cat"]):
    assert quotes.contains_run(PASSAGE, fragment)
  assert verdicts("<q> ann ... owns a cat </q>") == [False]


def test_judge_view_flags_or_removes_unverified_quotes():
  arg = "x <q> ann owns a cat </q> <q> eve owns a cat . </q>".split()
  args = (arg, PASSAGE, "<q>", "</q>", "<qv>", "<qu>")
  assert quotes.judge_view(*args) == (
      "x <qu> ann owns a cat </q> <qv> eve owns a cat . </q>".split())
  assert quotes.judge_view(*args, mode="remove") == (
      "x <qu> </q> <qv> eve owns a cat . </q>".split())
  with pytest.raises(ValueError, match="quote mode"):
    quotes.judge_view(*args, mode="drop")


@pytest.fixture(scope="module")
def world():
  return ReadingWorld(debate_config.get_config("smoke").world, 0)


def words(world, ids):
  return [w for w in world.tokenizer.decode(ids) if w != "<pad>"]


def test_questions_are_answerable_and_test_names_are_unseen(world):
  for split, names in (("train", passages.TRAIN_NAMES), ("test", passages.TEST_NAMES)):
    for i in range(200):
      q = world.question(split, i)
      assert {f.name for f in q.facts} <= set(names)
      assert q.options[q.answer] == q.target.value != q.distractor.value
      assert all(f in q.facts for f in q.supporting())
      if q.key is not None:          # the key value names exactly one person
        assert sum(f.relation == q.key.relation and f.value == q.key.value
                   for f in q.facts) == 1
  assert not set(passages.TRAIN_NAMES) & set(passages.TEST_NAMES)


def test_template_arguments(world):
  """Honest: every quote verified and the supporting facts quoted. Dishonest: either all
  quotes verified but none about the asked-about person and key (misleading), or some quote
  unverified (invented); both kinds occur."""
  rng = np.random.default_rng(0)
  kinds = set()
  for i in range(300):
    q = world.question("train", i)
    for side in (0, 1):
      arg = world.encode_argument(world.template_argument(q, side, rng))
      found = world.quote_check(q, arg)
      if side == q.answer:
        assert [x.verified for x in found] == [True] * len(q.supporting())
        assert [list(world.tokenizer.decode(x.words)) for x in found] == [
            list(f.words()) for f in q.supporting()]
      else:
        all_verified = all(x.verified for x in found)
        kinds.add("misleading" if all_verified else "invented")
        if all_verified:
          quoted = {tuple(world.tokenizer.decode(x.words)) for x in found}
          assert not {tuple(f.words()) for f in q.supporting()} & quoted
  assert kinds == {"misleading", "invented"}


def test_judge_views_per_protocol_and_swap(world):
  rng = np.random.default_rng(1)
  q = world.question("train", 3)
  a = world.encode_argument(world.template_argument(q, 0, rng))
  b = world.encode_argument(world.template_argument(q, 1, rng))
  header = ["<question>", *q.question_words()]
  debate = words(world, world.judge_view("debate", q, a, b))
  assert debate[:len(header)] == header and debate.count("<arg_a>") == 1
  assert debate[len(header):len(header) + 4] == ["<a>", q.options[0], "<b>", q.options[1]]
  swapped = words(world, world.judge_view("debate", q, a, b, swap=True))
  assert swapped[len(header):len(header) + 4] == ["<a>", q.options[1], "<b>", q.options[0]]
  shown_a = debate[debate.index("<arg_a>") + 1:debate.index("<arg_b>")]
  assert swapped[swapped.index("<arg_b>") + 1:] == shown_a        # A's argument moved
  assert words(world, world.judge_view("blind", q, a, b)) == debate[:len(header) + 4]
  single_b = words(world, world.judge_view("consultancy", q, None, b))
  assert "<arg_a>" not in single_b and single_b[len(header) + 4] == "<arg_b>"
  flags = words(world, world.judge_view("flags", q, a, b))
  assert set(flags[len(header) + 4:]) <= {"<arg_a>", "<arg_b>", "<qv>", "<qu>"}
  # the judge never reads the passage: a value nobody quoted or offered does not reach it
  shown = set(words(world, a)) | set(words(world, b)) | set(q.options)
  hidden = {f.value for f in q.facts} - shown
  assert hidden and not hidden & set(debate)
  assert world.judge_views("debate", [q], [a], [b]).shape == (2, 1, world.layout.judge_len)


def test_order_averaging_removes_position_bias():
  """A judge that always prefers the first slot (any score c in both orders) decides
  nothing: d = 0, an accuracy of one half, no reward for either side."""
  scores = jnp.full((2, 5), 3.0)
  d = judging.order_averaged(scores)
  np.testing.assert_array_equal(d, 0.0)
  assert judging.accuracy(d, np.array([True, False, True, True, False])) == 0.5
  np.testing.assert_array_equal(judging.side_rewards(d, jnp.array([0, 1, 0, 1, 0])), 0.0)
  # a judge that reads the content: s(x) = 2 favours A, s(x') = -2 (A now second) -> d = 2
  np.testing.assert_allclose(judging.order_averaged(jnp.array([[2.0], [-2.0]])), [2.0])


def test_judge_loss_is_bce_of_the_averaged_logit():
  scores = jnp.array([[1.0, -0.5, 2.0], [-1.0, 0.5, 3.0]])
  a_right = jnp.array([True, False, False])
  d = (scores[0] - scores[1]) / 2
  want = optax.sigmoid_binary_cross_entropy(d, a_right.astype(jnp.float32)).mean()
  np.testing.assert_allclose(judging.judge_loss(scores, a_right), want, rtol=1e-6)
  # its gradient moves the two orders' scores in opposite directions
  g = jax.grad(lambda s: judging.judge_loss(s, a_right))(scores)
  np.testing.assert_allclose(g[0], -g[1], rtol=1e-6)


def test_debater_rewards_are_zero_sum_logit_differences():
  d = jnp.array([1.5, -0.25])
  r_a = judging.side_rewards(d, jnp.array([0, 0]))
  r_b = judging.side_rewards(d, jnp.array([1, 1]))
  np.testing.assert_allclose(r_a, d)
  np.testing.assert_allclose(r_a + r_b, 0.0)


def test_consultancy_accuracies():
  a_right = np.array([True, True, False, False])
  d_a = np.array([2.0, 1.0, 1.0, -1.0])     # judged with the consultant arguing A
  d_b = np.array([-1.0, -3.0, -2.0, -1.0])  # ... arguing B
  out = judging.consultancy_accuracies(d_a, d_b, a_right)
  # single: A-consultant right on 3 of 4, B-consultant on 2 of 4 -> (0.75 + 0.5) / 2
  assert out["single_consultancy"] == pytest.approx(0.625)
  sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
  p = (sig(d_a) + sig(d_b)) / 2
  assert out["ensembled_consultancy"] == pytest.approx(np.mean((p > 0.5) == a_right))


def test_elo_matches_a_hand_computed_tournament():
  """A beats B 3 of 4, B beats C 3 of 4, A beats C 9 of 10: exactly the Bradley-Terry
  expectations of strengths 9 : 3 : 1, so the maximum-likelihood ratings are 400 log10(3)
  = 190.85 apart, centred: (190.85, 0, -190.85)."""
  games = np.array([[0, 4, 10], [4, 0, 4], [10, 4, 0]], float)
  wins = np.array([[0, 3, 9], [1, 0, 3], [1, 1, 0]], float)
  ratings = judging.elo(wins, games, prior=0.0)
  step = 400 * np.log10(3)
  np.testing.assert_allclose(ratings, [step, 0.0, -step], atol=0.01)
  # the prior keeps a clean sweep finite, and order is kept
  sweep = judging.elo(np.array([[0, 5], [0, 0]]), np.array([[0, 5], [5, 0]]))
  assert np.isfinite(sweep).all() and sweep[0] > sweep[1]
  assert judging.elo_win_probability(step, 0.0) == pytest.approx(0.75)


def test_config_errors_name_the_key():
  cfg = debate_config.get_config("smoke")
  debate_validate.validate(cfg)
  with cfg.unlocked():
    cfg.world.quote_mode = "hide"
  with pytest.raises(ConfigError, match="world.quote_mode"):
    debate_validate.validate(cfg)
  cfg = debate_config.get_config("smoke")
  with cfg.unlocked():
    cfg.game.group_size = 1
  with pytest.raises(ConfigError, match="game.group_size"):
    debate_validate.validate(cfg)
  cfg = debate_config.get_config("smoke")
  with cfg.unlocked():
    cfg.game.ppo.adaptive_kl = True
  with pytest.raises(ConfigError, match="game.ppo.adaptive_kl"):
    debate_validate.validate(cfg)
  with pytest.raises(ValueError, match="only option is 'smoke'"):
    debate_config.get_config("tiny")


def test_rebuttal_turn_layout():
  """world.rebuttal: a rebuttal prompt shows the other side's opening after <rebut>, in the
  openings' shape; the judge reads both rebuttals, swapped with their sides."""
  cfg = debate_config.get_config("smoke").world
  with cfg.unlocked():
    cfg.rebuttal = True
  w = ReadingWorld(cfg, 0)
  rng = np.random.default_rng(2)
  q = w.question("train", 5)
  a, b = (w.encode_argument(w.template_argument(q, s, rng)) for s in (0, 1))
  opening = w.prompts([q], [0])
  rebut = w.prompts([q], [0], [b])
  assert opening.shape == rebut.shape == (1, w.layout.prompt_len)
  tail = words(w, rebut[0])
  assert tail[tail.index("<rebut>") + 1:] == words(w, w.argument_words(b))
  view = words(w, w.judge_view("debate", q, a, b, reb_a=b, reb_b=a))
  swapped = words(w, w.judge_view("debate", q, a, b, swap=True, reb_a=b, reb_b=a))
  assert view.index("<reb_a>") > view.index("<arg_b>")
  assert view[view.index("<reb_a>") + 1:view.index("<reb_b>")] == (
      swapped[swapped.index("<reb_b>") + 1:])
  sft = w.template_batch([q, q], [0, 1], rng, turns=[0, 1])
  assert "<rebut>" not in words(w, sft.tokens[0]) and "<rebut>" in words(w, sft.tokens[1])
  with pytest.raises(ValueError, match="world.rebuttal"):
    ReadingWorld(debate_config.get_config("smoke").world, 0).prompts([q], [0], [b])
