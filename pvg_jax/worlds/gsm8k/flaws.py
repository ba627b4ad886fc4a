"""Flawed GSM8K solutions for the sneaky role's initialization: one wrong calculation,
carried through the rest of the solution.

`inject` picks a calculator annotation `<<expression=result>>` and writes a wrong result
r + delta for it, then carries the wrong value forward: every later annotation whose
expression uses a changed value is rewritten with the new value and re-computed (so it
stays right given its inputs), the result repeated after an annotation (`<<3*20=60>>60`)
and a visible copy of its expression just before it (`3*20=<<...`) follow, and so does the
final `#### answer`. The flawed solution therefore has exactly one invalid step under the
step checker (the injected one) and a wrong final answer; a candidate that would not
change the final answer, or would need a result that is not a finite decimal, is skipped.
This is the GSM8K analogue of the synthetic world's flaw injector (METHOD.md: sneaky SFT
on solutions with one subtle error).
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

import numpy as np

from pvg_jax.worlds.gsm8k import checker, grading

_NUMBER_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+")
DELTAS = (1, -1, 2, -2, 3, 10, -10)


@dataclasses.dataclass(frozen=True)
class Flawed:
  solution: str
  step: int                 # index of the injected annotation
  written: Fraction         # its right result
  wrong: Fraction           # what the flawed solution writes
  final_answer: Fraction


def format_number(x: Fraction) -> str | None:
  """`x` as GSM8K writes numbers (an integer or a finite decimal, exactly), or None."""
  places = 0
  while (x * 10 ** places).denominator != 1:
    places += 1
    if places > 12:                     # 1/3, 1/7, ...: no finite decimal
      return None
  digits = str(abs(x * 10 ** places).numerator).rjust(places + 1, "0")
  sign = "-" if x < 0 else ""
  return sign + (f"{digits[:-places]}.{digits[-places:]}" if places else digits)


def _substitute(expression: str, changed: dict[Fraction, Fraction]) -> str:
  """`expression` with every number whose value changed replaced by its new value."""
  def repl(match: re.Match) -> str:
    value = Fraction(match.group(0))
    return format_number(changed[value]) if value in changed else match.group(0)
  return _NUMBER_TOKEN.sub(repl, expression.replace(",", ""))


def inject(solution: str, rng: np.random.Generator) -> Flawed | None:
  """A flawed version of a gold `solution` (see the module docstring), or None if no
  annotation and delta of those tried changes the final answer."""
  matches = list(checker.ANNOTATION.finditer(solution))
  reference = grading.final_answer(solution)
  if not matches or reference is None:
    return None
  for step in rng.permutation(len(matches)):
    for delta in rng.permutation(DELTAS):
      flawed = _try(solution, matches, int(step), int(delta), reference)
      if flawed is not None:
        return flawed
  return None


def _try(solution, matches, step, delta, reference) -> Flawed | None:
  right = _result(matches[step])
  if right is None:
    return None
  wrong = right + delta
  if (wrong < 0 <= right) or format_number(wrong) is None:
    return None
  changed: dict[Fraction, Fraction] = {}
  pieces, end = [], 0
  for i, match in enumerate(matches):
    expression, _, result = match.group(1).rpartition("=")
    old = _result(match)
    if old is None:
      return None
    if i < step:
      continue
    new_expression = expression if i == step else _substitute(expression, changed)
    try:
      new = wrong if i == step else checker.evaluate(new_expression)
    except checker.ExpressionError:            # a carried value made a division by zero
      return None
    repeated = re.match(re.escape(result.strip()), solution[match.end():])
    stop = match.end() + (repeated.end() if repeated else 0)
    if new == old:
      continue                        # untouched: kept byte for byte
    changed.setdefault(old, new)
    new_text = format_number(new)
    if new_text is None:
      return None
    before = solution[end:match.start()]
    visible = next((v for v in (f"{expression}=", f"{expression} = ")
                    if new_expression != expression and before.endswith(v)), None)
    if visible:
      before = before[:-len(visible)] + visible.replace(expression, new_expression)
    pieces += [before, f"<<{new_expression}={new_text}>>", new_text if repeated else ""]
    end = stop
  tail = solution[end:]
  finals = list(grading.FINAL.finditer(tail))
  final = grading.parse_number(finals[-1].group(1)) if finals else None
  if final not in changed or changed[final] == reference:
    return None
  tail = (tail[:finals[-1].start(1)] + format_number(changed[final])
          + tail[finals[-1].end(1):])
  return Flawed("".join(pieces) + tail, step, right, wrong, changed[final])


def _result(match: re.Match) -> Fraction | None:
  try:
    return checker.evaluate(match.group(1).rpartition("=")[2])
  except checker.ExpressionError:
    return None
