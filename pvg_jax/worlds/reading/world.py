"""The reading world as the debate game sees it: token arrays for debaters and judges.

Layouts (fixed shapes; prompts and judge inputs left-padded, arguments right-padded):

    debater  [pad.., <passage> passage.., <question> question.., <a> o1 <b> o2, SIDE]
             [argument.. <eos> pad..]                               SIDE = <side_a>|<side_b>
    judge    [pad.., <question> question.., <a> o1 <b> o2, <arg_a> view of A.., <arg_b>
              view of B..]

With `world.rebuttal` (the optional second turn), a rebuttal prompt is the opening prompt
followed by `<rebut>` and the other side's opening, [.., SIDE, <rebut>, opponent..]; openings
are left-padded to the same length, so both turns share one shape. The judge then also
reads `<reb_a> view of A's rebuttal.. <reb_b> view of B's..`.

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
REBUT, REB_A, REB_B = "<rebut>", "<reb_a>", "<reb_b>"
OPEN, CLOSE, VERIFIED, UNVERIFIED = "<q>", "</q>", "<qv>", "<qu>"
ELLIPSIS = "..."
SPECIALS = (PAD, EOS, PASSAGE, QUESTION, OPT_A, OPT_B, *SIDES, ARG_A, ARG_B, OPEN, CLOSE,
            VERIFIED, UNVERIFIED, ELLIPSIS, REBUT, REB_A, REB_B)
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
    self.rebuttal = bool(cfg.get("rebuttal", False))
    turns = 2 if self.rebuttal else 1
    self.layout = Layout(
        prompt_len=1 + passage + 1 + question + 4 + 1 + (turns - 1) * (1 + cfg.argument_len),
        argument_len=cfg.argument_len,
        judge_len=1 + question + 4 + 2 * turns * (1 + cfg.argument_len))
    self._q = {w: tok.ids[w] for w in (OPEN, CLOSE, VERIFIED, UNVERIFIED)}

  # -- questions and debaters ----------------------------------------------------------------

  def question(self, split: str, index: int) -> passages.Question:
    return passages.generate(self.spec, self.seed, split, index)

  def questions(self, split: str, indices: Sequence[int]) -> list[passages.Question]:
    return [self.question(split, int(i)) for i in indices]

  def _header(self, q: passages.Question, options: Sequence[str]) -> list[str]:
    return [QUESTION, *q.question_words(), OPT_A, options[0], OPT_B, options[1]]

  def prompts(self, qs: Sequence[passages.Question], sides: Sequence[int],
              opponents=None) -> np.ndarray:
    """[B, prompt_len]: the debater (or consultant) of `sides[i]` (0: A, 1: B) on qs[i];
    with `opponents` (argument ids per row, world.rebuttal), the rebuttal turn's prompt."""
    if opponents is not None and not self.rebuttal:
      raise ValueError("rebuttal prompts need world.rebuttal = True")
    rows = []
    for i, (q, s) in enumerate(zip(qs, sides)):
      ids = self.tokenizer.encode([PASSAGE, *q.passage_words(), *self._header(q, q.options),
                                   SIDES[s]])
      if opponents is not None:
        ids += [self.tokenizer.ids[REBUT], *self.argument_words(opponents[i])]
      rows.append(_left_pad(ids, self.layout.prompt_len, self.tokenizer.pad_id,
                            "a debater prompt"))
    return np.stack(rows)

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
                     rng: np.random.Generator, turns: Sequence[int] | None = None) -> Batch:
    """Template arguments of `sides` on `qs` as SFT rows. turns[i] = 1 (world.rebuttal): a
    rebuttal row, whose prompt shows a template opening of the other side and whose target
    is a fresh template argument of its own side (it restates its case)."""
    args = np.stack([self.encode_argument(self.template_argument(q, s, rng))
                     for q, s in zip(qs, sides)])
    opponents = None
    if turns is not None and any(turns):
      opponents = [self.encode_argument(self.template_argument(q, 1 - s, rng)) if t else
                   np.array([], np.int32) for q, s, t in zip(qs, sides, turns)]
    return self.sequences(self._turn_prompts(qs, sides, opponents, turns), args)

  def _turn_prompts(self, qs, sides, opponents, turns) -> np.ndarray:
    if opponents is None:
      return self.prompts(qs, sides)
    openings, rebuttals = self.prompts(qs, sides), self.prompts(qs, sides, opponents)
    return np.where(np.asarray(turns, bool)[:, None], rebuttals, openings)

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
                 swap: bool = False, reb_a=None, reb_b=None) -> np.ndarray:
    """[judge_len] one judge input. arg_a / arg_b: argument ids for option A / B (None: no
    argument for that side); reb_a / reb_b: their rebuttals (world.rebuttal). swap=True
    exchanges the options and the slots, so the judge's first-slot logit is then about the
    original option B."""
    if view not in VIEWS:
      raise ValueError(f"judge view {view!r}: expected one of {VIEWS}")
    options = q.options[::-1] if swap else q.options
    order = (lambda x, y: (y, x)) if swap else (lambda x, y: (x, y))  # noqa: E731
    ids = self.tokenizer.encode(self._header(q, options))
    if view != "blind":
      show = self._flags if view == "flags" else self._shown
      shown = (*zip((ARG_A, ARG_B), order(arg_a, arg_b)),
               *zip((REB_A, REB_B), order(reb_a, reb_b)))
      for marker, arg in shown:
        if arg is not None:
          ids += [self.tokenizer.ids[marker], *show(q, arg)]
    return _left_pad(ids, self.layout.judge_len, self.tokenizer.pad_id, "a judge input")

  def judge_views(self, view: str, qs: Sequence[passages.Question], args_a=None,
                  args_b=None, rebs_a=None, rebs_b=None) -> np.ndarray:
    """[2, B, judge_len]: each question's view in the given order ([0]) and swapped ([1])."""
    none = [None] * len(qs)
    cols = [none if x is None else x for x in (args_a, args_b, rebs_a, rebs_b)]
    return np.stack([np.stack([self.judge_view(view, q, a, b, swap, ra, rb)
                               for q, a, b, ra, rb in zip(qs, *cols)])
                     for swap in (False, True)])
