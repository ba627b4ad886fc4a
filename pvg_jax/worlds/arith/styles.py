"""Solution styles of the arith world: the same steps, written so that they cost a
time-limited checker different amounts of work (issue "Redo the reproduction").

One derivation, three ways to write it (HAND of tests/test_arith_world.py):

    full     ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17     every operation shown
    terse    ben = 12 ; cat = 17 ; answer 17                       results only
    merged   cat = 3 * 4 + 5 = 17 ; answer 17                      two steps in one clause
    verbose  ann has 4 ; ben = 3 * 4 = 12 ; cat = 12 + 5 = 17 ; answer 17
                                                                   each value restated
                                                                   before the step using it

A full clause shows its operands, so checking it is reading it. A verbose solution restates
(`name has v`) the value each step builds on before that step, unless the clause just
before stated it: more to read, nothing hidden, and the value a step needs written next to
it by name (a scratchpad for the prover). A terse clause hides the
operation: the checker must find the person's fact in the problem and compute it. A merged
clause hides the intermediate result: `a op1 b op2 c` is evaluated left to right (the
language has no precedence), `(a op1 b)` being the earlier fact's result and `op2 c` the
later fact applied to it. Steps j and j+1 merge only where step j+1 builds on step j's
written result and nothing else uses step j's person, so a merged solution states exactly
the same derivation (the step checker, checker.py, judges all three forms alike).

A solution's style is drawn per solution from `world.styles` with `world.style_weights`;
a style that does not fit a problem (merged needs two chained steps) falls back to full.
With the single style ("full",) nothing is drawn: the world and its random streams are
exactly those of the single-style world.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pvg_jax.worlds.arith import problems

STYLES = ("full", "terse", "merged", "verbose")
# The kind of a step clause from its word count: "p = v", "p = a op b = v", "p = a op b op c = v"
# ("p has v", three words too, is a restatement: see clause_kind)
CLAUSE_KINDS = {3: "terse", 7: "full", 9: "merged"}


def clause_kind(clause: Sequence[str]) -> str:
  """"answer", "restate" (`p has v`), one of CLAUSE_KINDS, or "other"."""
  if clause[:1] == ["answer"]:
    return "answer"
  if len(clause) == 3 and clause[1] == "has":
    return "restate"
  return CLAUSE_KINDS.get(len(clause), "other")


def validate(styles: Sequence[str], weights: Sequence[float]) -> None:
  bad = [s for s in styles if s not in STYLES]
  if bad or not styles or len(set(styles)) != len(styles):
    raise ValueError(f"world.styles={tuple(styles)}: distinct names from {STYLES}")
  if len(weights) != len(styles) or min(weights) < 0 or sum(weights) <= 0:
    raise ValueError(f"world.style_weights={tuple(weights)} must give one non-negative "
                     f"weight per style of {tuple(styles)}, not all zero")


def draw(styles: Sequence[str], weights: Sequence[float], rng: np.random.Generator) -> str:
  """One solution's style; no draw (rng untouched) when there is a single style."""
  if len(styles) == 1:
    return styles[0]
  p = np.asarray(weights, float) / float(np.sum(weights))
  return styles[int(rng.choice(len(styles), p=p))]


def _ref_slot(kind: str) -> str:
  """The operand of a derived fact's clause that holds the referenced person's value."""
  return "b" if kind == "times" else "a"


def _mergeable(problem: problems.Problem, steps: Sequence[problems.Step], j: int) -> bool:
  """Can steps j and j+1 be written as one clause without changing what they state?"""
  derived = problem.derived
  first, second = derived[j], derived[j + 1]
  if second.ref != first.person or first.person == problem.question:
    return False
  if any(f.ref == first.person for i, f in enumerate(derived) if i != j + 1):
    return False
  return getattr(steps[j + 1], _ref_slot(second.kind)) == steps[j].value


def extra_words(styles: Sequence[str], max_steps: int) -> int:
  """Solution words a style mixture may need beyond the full style: verbose restates up to
  one value (3 words and a separator) per step."""
  return 4 * max_steps if "verbose" in styles else 0


def clause_texts(problem: problems.Problem, steps: Sequence[problems.Step],
                 style: str) -> list[str]:
  """The step clauses of `steps` (aligned with problem.derived) written in `style`."""
  if style == "full":
    return [s.text() for s in steps]
  if style == "terse":
    return [f"{s.person} = {s.value}" for s in steps]
  if style == "verbose":
    return _verbose(problem, steps)
  if style != "merged":
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
  out, j = [], 0
  while j < len(steps):
    if j + 1 < len(steps) and _mergeable(problem, steps, j):
      first, second = steps[j], steps[j + 1]
      const = second.a if _ref_slot(problem.derived[j + 1].kind) == "b" else second.b
      out.append(f"{second.person} = {first.a} {first.op} {first.b} {second.op} {const} "
                 f"= {second.value}")
      j += 2
    else:
      out.append(steps[j].text())
      j += 1
  return out


def _verbose(problem: problems.Problem, steps: Sequence[problems.Step]) -> list[str]:
  """Full clauses, each preceded by `ref has v` for the value it builds on (the value the
  solution claimed for ref) unless the clause before it is that person's step."""
  claimed = dict(problem.start_values)
  out, previous = [], None
  for fact, step in zip(problem.derived, steps):
    if fact.ref != previous:
      out.append(f"{fact.ref} has {claimed[fact.ref]}")
    out.append(step.text())
    claimed[step.person] = step.value
    previous = step.person
  return out


def render(problem: problems.Problem, steps: Sequence[problems.Step], answer: int,
           style: str) -> str:
  """A whole solution: the step clauses in `style`, then `answer v`."""
  return " ; ".join([*clause_texts(problem, steps, style), f"answer {answer}"])


def style_of(clauses: Sequence[Sequence[str]]) -> str:
  """The style a written solution uses: the kind shared by all its step clauses ("merged"
  where at least one clause is merged and the others are full, "verbose" where full
  clauses come with restatements, as the renderer writes them), "mixed" for any other
  mixture, "none" for a solution without a step clause."""
  kinds = {clause_kind(c) for c in clauses if c and c[0] != "answer"}
  if not kinds or kinds == {"restate"}:
    return "none"
  if len(kinds) == 1:
    kind = kinds.pop()
    return kind if kind != "other" else "mixed"
  return {frozenset({"merged", "full"}): "merged",
          frozenset({"restate", "full"}): "verbose"}.get(frozenset(kinds), "mixed")
