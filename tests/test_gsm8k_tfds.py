"""GSM8K through tensorflow-datasets: built from ../shared/data/gsm8k into array_record
files and read with TFDS data sources, with TensorFlow absent."""

import json
import sys

import pytest

from pvg_jax.worlds import gsm8k
from pvg_jax.worlds.gsm8k import tfds_builder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, gsm8k_dir):
  directory = tmp_path_factory.mktemp("tfds")
  tfds_builder.prepare(gsm8k_dir, directory)
  return directory


@pytest.mark.parametrize("split, n", [("train", 7473), ("test", 1319)])
def test_every_problem_is_read_back_from_array_record(data_dir, gsm8k_dir, split, n):
  source = tfds_builder.data_source(split, gsm8k_dir, data_dir)
  assert len(source) == n
  records = {int(r["line"]): r for r in (source[i] for i in range(len(source)))}
  for ex in gsm8k.read_jsonl(gsm8k_dir / f"{split}.jsonl"):
    record = records[ex.line]
    assert (record["question"].decode(), record["answer"].decode()) == (ex.question,
                                                                         ex.solution)
  assert next(data_dir.rglob(f"pvg_gsm8k-{split}.array_record*"))
  assert "tensorflow" not in sys.modules


def test_a_second_prepare_reuses_the_files(data_dir, gsm8k_dir):
  files = {p: p.stat().st_mtime_ns for p in data_dir.rglob("*.array_record*")}
  tfds_builder.prepare(gsm8k_dir, data_dir)
  assert files and {p: p.stat().st_mtime_ns for p in data_dir.rglob("*.array_record*")} == files


def test_a_malformed_line_stops_the_build_naming_file_and_line(tmp_path, gsm8k_dir):
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "train.jsonl").write_text((gsm8k_dir / "test.jsonl").read_text())
  good = json.dumps({"question": "q", "answer": "<<1+1=2>>2\n#### 2"})
  (manual / "test.jsonl").write_text(f"{good}\n{{oops\n")
  with pytest.raises(gsm8k.DataError, match=r"test.jsonl:2: not a JSON line"):
    tfds_builder.prepare(manual, tmp_path / "data")
  (manual / "test.jsonl").unlink()
  with pytest.raises(gsm8k.DataError, match=r"not found: .*manual/test.jsonl"):
    tfds_builder.prepare(manual, tmp_path / "data")
  with pytest.raises(gsm8k.DataError, match="split 'dev'"):
    tfds_builder.data_source("dev", manual, tmp_path / "data")
