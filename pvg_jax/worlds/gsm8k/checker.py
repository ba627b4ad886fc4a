"""GSM8K: the arithmetic step checker run on real solutions nobody here wrote.

GSM8K gold solutions annotate every calculation as `<<expression=result>>` and end with
`#### N`. `check_annotation` evaluates the expression exactly (fractions, no eval()) and
compares it with the written result: *valid* when equal, *rounded* when equal at the
precision the result is written with (`<<10/3=3.33>>`, `<<100/3=33>>`), else *invalid*.
Expressions are numbers (thousands commas allowed), + - * / and // (floor division,
`<<560//10=56>>`), unary signs (`<<+8=8>>`, `<<3*+6=18>>`) and parentheses: every
annotation in GSM8K's train and test splits parses. One that is not arithmetic (a letter,
`**`) is *unparseable*.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from collections.abc import Iterator
from fractions import Fraction

from pvg_jax import cli
from pvg_jax.worlds.gsm8k import grading

ANNOTATION = re.compile(r"<<([^<>]*)>>")
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+|//|[-+*/()])")


class DataError(cli.UserError):
  """A GSM8K file that cannot be read: the message names the file and line."""


class ExpressionError(ValueError):
  """An annotation that is not a plain arithmetic expression."""


def evaluate(expression: str) -> Fraction:
  """Exact value of an expression of numbers, + - * / //, unary signs and parentheses
  (the usual precedence: unary signs bind tightest, then * / //, then + -)."""
  tokens = _tokenize(expression)
  value, rest = _sum(tokens)
  if rest:
    raise ExpressionError(f"trailing {''.join(rest)!r} in {expression!r}")
  return value


def _tokenize(expression: str) -> list[str]:
  text = expression.replace(",", "").strip()
  tokens, pos = [], 0
  while pos < len(text):
    match = _TOKEN.match(text, pos)
    if not match:
      raise ExpressionError(f"cannot read {text[pos:]!r} in {expression!r}")
    tokens.append(match.group(1))
    pos = match.end()
    while pos < len(text) and text[pos].isspace():
      pos += 1
  if not tokens:
    raise ExpressionError("empty expression")
  return tokens


def _sum(tokens):
  value, tokens = _product(tokens)
  while tokens and tokens[0] in "+-":
    op, (rhs, tokens) = tokens[0], _product(tokens[1:])
    value = value + rhs if op == "+" else value - rhs
  return value, tokens


def _product(tokens):
  value, tokens = _unary(tokens)
  while tokens and tokens[0] in ("*", "/", "//"):
    op, (rhs, tokens) = tokens[0], _unary(tokens[1:])
    if op != "*" and rhs == 0:
      raise ExpressionError("division by zero")
    value = value * rhs if op == "*" else value / rhs if op == "/" else Fraction(
        value // rhs)
  return value, tokens


def _unary(tokens):
  if not tokens:
    raise ExpressionError("expression ends early")
  if tokens[0] in "+-":
    value, rest = _unary(tokens[1:])
    return (-value if tokens[0] == "-" else value), rest
  if tokens[0] == "(":
    value, rest = _sum(tokens[1:])
    if not rest or rest[0] != ")":
      raise ExpressionError("unbalanced parenthesis")
    return value, rest[1:]
  if tokens[0] in ("*", "/", "//", ")"):
    raise ExpressionError(f"unexpected {tokens[0]!r}")
  return Fraction(tokens[0]), tokens[1:]


@dataclasses.dataclass(frozen=True)
class AnnotationCheck:
  text: str
  status: str  # "valid", "rounded", "invalid" or "unparseable"


def check_annotation(annotation: str) -> AnnotationCheck:
  """Is `expression=result` arithmetically right, at the precision the result is written?"""
  expression, sep, result = annotation.rpartition("=")
  if not sep:
    return AnnotationCheck(annotation, "unparseable")
  try:
    value, written = evaluate(expression), evaluate(result)
  except ExpressionError:
    return AnnotationCheck(annotation, "unparseable")
  if value == written:
    return AnnotationCheck(annotation, "valid")
  decimals = len(result.strip().split(".")[1]) if "." in result else 0
  scale = Fraction(10) ** decimals
  rounded = abs(value * scale - written * scale) <= Fraction(1, 2)
  return AnnotationCheck(annotation, "rounded" if rounded else "invalid")


@dataclasses.dataclass(frozen=True)
class Example:
  """One GSM8K line: its question, gold solution, final answer and checked annotations."""

  line: int
  question: str
  solution: str
  final_answer: Fraction | None
  annotations: tuple[AnnotationCheck, ...]


def parse_example(record: dict, line: int = 0) -> Example:
  """Parse one GSM8K record (`question`, `answer` fields)."""
  try:
    question, solution = record["question"], record["answer"]
  except (KeyError, TypeError) as e:
    raise ValueError("a GSM8K record needs 'question' and 'answer' fields") from e
  final_answer = grading.final_answer(solution)
  checks = tuple(check_annotation(a) for a in ANNOTATION.findall(solution))
  return Example(line, question, solution, final_answer, checks)


def read_jsonl(path: str | pathlib.Path) -> Iterator[Example]:
  """Examples of a GSM8K jsonl file. A malformed line (not UTF-8, not JSON, no question or
  answer) raises DataError naming the file and line; so does a file without any example."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise DataError(f"GSM8K file not found: {path}")
  n_examples = 0
  with path.open("rb") as f:
    for n, raw in enumerate(f, start=1):
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise DataError(f"{path}:{n}: not UTF-8 text (byte {e.start})") from None
      if not text.strip():
        continue
      try:
        record = json.loads(text)
      except json.JSONDecodeError as e:
        raise DataError(f"{path}:{n}: not a JSON line ({e.msg})") from None
      try:
        example = parse_example(record, n)
      except ValueError as e:
        raise DataError(f"{path}:{n}: {e}") from None
      n_examples += 1
      yield example
  if not n_examples:
    raise DataError(f"{path}: no GSM8K examples (the file is empty)")


def annotation_counts(examples) -> dict[str, int]:
  """Counts of annotations by status, and of examples and final answers parsed."""
  counts = {"examples": 0, "final_answers": 0, "annotations": 0, "valid": 0, "rounded": 0,
            "invalid": 0, "unparseable": 0}
  for ex in examples:
    counts["examples"] += 1
    counts["final_answers"] += ex.final_answer is not None
    for a in ex.annotations:
      counts["annotations"] += 1
      counts[a.status] += 1
  return counts


def main() -> None:
  with cli.errors("pvg-gsm8k-check"):
    _main()


def _main() -> None:
  import argparse
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("path", help="a GSM8K jsonl file, e.g. ../shared/data/gsm8k/test.jsonl")
  args = parser.parse_args()
  examples = list(read_jsonl(args.path))
  print(json.dumps(annotation_counts(examples), indent=1))
  for ex in examples:
    for a in ex.annotations:
      if a.status not in ("valid", "rounded"):
        print(f"line {ex.line}: {a.status}: <<{a.text}>>")


if __name__ == "__main__":
  main()
