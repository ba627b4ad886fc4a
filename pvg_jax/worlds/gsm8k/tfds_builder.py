"""GSM8K as a tensorflow-datasets dataset, built from a local copy and read without
TensorFlow.

Nothing is downloaded: the builder's manual_dir holds GSM8K's `train.jsonl` and
`test.jsonl` (as published; the tests use ../shared/data/gsm8k). `prepare` writes
array_record files under `data_dir` once (a second call reuses them) and
`data_source(split)` reads them with TFDS's random-access data sources, which need neither
TensorFlow nor tf.data (checked: the tests assert `tensorflow` is never imported). Every
line is parsed by the step checker's reader first, so a malformed line stops the build
with its file and line. Records: question, answer (the gold solution) and the 1-based line
in the jsonl, which names the problem everywhere else.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from pvg_jax.worlds.gsm8k import checker

SPLITS = ("train", "test")


class PvgGsm8k(tfds.core.GeneratorBasedBuilder):
  """GSM8K (Cobbe et al. 2021, MIT) from local jsonl files."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = ("Put GSM8K's train.jsonl and test.jsonl (github.com/openai/"
                                  "grade-school-math, grade_school_math/data) in manual_dir.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__,
        features=tfds.features.FeaturesDict({"question": tfds.features.Text(),
                                             "answer": tfds.features.Text(),
                                             "line": np.int32}),
        homepage="https://github.com/openai/grade-school-math")

  def _split_generators(self, dl_manager):
    directory = pathlib.Path(dl_manager.manual_dir)
    return {split: self._generate_examples(directory / f"{split}.jsonl") for split in SPLITS}

  def _generate_examples(self, path: pathlib.Path):
    for example in checker.read_jsonl(path):
      yield example.line, {"question": example.question, "answer": example.solution,
                           "line": example.line}


def prepare(manual_dir: str | pathlib.Path, data_dir: str | pathlib.Path) -> PvgGsm8k:
  """The builder with its array_record files written under `data_dir` (once)."""
  manual_dir = pathlib.Path(manual_dir)
  missing = [s for s in SPLITS if not (manual_dir / f"{s}.jsonl").is_file()]
  if missing:
    raise checker.DataError(f"GSM8K file not found: {manual_dir / (missing[0] + '.jsonl')}")
  builder = PvgGsm8k(data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def data_source(split: str, manual_dir: str | pathlib.Path, data_dir: str | pathlib.Path):
  """Random-access records of `split` (a TFDS data source: len() and [i]); text fields are
  bytes, as TFDS returns them."""
  if split not in SPLITS:
    raise checker.DataError(f"GSM8K split {split!r}: expected one of {SPLITS}")
  return prepare(manual_dir, data_dir).as_data_source(split=split)
