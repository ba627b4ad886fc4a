"""The arithmetic checker on GSM8K's gold calculator annotations (real data)."""

import json
from fractions import Fraction

import numpy as np
import pytest

from pvg_jax.worlds import gsm8k
from pvg_jax.worlds.gsm8k import flaws, grading


@pytest.mark.parametrize("expr, value", [
    ("16-3-4", 9), ("2*(3+4)", 14), ("10/4", Fraction(5, 2)), ("-3+5", 2), ("1,000*2", 2000),
    (".5*4", 2), ("2*-3", -6), ("3/4", Fraction(3, 4)), ("+8", 8), ("3*+6", 18),
    ("+30+46+38+11+18", 143), ("560//10", 56), ("7//2", 3), ("-7//2", -4), ("2*3//4", 1),
])
def test_evaluate(expr, value):
  assert gsm8k.evaluate(expr) == value


@pytest.mark.parametrize("expr", ["", "2+", "(2+3", "2x3", "4/0", "4//0", "2**3", "2///3",
                                  "*3"])
def test_evaluate_rejects(expr):
  with pytest.raises(gsm8k.ExpressionError):
    gsm8k.evaluate(expr)


@pytest.mark.parametrize("annotation, status", [
    ("16-3-4=9", "valid"), ("9*2=18", "valid"), ("9*2=19", "invalid"),
    ("10/3=3.33", "rounded"), ("100/3=33", "rounded"), ("10/3=3.4", "invalid"),
    ("+8=8", "valid"), ("3*+6=18", "valid"), ("180//3=60", "valid"),
    ("x=3", "unparseable"), ("no equals", "unparseable"),
])
def test_check_annotation(annotation, status):
  assert gsm8k.check_annotation(annotation).status == status


@pytest.mark.parametrize("split, examples, annotations", [("test", 1319, 4282),
                                                         ("train", 7473, 23716)])
def test_every_annotation_of_gsm8k_parses_and_is_right(gsm8k_dir, split, examples,
                                                       annotations):
  """The gold solutions' arithmetic, checked exactly: every annotation parses (the leading
  signs and floor divisions included) and every one is right."""
  counts = gsm8k.annotation_counts(gsm8k.read_jsonl(gsm8k_dir / f"{split}.jsonl"))
  assert counts == {"examples": examples, "final_answers": examples,
                    "annotations": annotations, "valid": annotations, "rounded": 0,
                    "invalid": 0, "unparseable": 0}


def test_malformed_line_names_file_and_line(tmp_path):
  path = tmp_path / "bad.jsonl"
  path.write_text(json.dumps({"question": "q", "answer": "1+1=<<1+1=2>>2\n#### 2"})
                  + "\n{not json\n")
  with pytest.raises(gsm8k.DataError, match=r"bad.jsonl:2: not a JSON line"):
    list(gsm8k.read_jsonl(path))
  path.write_text(json.dumps({"question": "q"}) + "\n")
  with pytest.raises(gsm8k.DataError, match="bad.jsonl:1: .*'answer'"):
    list(gsm8k.read_jsonl(path))
  path.write_bytes(b'{"question": "\xff", "answer": "#### 1"}\n')
  with pytest.raises(gsm8k.DataError, match="bad.jsonl:1: not UTF-8"):
    list(gsm8k.read_jsonl(path))
  path.write_text("\n\n")
  with pytest.raises(gsm8k.DataError, match="bad.jsonl: no GSM8K examples"):
    list(gsm8k.read_jsonl(path))
  with pytest.raises(gsm8k.DataError, match="not found"):
    list(gsm8k.read_jsonl(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize("text, value", [
    ("18", 18), (" 1,234 ", 1234), ("$5", 5), ("-3", -3), ("+4", 4), ("5.00", 5),
    ("5.", 5), ("0.50", Fraction(1, 2)), (".5", Fraction(1, 2)), ("-$2", -2), ("25%", 25),
    ("1,234,567", 1234567), ("$1,234.50.", Fraction(2469, 2)),
])
def test_answers_are_normalized(text, value):
  assert grading.parse_number(text) == value


@pytest.mark.parametrize("text", ["", "2+3", "five", "3 4", "1,23", "12,3456", "$", "--3"])
def test_what_is_not_one_number_is_no_answer(text):
  assert grading.parse_number(text) is None


def test_the_grader_on_every_test_problem(gsm8k_dir):
  """Every reference answer of the test split is read as a number, its gold solution is
  graded correct, and so is the same answer written another way; another number, an
  expression and a missing #### line are wrong."""
  examples = list(gsm8k.read_jsonl(gsm8k_dir / "test.jsonl"))
  assert len(examples) == 1319
  for ex in examples:
    ref = ex.final_answer
    assert ref is not None and grading.is_correct(ex.solution, ref), ex.line
    body = ex.solution.rpartition("####")[0]
    assert grading.is_correct(body + f"#### {int(ref):,}.", ref), ex.line
    assert grading.is_correct(body + f"#### ${float(ref):.2f}", ref), ex.line
    assert not grading.is_correct(body + f"#### {ref + 1}", ref)
    assert not grading.is_correct(body + f"#### {ref}+0", ref)
    assert not grading.is_correct(body, ref)


def test_flawed_solutions_have_exactly_one_wrong_step_and_a_wrong_answer(gsm8k_dir):
  """The sneaky initialization's flaws on every test problem: the step checker finds
  exactly the injected step invalid (the carried values keep every later step right), the
  final answer changes and is graded wrong. Measured: 1208 of 1319 problems (91.6%) get a
  flaw; the rest have no step whose change reaches the answer as a finite decimal."""
  rng = np.random.default_rng(0)
  made = 0
  for ex in gsm8k.read_jsonl(gsm8k_dir / "test.jsonl"):
    flawed = flaws.inject(ex.solution, rng)
    if flawed is None:
      continue
    made += 1
    status = [gsm8k.check_annotation(a).status
              for a in gsm8k.ANNOTATION.findall(flawed.solution)]
    assert len(status) == len(ex.annotations), ex.line
    assert [i for i, s in enumerate(status) if s != "valid"] == [flawed.step], ex.line
    assert status[flawed.step] == "invalid"
    assert grading.final_answer(flawed.solution) == flawed.final_answer != ex.final_answer
    assert not grading.is_correct(flawed.solution, ex.final_answer)
  assert made >= 0.9 * 1319


def test_a_flaw_rewrites_the_step_and_what_follows_from_it():
  solution = ("3*20=<<3*20=60>>60 cups a day.\nThen 60-15-25=<<60-15-25=20>>20 cups.\n"
              "#### 20")
  flawed = flaws.inject(solution, np.random.default_rng(0))
  wrong = flawed.wrong
  w = flaws.format_number(wrong)
  if flawed.step == 0:
    last = flaws.format_number(wrong - 40)
    assert flawed.solution == (f"3*20=<<3*20={w}>>{w} cups a day.\nThen {w}-15-25=<<{w}-15-25="
                               f"{last}>>{last} cups.\n#### {last}")
  else:
    assert flawed.solution == (f"3*20=<<3*20=60>>60 cups a day.\nThen 60-15-25=<<60-15-25="
                               f"{w}>>{w} cups.\n#### {w}")
  assert flaws.format_number(Fraction(1, 3)) is None
  assert flaws.format_number(Fraction(5, 4)) == "1.25"
  assert flaws.format_number(Fraction(-1, 20)) == "-0.05"
  assert flaws.format_number(Fraction(123456789012345678901, 100)) == "1234567890123456789.01"
