"""Generator of multi-step grade-school word problems (METHOD.md section 2).

A problem is a list of facts about people and the items they have:

    ann has 4 apples . ben has 3 times as many apples as ann .
    eve has 9 pears . cat has 5 more apples than ben .
    how many apples does cat have ?

Start facts give a number, derived facts ("k times as many", "k more", "k fewer") give a
person's count in terms of an earlier person's, distractor facts (another item) are never
needed. The question asks for the last derived person. Its canonical solution computes every
derived fact in order, one checkable clause each:

    ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17

Determinism and disjoint splits: problem (seed, split, index) is drawn from a
`random.Random` seeded with a hash of exactly those numbers (scalar draws from Python's
Mersenne Twister are much cheaper than NumPy's), and a candidate is accepted for a split
only if the stable hash of its text falls in that split's residue class. Every problem
text therefore belongs to exactly one split, whatever the seeds and indices: the splits are
disjoint by construction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random

SPLITS = ("prover", "verifier", "test")
OPERATIONS = ("times", "more", "fewer")

NAMES = (
    "ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lee",
    "max", "ned", "oli", "pam", "quin", "ray", "sam", "tom", "una", "vic", "wes", "zoe",
)
ITEMS = ("apples", "pens", "cards", "coins", "books", "shells", "stamps", "marbles")

# The clause each derived operation is solved with: (operator, operand order).
# "times": k * ref ; "more": ref + k ; "fewer": ref - k.
OPERATORS = {"times": "*", "more": "+", "fewer": "-"}


@dataclasses.dataclass(frozen=True)
class Fact:
  """One sentence of a problem.

  kind is "start" (person has `value` items), "distractor" (a start fact about another
  item, never needed) or one of OPERATIONS (person has `k` times/more/fewer than `ref`).
  """

  person: str
  kind: str
  item: str
  value: int = 0
  k: int = 0
  ref: str = ""


@dataclasses.dataclass(frozen=True)
class Step:
  """One clause of a solution: `person = a op b = value`."""

  person: str
  a: int
  op: str
  b: int
  value: int

  def text(self) -> str:
    return f"{self.person} = {self.a} {self.op} {self.b} = {self.value}"


@dataclasses.dataclass(frozen=True)
class Problem:
  """A generated problem: its facts in text order and the question's person and item."""

  facts: tuple[Fact, ...]
  question: str
  item: str
  answer: int

  @property
  def derived(self) -> tuple[Fact, ...]:
    return tuple(f for f in self.facts if f.kind in OPERATIONS)

  @property
  def start_values(self) -> dict[str, int]:
    return {f.person: f.value for f in self.facts if f.kind == "start"}

  @property
  def numbers(self) -> frozenset[int]:
    """Every number written in the problem text (values and constants)."""
    return frozenset(f.value if f.kind in ("start", "distractor") else f.k for f in self.facts)

  def text(self) -> str:
    return " ".join([*(fact_text(f) for f in self.facts),
                     f"how many {self.item} does {self.question} have ?"])

  def true_values(self) -> dict[str, int]:
    """Ground-truth count of the question's item for every person who has it."""
    values = dict(self.start_values)
    for f in self.derived:
      values[f.person] = apply_op(f.kind, values[f.ref], f.k)
    return values

  def canonical_steps(self) -> tuple[Step, ...]:
    values = dict(self.start_values)
    steps = []
    for f in self.derived:
      step = solve_fact(f, values[f.ref])
      values[f.person] = step.value
      steps.append(step)
    return tuple(steps)

  def dependencies(self) -> frozenset[str]:
    """People whose values the answer depends on (the question's derivation chain)."""
    by_person = {f.person: f for f in self.derived}
    needed, todo = set(), [self.question]
    while todo:
      person = todo.pop()
      if person in needed:
        continue
      needed.add(person)
      if person in by_person:
        todo.append(by_person[person].ref)
    return frozenset(needed)


def apply_op(kind: str, ref_value: int, k: int) -> int:
  """The count defined by a derived fact, given the referenced person's count."""
  if kind == "times":
    return k * ref_value
  if kind == "more":
    return ref_value + k
  if kind == "fewer":
    return ref_value - k
  raise ValueError(f"unknown operation {kind!r}; expected one of {OPERATIONS}")


def solve_fact(fact: Fact, ref_value: int) -> Step:
  """The canonical clause for a derived fact."""
  a, b = (fact.k, ref_value) if fact.kind == "times" else (ref_value, fact.k)
  return Step(fact.person, a, OPERATORS[fact.kind], b, apply_op(fact.kind, ref_value, fact.k))


def evaluate(a: int, op: str, b: int) -> int:
  return {"*": a * b, "+": a + b, "-": a - b}[op]


