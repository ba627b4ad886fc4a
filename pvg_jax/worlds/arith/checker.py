"""Grader and step checker of the arith world: the exact stand-in for K's validity scores.

A solution is a list of clauses separated by ';'. A step clause is `name = a op b = v` (or
one of the other styles of styles.py: `name = v`, which states a result without its
operation, `name = a op1 b op2 c = v`, two chained facts evaluated left to right, and
`name has v`, which restates a value given or claimed before), the last clause is
`answer v`. Each clause is judged against the problem and against what the
solution itself claimed before it (so a step that correctly builds on an earlier wrong value
is valid: only the first error is the flaw). Error types, checked in this order:

- format:     the clause is not `name = NUM op NUM = NUM` / `answer NUM` (or no answer).
- ungrounded: the name has no derived fact in the problem, or an operand is neither a
              number of the problem text nor a value claimed by an earlier step.
- misread:    operands grounded, but the operation or operands differ from the problem's
              fact for that name (wrong constant, wrong person's value, wrong operation);
              for the answer clause, a grounded number that is not the claimed value of the
              person asked about.
- arith:      a op b != v; for a result-only clause, any value other than the fact's
              result from the claimed values (no operands shown: the slip cannot be told
              from a misread).

`check` never raises: any word list, including garbage, gets a result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pvg_jax.worlds.arith import problems

ERROR_TYPES = ("format", "ungrounded", "misread", "arith")


@dataclasses.dataclass(frozen=True)
class CheckResult:
  """Per-clause verdicts of one solution.

  valid[i] is the verdict of clause i (the answer clause included; a missing answer is a
  trailing invalid 'format' clause). first_error is the index of the first invalid clause or
  None; error_type is its type or 'ok'. answer is the parsed final answer (None if absent);
  correct is the grader's verdict (answer == ground truth), independent of the steps.
  """

  valid: tuple[bool, ...]
  errors: tuple[str, ...]
  first_error: int | None
  error_type: str
  answer: int | None
  correct: bool

  @property
  def num_steps(self) -> int:
    return len(self.valid)

  @property
  def validity(self) -> float:
    """Fraction of valid clauses (K's per-solution validity score, exact here)."""
    return sum(self.valid) / max(len(self.valid), 1)


def grade(problem: problems.Problem, words: Sequence[str]) -> bool:
  """The grader: is the final answer equal to the ground truth?"""
  return check(problem, words).correct


def _number(word: str) -> int | None:
  return int(word) if word.isdigit() else None


def clauses(words: Sequence[str]) -> list[list[str]]:
  clauses, current = [], []
  for word in words:
    if word == ";":
      clauses.append(current)
      current = []
    else:
      current.append(word)
  if current or clauses:
    clauses.append(current)
  return clauses


def check(problem: problems.Problem, words: Sequence[str]) -> CheckResult:
  """Check every clause of a solution (see the module docstring for the rules)."""
  facts = {f.person: f for f in problem.derived}
  claimed = dict(problem.start_values)   # the solution's current belief per person
  known = set(problem.numbers)           # numbers a step may ground an operand in
  errors: list[str] = []
  answer = None
  for clause in clauses(words):
    if answer is not None:               # anything after the answer clause
      errors.append("format")
      continue
    if len(clause) == 2 and clause[0] == "answer" and _number(clause[1]) is not None:
      answer = _number(clause[1])
      errors.append(_check_answer(problem, claimed, known, answer))
      continue
    error, claims = _check_step(facts, claimed, known, clause)
    errors.append(error)
    for person, value in (claims or {}).items():
      claimed[person] = value
      known.add(value)
  if answer is None:
    errors.append("format")
  valid = tuple(e == "ok" for e in errors)
  first = next((i for i, v in enumerate(valid) if not v), None)
  return CheckResult(valid, tuple(errors), first,
                     "ok" if first is None else errors[first], answer,
                     answer is not None and answer == problem.answer)


def _check_answer(problem, claimed, known, answer) -> str:
  if claimed.get(problem.question) == answer:
    return "ok"
  return "misread" if answer in known else "ungrounded"


_OPS = ("+", "-", "*")


def _check_step(facts, claimed, known, clause):
  """Verdict of one step clause; what it claims (person -> value) counts downstream."""
  if len(clause) == 3 and clause[1] == "has":
    return _check_restatement(claimed, clause)
  if len(clause) == 3:
    return _check_terse(facts, claimed, clause)
  if len(clause) == 9:
    return _check_merged(facts, claimed, known, clause)
  if (len(clause) != 7 or clause[1] != "=" or clause[3] not in _OPS or clause[5] != "="):
    return "format", None
  a, b, v = _number(clause[2]), _number(clause[4]), _number(clause[6])
  if a is None or b is None or v is None:
    return "format", None
  step = problems.Step(clause[0], a, clause[3], b, v)
  fact = facts.get(step.person)
  if fact is None or a not in known or b not in known:
    return "ungrounded", {step.person: v}
  if fact.ref not in claimed:
    return "misread", {step.person: v}
  if not _same_operation(fact, claimed[fact.ref], a, step.op, b):
    return "misread", {step.person: v}
  if problems.evaluate(a, step.op, b) != v:
    return "arith", {step.person: v}
  return "ok", {step.person: v}


def _same_operation(fact, ref_value, a, op, b) -> bool:
  """Is `a op b` the fact's operation on the referenced value (commuted where it may be)?"""
  expected = problems.solve_fact(fact, ref_value)
  return op == expected.op and ((a, b) == (expected.a, expected.b) or
                                (op != "-" and (b, a) == (expected.a, expected.b)))


def _check_terse(facts, claimed, clause):
  """`name = v`: the fact's result from the claimed values, with no operation shown."""
  v = _number(clause[2])
  if clause[1] != "=" or v is None:
    return "format", None
  fact = facts.get(clause[0])
  if fact is None:
    return "ungrounded", {clause[0]: v}
  if fact.ref not in claimed:
    return "misread", {clause[0]: v}
  if problems.solve_fact(fact, claimed[fact.ref]).value != v:
    return "arith", {clause[0]: v}
  return "ok", {clause[0]: v}


def _check_restatement(claimed, clause):
  """`name has v`: restates a value the problem gives or the solution claimed; claims
  nothing new."""
  v = _number(clause[2])
  if v is None:
    return "format", None
  if clause[0] not in claimed:
    return "ungrounded", None
  return ("ok" if claimed[clause[0]] == v else "misread"), None


def _check_merged(facts, claimed, known, clause):
  """`name = a op1 b op2 c = v`: fact f1 as `a op1 b`, then name's fact f2 (whose reference
  is f1's person) as `(a op1 b) op2 c`, left to right. Claims f1's result and v."""
  if (clause[1] != "=" or clause[3] not in _OPS or clause[5] not in _OPS
      or clause[7] != "="):
    return "format", None
  a, b, c, v = (_number(clause[i]) for i in (2, 4, 6, 8))
  if None in (a, b, c, v):
    return "format", None
  inter = problems.evaluate(a, clause[3], b)
  second = facts.get(clause[0])
  first = facts.get(second.ref) if second is not None else None
  claims = {clause[0]: v} if first is None else {first.person: inter, clause[0]: v}
  if second is None or not {a, b, c} <= known:
    return "ungrounded", claims
  if first is None or first.ref not in claimed:
    return "misread", claims
  if (not _same_operation(first, claimed[first.ref], a, clause[3], b)
      or clause[5] != problems.OPERATORS[second.kind] or c != second.k):
    return "misread", claims
  if problems.evaluate(inter, clause[5], c) != v:
    return "arith", claims
  return "ok", claims
