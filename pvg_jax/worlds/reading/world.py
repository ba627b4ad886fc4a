"""The reading world as the debate game sees it: token arrays for debaters and judges.

Layouts (fixed shapes; prompts and judge inputs left-padded, arguments right-padded):

    debater  [pad.., <passage> passage.., <question> question.., <a> o1 <b> o2, SIDE]
             [argument.. <eos> pad..]                               SIDE = <side_a>|<side_b>
    judge    [pad.., <question> question.., <a> o1 <b> o2, <arg_a> view of A.., <arg_b>
              view of B..]

The judge never sees the passage; quotes reach it through `quotes.judge_view`. Judge views
per protocol (`views`): debate and double consultancy (both arguments), consultancy (one
argument, in its side's slot), blind (question and options only) and flags (each side's
sequence of quote verdicts, no words). Every view also exists with the two sides swapped
(options and slots exchanged), which is how judgments are averaged over both orders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ml_collections
import numpy as np

from pvg_jax.worlds.arith.world import Batch, solution_mask
from pvg_jax.worlds.reading import passages, quotes

PAD, EOS = "<pad>", "<eos>"
PASSAGE, QUESTION, OPT_A, OPT_B = "<passage>", "<question>", "<a>", "<b>"
SIDES = ("<side_a>", "<side_b>")
ARG_A, ARG_B = "<arg_a>", "<arg_b>"
OPEN, CLOSE, VERIFIED, UNVERIFIED = "<q>", "</q>", "<qv>", "<qu>"
ELLIPSIS = "..."
SPECIALS = (PAD, EOS, PASSAGE, QUESTION, OPT_A, OPT_B, *SIDES, ARG_A, ARG_B, OPEN, CLOSE,
            VERIFIED, UNVERIFIED, ELLIPSIS)
VIEWS = ("debate", "consultancy", "blind", "flags")
DISHONEST = ("misleading", "invented")


class Tokenizer:
  def __init__(self):
    values = tuple(v for r in passages.RELATIONS for v in passages.VALUES[r])
    self.vocab = (*SPECIALS, *dict.fromkeys(passages.WORDS), *passages.SYLLABLES, *values)
    self.ids = {w: i for i, w in enumerate(self.vocab)}
    self.size = len(self.vocab)
    self.pad_id, self.eos_id = self.ids[PAD], self.ids[EOS]

  def encode(self, words: Sequence[str]) -> list[int]:
    return [self.ids[w] for w in words]

  def decode(self, ids: Sequence[int]) -> list[str]:
    return [self.vocab[int(i)] for i in ids]


@dataclasses.dataclass(frozen=True)
class Layout:
  prompt_len: int
  argument_len: int
  judge_len: int

  @property
  def seq_len(self) -> int:
    return self.prompt_len + self.argument_len


def _left_pad(ids: Sequence[int], length: int, pad: int, what: str) -> np.ndarray:
  if len(ids) > length:
    raise ValueError(f"{what} of {len(ids)} tokens does not fit its {length} columns")
  return np.array([pad] * (length - len(ids)) + list(ids), np.int32)


class ReadingWorld:
  """Questions, debater prompts, template arguments and judge views for one config."""

  def __init__(self, cfg: ml_collections.ConfigDict, seed: int):
    self.spec = passages.Spec(cfg.people, cfg.p_two_hop)
    self.cfg, self.seed = cfg, seed
    self.tokenizer = tok = Tokenizer()
    if cfg.quote_mode not in quotes.MODES:
      raise ValueError(f"world.quote_mode={cfg.quote_mode!r}: expected one of {quotes.MODES}")
    passage = self.spec.people * len(passages.RELATIONS) * 6           # <= 6 words a fact
    question = 11                                        # "where does the person who ..."
    self.layout = Layout(prompt_len=1 + passage + 1 + question + 4 + 1,
                         argument_len=cfg.argument_len,
                         judge_len=1 + question + 4 + 2 * (1 + cfg.argument_len))
    self._q = {w: tok.ids[w] for w in (OPEN, CLOSE, VERIFIED, UNVERIFIED)}

  # -- questions and debaters ----------------------------------------------------------------

  def question(self, split: str, index: int) -> passages.Question:
    return passages.generate(self.spec, self.seed, split, index)

  def questions(self, split: str, indices: Sequence[int]) -> list[passages.Question]:
    return [self.question(split, int(i)) for i in indices]

  def _header(self, q: passages.Question, options: Sequence[str]) -> list[str]:
    return [QUESTION, *q.question_words(), OPT_A, options[0], OPT_B, options[1]]

  def prompts(self, qs: Sequence[passages.Question], sides: Sequence[int]) -> np.ndarray:
    """[B, prompt_len]: the debater (or consultant) of `sides[i]` (0: A, 1: B) on qs[i]."""
    return np.stack([_left_pad(self.tokenizer.encode(
        [PASSAGE, *q.passage_words(), *self._header(q, q.options), SIDES[s]]),
        self.layout.prompt_len, self.tokenizer.pad_id, "a debater prompt")
        for q, s in zip(qs, sides)])

  def sequences(self, prompts: np.ndarray, arguments: np.ndarray) -> Batch:
    tokens = np.concatenate([prompts, arguments], axis=1).astype(np.int32)
    return Batch(tokens, tokens != self.tokenizer.pad_id,
                 solution_mask(arguments, self.tokenizer.eos_id))

  def template_argument(self, q: passages.Question, side: int,
                        rng: np.random.Generator) -> list[str]:
    """The initial debater's argument (SFT data). For the right option: quotes of the
    supporting facts. For the wrong one, a dishonest argument drawn 50/50: "misleading"
    (true facts about the distractor's person, all verified, but not the person asked
    about) or "invented" (a made-up fact: the asked-about fact with the wrong value for one
    hop; the distractor's person given the question's key value for two hops)."""
    if side == q.answer:
      facts = q.supporting()
    else:
      d = q.distractor
      kind = DISHONEST[int(rng.integers(2))]
      if kind == "misleading":
        facts = (d,) if q.key is None else (self._fact_of(q, d.name, q.key.relation), d)
      elif q.key is None:
        facts = (passages.Fact(q.target.name, d.relation, d.value),)
      else:
        facts = (passages.Fact(d.name, q.key.relation, q.key.value), d)
    words = [w for f in facts for w in (OPEN, *f.words(), CLOSE)]
    return [*words, EOS]

  @staticmethod
  def _fact_of(q: passages.Question, name: str, relation: str) -> passages.Fact:
    return next(f for f in q.facts if f.name == name and f.relation == relation)

  def encode_argument(self, words: Sequence[str]) -> np.ndarray:
    ids = self.tokenizer.encode(words)[:self.layout.argument_len]
    return np.array(ids + [self.tokenizer.pad_id] * (self.layout.argument_len - len(ids)),
                    np.int32)

  def template_batch(self, qs: Sequence[passages.Question], sides: Sequence[int],
                     rng: np.random.Generator) -> Batch:
    args = np.stack([self.encode_argument(self.template_argument(q, s, rng))
                     for q, s in zip(qs, sides)])
    return self.sequences(self.prompts(qs, sides), args)

  # -- what the judge sees ---------------------------------------------------------------------

  def argument_words(self, argument_ids: Sequence[int]) -> list[int]:
    """An argument's tokens up to (not including) its <eos> or padding."""
    out = []
    for t in argument_ids:
      if t in (self.tokenizer.eos_id, self.tokenizer.pad_id):
        break
      out.append(int(t))
    return out

  def quote_check(self, q: passages.Question, argument_ids) -> list[quotes.Quote]:
    return quotes.find(self.argument_words(argument_ids), self.tokenizer.encode(
        q.passage_words()), self._q[OPEN], self._q[CLOSE])

  def _shown(self, q: passages.Question, argument_ids) -> list[int]:
    i = self._q
    return quotes.judge_view(self.argument_words(argument_ids),
                             self.tokenizer.encode(q.passage_words()), i[OPEN], i[CLOSE],
                             i[VERIFIED], i[UNVERIFIED], self.cfg.quote_mode)

  def _flags(self, q: passages.Question, argument_ids) -> list[int]:
    return [self._q[VERIFIED] if x.verified else self._q[UNVERIFIED]
            for x in self.quote_check(q, argument_ids)]

  def judge_view(self, view: str, q: passages.Question, arg_a=None, arg_b=None,
                 swap: bool = False) -> np.ndarray:
    """[judge_len] one judge input. arg_a / arg_b: argument ids for option A / B (None: no
    argument for that side). swap=True exchanges the options and the two slots, so the
    judge's first-slot logit is then about the original option B."""
    if view not in VIEWS:
      raise ValueError(f"judge view {view!r}: expected one of {VIEWS}")
    options = q.options[::-1] if swap else q.options
    first, second = (arg_b, arg_a) if swap else (arg_a, arg_b)
    ids = self.tokenizer.encode(self._header(q, options))
    if view != "blind":
      show = self._flags if view == "flags" else self._shown
      for marker, arg in ((ARG_A, first), (ARG_B, second)):
        if arg is not None:
          ids += [self.tokenizer.ids[marker], *show(q, arg)]
    return _left_pad(ids, self.layout.judge_len, self.tokenizer.pad_id, "a judge input")

  def judge_views(self, view: str, qs: Sequence[passages.Question], args_a=None,
                  args_b=None) -> np.ndarray:
    """[2, B, judge_len]: each question's view in the given order ([0]) and swapped ([1])."""
    a = [None] * len(qs) if args_a is None else args_a
    b = [None] * len(qs) if args_b is None else args_b
    return np.stack([np.stack([self.judge_view(view, q, x, y, swap)
                               for q, x, y in zip(qs, a, b)]) for swap in (False, True)])
