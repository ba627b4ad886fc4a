"""Generated reading comprehension: short passages of facts and two-option questions.

A passage states three relations of each of `people` people, in shuffled order:

    ka bo lives in paris . mi den owns a cat . ka bo likes red . mi den lives in rome . ...

Values are distinct per relation within a passage, so "the person who owns a cat" is one
person. A question needs one fact (one hop) or two (two hops):

    where does ka bo live ?                             (one hop: ka bo's lives-fact)
    where does the person who owns a cat live ?         (two hops: the owns-fact, then the
                                                         owner's lives-fact)

with two options, the answer and a distractor: the same relation's value of another person
of the passage, so a dishonest argument always has a true but irrelevant fact to quote.
Names are two syllables; splits differ in their names: "train" draws from TRAIN_NAMES,
"test" from TEST_NAMES, the syllable pairs never used in training (held-out questions about
people never seen in training, written with syllables that were: a model can copy a name it
never saw, as a reader can). Everything is a pure function of (seed, split, index).
"""

from __future__ import annotations

import dataclasses

import numpy as np

FIRST = ("ka", "lo", "mi", "ta", "ru", "ne", "so", "vi")
SECOND = ("bo", "den", "fa", "gil", "mar", "nus", "pet", "zor")
SYLLABLES = FIRST + SECOND
NAMES = tuple(f"{a} {b}" for a in FIRST for b in SECOND)
# a quarter of the pairs, every syllable in both splits
TEST_NAMES = tuple(f"{a} {b}" for i, a in enumerate(FIRST) for j, b in enumerate(SECOND)
                   if (i + j) % 4 == 0)
TRAIN_NAMES = tuple(n for n in NAMES if n not in TEST_NAMES)
SPLITS = ("train", "test")
RELATIONS = ("lives", "owns", "likes")
VALUES = {"lives": ("paris", "rome", "oslo", "lima", "cairo", "delhi", "tokyo", "quito"),
          "owns": ("cat", "dog", "fish", "bird", "horse", "goat", "frog", "mouse"),
          "likes": ("red", "blue", "green", "pink", "gray", "gold", "teal", "white")}
# how a fact, a one-hop question and a "the person who ..." clause are worded
FACT = {"lives": ("lives", "in"), "owns": ("owns", "a"), "likes": ("likes",)}
ASK = {"lives": ("where", "live"), "owns": ("what", "own"), "likes": ("what", "like")}
WORDS = ("does", "the", "person", "who", "in", "a", ".", "?", "where", "what", "live", "own",
         "like", *RELATIONS)


@dataclasses.dataclass(frozen=True)
class Fact:
  name: str
  relation: str
  value: str

  def words(self) -> tuple[str, ...]:
    return (*self.name.split(), *FACT[self.relation], self.value, ".")


@dataclasses.dataclass(frozen=True)
class Question:
  """A passage, a question about it and its two options (options[answer] is right)."""

  facts: tuple[Fact, ...]           # the passage, in order
  target: Fact                      # the fact holding the answer
  key: Fact | None                  # two hops: the fact that identifies target.name
  options: tuple[str, str]
  answer: int                       # 0 or 1
  distractor: Fact                  # the other person's fact with the wrong option

  def passage_words(self) -> tuple[str, ...]:
    return tuple(w for f in self.facts for w in f.words())

  def question_words(self) -> tuple[str, ...]:
    wh, verb = ASK[self.target.relation]
    if self.key is None:
      return (wh, "does", *self.target.name.split(), verb, "?")
    return (wh, "does", "the", "person", "who", *FACT[self.key.relation], self.key.value,
            verb, "?")

  def supporting(self) -> tuple[Fact, ...]:
    """The facts an honest argument quotes: the key fact (two hops), then the target."""
    return (self.target,) if self.key is None else (self.key, self.target)


@dataclasses.dataclass(frozen=True)
class Spec:
  people: int = 3
  p_two_hop: float = 0.5

  def __post_init__(self):
    if not 2 <= self.people <= min(len(TEST_NAMES), *(len(v) for v in VALUES.values())):
      raise ValueError(f"world.people={self.people} must be in [2, {len(TEST_NAMES)}]")
    if not 0.0 <= self.p_two_hop <= 1.0:
      raise ValueError(f"world.p_two_hop={self.p_two_hop} must be in [0, 1]")


def generate(spec: Spec, seed: int, split: str, index: int) -> Question:
  """Question `index` of `split` (pure function of its arguments)."""
  if split not in SPLITS:
    raise ValueError(f"split {split!r}: expected one of {SPLITS}")
  rng = np.random.default_rng([seed, SPLITS.index(split), index, 7])
  pool = TRAIN_NAMES if split == "train" else TEST_NAMES
  names = [pool[i] for i in rng.choice(len(pool), spec.people, replace=False)]
  values = {r: [VALUES[r][i] for i in rng.choice(len(VALUES[r]), spec.people, replace=False)]
            for r in RELATIONS}
  facts = [Fact(n, r, values[r][i]) for i, n in enumerate(names) for r in RELATIONS]
  order = rng.permutation(len(facts))
  facts = tuple(facts[i] for i in order)
  person, other = (int(i) for i in rng.choice(spec.people, 2, replace=False))
  relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
  lookup = {(f.name, f.relation): f for f in facts}
  target = lookup[(names[person], relation)]
  distractor = lookup[(names[other], relation)]
  key = None
  if rng.random() < spec.p_two_hop:
    key_relation = [r for r in RELATIONS if r != relation][int(rng.integers(2))]
    key = lookup[(names[person], key_relation)]
  answer = int(rng.integers(2))
  options = ((target.value, distractor.value) if answer == 0
             else (distractor.value, target.value))
  return Question(facts, target, key, options, answer, distractor)