def fact_text(f: Fact) -> str:
  if f.kind in ("start", "distractor"):
    return f"{f.person} has {f.value} {f.item} ."
  if f.kind == "times":
    return f"{f.person} has {f.k} times as many {f.item} as {f.ref} ."
  word = "more" if f.kind == "more" else "fewer"
  return f"{f.person} has {f.k} {word} {f.item} than {f.ref} ."


def canonical_solution(steps: tuple[Step, ...] | list[Step], answer: int) -> str:
  return " ; ".join([*(s.text() for s in steps), f"answer {answer}"])


def split_of(text: str) -> str:
  """The split a problem text belongs to: a stable hash residue (see module docstring)."""
  digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
  return SPLITS[int.from_bytes(digest, "little") % len(SPLITS)]


@dataclasses.dataclass(frozen=True)
class WorldSpec:
  """The generator's knobs (mirrors config.world; see configs/arith.py for each meaning)."""

  min_start: int = 1
  max_start: int = 2
  min_steps: int = 1
  max_steps: int = 4
  start_range: tuple[int, int] = (1, 12)
  times_range: tuple[int, int] = (2, 3)
  add_range: tuple[int, int] = (1, 9)
  max_value: int = 30
  operations: tuple[str, ...] = OPERATIONS
  p_ref_previous: float = 0.6
  max_distractors: int = 1
  p_distractor: float = 0.5

  def __post_init__(self):
    bad = [op for op in self.operations if op not in OPERATIONS]
    if bad or not self.operations:
      raise ValueError(f"world.operations={self.operations}: each must be one of {OPERATIONS}")
    if not 1 <= self.min_start <= self.max_start:
      raise ValueError(f"need 1 <= world.min_start <= world.max_start, got "
                       f"{self.min_start}, {self.max_start}")
    if not 1 <= self.min_steps <= self.max_steps:
      raise ValueError(f"need 1 <= world.min_steps <= world.max_steps, got "
                       f"{self.min_steps}, {self.max_steps}")
    if self.max_start + self.max_steps + self.max_distractors > len(NAMES):
      raise ValueError(f"a problem may name at most {len(NAMES)} people")
    if not 0 <= self.start_range[0] <= self.start_range[1] <= self.max_value:
      raise ValueError(f"world.start_range={self.start_range} must lie in [0, max_value]")


def generate(spec: WorldSpec, seed: int, split: str, index: int) -> Problem:
  """Problem `index` of `split`: a pure function of (spec, seed, split, index)."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  for attempt in range(10_000):
    digest = hashlib.blake2b(f"{seed}/{split}/{index}/{attempt}".encode(), digest_size=8)
    problem = _draw(spec, random.Random(int.from_bytes(digest.digest(), "little")))
    if problem is not None and split_of(problem.text()) == split:
      return problem
  raise RuntimeError(f"could not generate problem {index} of split {split!r}: "
                     "the world's knobs admit (almost) no problems")


def _draw(spec: WorldSpec, rng: random.Random) -> Problem | None:
  n_start = rng.randint(spec.min_start, spec.max_start)
  n_steps = rng.randint(spec.min_steps, spec.max_steps)
  n_distract = sum(rng.random() < spec.p_distractor for _ in range(spec.max_distractors))
  people = rng.sample(NAMES, n_start + n_steps + n_distract)
  item, other_item = rng.sample(ITEMS, 2)
  facts, values = [], {}
  for person in people[:n_start]:
    values[person] = rng.randint(*spec.start_range)
    facts.append(Fact(person, "start", item, value=values[person]))
  known = list(people[:n_start])
  for i, person in enumerate(people[n_start:n_start + n_steps]):
    last = i == n_steps - 1
    if last or rng.random() < spec.p_ref_previous:
      ref = known[-1]
    else:
      ref = rng.choice(known)
    fact = _derived_fact(spec, rng, person, item, ref, values[ref])
    if fact is None:
      return None
    values[person] = apply_op(fact.kind, values[ref], fact.k)
    facts.append(fact)
    known.append(person)
  for person in people[n_start + n_steps:]:
    value = rng.randint(*spec.start_range)
    facts.insert(rng.randint(0, len(facts)), Fact(person, "distractor", other_item,
                                                  value=value))
  question = people[n_start + n_steps - 1]
  return Problem(tuple(facts), question, item, values[question])


def _derived_fact(spec: WorldSpec, rng: random.Random, person: str, item: str,
                  ref: str, ref_value: int) -> Fact | None:
  """A derived fact whose value stays in [0, max_value], or None if none fits."""
  for op in rng.sample(spec.operations, len(spec.operations)):
    lo, hi = spec.times_range if op == "times" else spec.add_range
    ks = [k for k in range(lo, hi + 1) if 0 <= apply_op(op, ref_value, k) <= spec.max_value]
    if ks:
      return Fact(person, op, item, k=rng.choice(ks), ref=ref)
  return None
