"""Flaw injection: the sneaky role's initial data (METHOD.md section 2).

Exactly one subtle flaw in one step of the question's derivation chain, every later step
recomputed faithfully from the flawed value, so the solution reads as consistent and the
final answer is wrong. Flaw types (as named by the checker):

- arith:   the step's result is off by a small amount (|delta| <= max_delta).
- misread: the step uses a grounded but wrong operand (another number of the problem or of
           an earlier step) or the wrong operation (+ for -, - for +, + for *); its
           arithmetic is right.

`inject` is a pure function of (problem, rng draws); it returns the flawed steps, the final
answer, the flawed step's index and its type, or raises if no flaw fits (never on problems of
the default world, which `tests/test_arith_world.py` checks on thousands of problems).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pvg_jax.worlds.arith import problems


@dataclasses.dataclass(frozen=True)
class Flawed:
  steps: tuple[problems.Step, ...]
  answer: int
  flaw_step: int
  flaw_type: str

  def text(self) -> str:
    return problems.canonical_solution(self.steps, self.answer)


def inject(problem: problems.Problem, rng: np.random.Generator, *, max_number: int,
           p_arith: float = 0.5, max_delta: int = 3, max_tries: int = 64) -> Flawed:
  """A solution of `problem` with exactly one flaw (see module docstring)."""
  derived = problem.derived
  chain = [i for i, f in enumerate(derived) if f.person in problem.dependencies()]
  for _ in range(max_tries):
    j = int(rng.choice(chain))
    kind = "arith" if rng.random() < p_arith else "misread"
    flawed = _try(problem, j, kind, rng, max_number, max_delta)
    if flawed is not None:
      return flawed
  for kind in ("arith", "misread"):            # exhaustive fallback, deterministic
    for j in reversed(chain):
      flawed = _try(problem, j, kind, np.random.default_rng(j), max_number, max_delta)
      if flawed is not None:
        return flawed
  raise ValueError(f"no flaw fits problem {problem.text()!r} within [0, {max_number}]")


def _try(problem, j, kind, rng, max_number, max_delta) -> Flawed | None:
  derived = problem.derived
  claimed = dict(problem.start_values)
  known = set(problem.numbers)
  steps = []
  for i, fact in enumerate(derived):
    step = problems.solve_fact(fact, claimed[fact.ref])
    if i == j:
      step = _flaw(step, fact, kind, known, rng, max_delta)
      if step is None:
        return None
    if not 0 <= step.value <= max_number:
      return None
    claimed[fact.person] = step.value
    known.add(step.value)
    steps.append(step)
  answer = claimed[problem.question]
  if answer == problem.answer:
    return None
  return Flawed(tuple(steps), answer, j, kind)


def _flaw(step, fact, kind, known, rng, max_delta):
  if kind == "arith":
    deltas = [d for d in range(-max_delta, max_delta + 1) if d and step.value + d >= 0]
    return dataclasses.replace(step, value=step.value + int(rng.choice(deltas)))
  options = []
  ref_slot = "b" if fact.kind == "times" else "a"
  const_slot = "a" if ref_slot == "b" else "b"
  for slot in (ref_slot, const_slot):
    current = getattr(step, slot)
    for n in sorted(known - {current}):
      options.append(dataclasses.replace(step, **{slot: n}))
  swaps = {"+": ("-",), "-": ("+",), "*": ("+",)}
  options.extend(dataclasses.replace(step, op=op) for op in swaps[step.op])
  options = [_recompute(s) for s in options]
  options = [s for s in options if s.value >= 0 and s.value != step.value
             and not _same_operands(s, step)]
  if not options:
    return None
  return options[int(rng.integers(len(options)))]


def _recompute(step):
  return dataclasses.replace(step, value=problems.evaluate(step.a, step.op, step.b))


def _same_operands(a, b) -> bool:
  """A commuted copy of the true step is not a misread (the checker accepts it)."""
  return a.op == b.op and a.op != "-" and (a.a, a.b) == (b.b, b.a)
