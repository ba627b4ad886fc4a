"""The arithmetic checker on GSM8K's gold calculator annotations (real data)."""

import json
from fractions import Fraction

import pytest

from pvg_jax.worlds import gsm8k


@pytest.mark.parametrize("expr, value", [
    ("16-3-4", 9), ("2*(3+4)", 14), ("10/4", Fraction(5, 2)), ("-3+5", 2), ("1,000*2", 2000),
    (".5*4", 2), ("2*-3", -6), ("3/4", Fraction(3, 4)),
])
def test_evaluate(expr, value):
  assert gsm8k.evaluate(expr) == value


@pytest.mark.parametrize("expr", ["", "2+", "(2+3", "2x3", "+8", "4/0", "2**3"])
def test_evaluate_rejects(expr):
  with pytest.raises(gsm8k.ExpressionError):
    gsm8k.evaluate(expr)


@pytest.mark.parametrize("annotation, status", [
    ("16-3-4=9", "valid"), ("9*2=18", "valid"), ("9*2=19", "invalid"),
    ("10/3=3.33", "rounded"), ("100/3=33", "rounded"), ("10/3=3.4", "invalid"),
    ("+8=8", "unparseable"), ("x=3", "unparseable"), ("no equals", "unparseable"),
])
def test_check_annotation(annotation, status):
  assert gsm8k.check_annotation(annotation).status == status


def test_counts_on_gsm8k_test_split(gsm8k_dir):
  counts = gsm8k.annotation_counts(gsm8k.read_jsonl(gsm8k_dir / "test.jsonl"))
  assert counts == {"examples": 1319, "final_answers": 1319, "annotations": 4282,
                    "valid": 4277, "rounded": 0, "invalid": 0, "unparseable": 5}


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
