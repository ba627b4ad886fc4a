"""configs/anil.py:smoke end to end: every formulation on both tasks, the report, and a
kill -9 resume that ends with the same summary.json."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _launch(workdir):
  env = {**os.environ, "PYTHONUNBUFFERED": "1"}
  return subprocess.Popen(
      [sys.executable, "-m", "pvg_jax.main", "--config", "configs/anil.py:smoke",
       "--workdir", str(workdir)], cwd=REPO, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def anil_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("anil")
  proc = _launch(workdir)
  out, _ = proc.communicate(timeout=900)
  assert proc.returncode == 0, out
  return workdir, out


def test_smoke_run_covers_every_formulation_and_task(anil_run):
  from configs import anil
  workdir, out = anil_run
  summary = json.loads((workdir / "summary.json").read_text())
  cfg = anil.get_config("smoke")
  assert set(summary["tasks"]) == set(cfg.tasks)
  for task in summary["tasks"].values():
    assert 0 < task["optimal_sound_completeness"] <= 1
    assert set(task["formulations"]) == set(cfg.formulations)
    for row in task["formulations"].values():
      for metric in ("completeness", "soundness_error", "verifier_accuracy"):
        assert len(row[metric]["seeds"]) == cfg.seeds
        assert 0 <= row[metric]["mean"] <= 1
      # the reported soundness error is the worst attack found
      assert row["soundness_error"]["mean"] >= row["soundness_error_audit"]["mean"] - 1e-9
  assert "(best sound protocol)" in out


def test_report_has_tables_and_figures(anil_run):
  workdir, _ = anil_run
  out = subprocess.run([sys.executable, "-m", "pvg_jax.report.build", "--workdir",
                        str(workdir)], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  report = (workdir / "report" / "report.md").read_text()
  assert "## FindThePlus" in report and "## binary erasure channel" in report
  assert "verifier_leads:unrolled" in report
  import matplotlib.image
  for name in ("fig_anil_protocols.png", "fig_anil_training.png"):
    img = matplotlib.image.imread(workdir / "report" / name)
    assert img.shape[0] > 300 and img.shape[1] > 800
    assert img[..., :3].std() > 0.05          # not a blank canvas


def test_kill_9_resumes_to_the_same_summary(anil_run, tmp_path):
  reference, _ = anil_run
  workdir = tmp_path / "resumed"
  proc = _launch(workdir)
  end = time.time() + 600
  while not list(workdir.glob("checkpoints/ftp.*/*/meta.json")):   # into the second task
    assert proc.poll() is None, proc.stdout.read()
    assert time.time() < end, "no FtP checkpoint written"
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  proc = _launch(workdir)
  out, _ = proc.communicate(timeout=900)
  assert proc.returncode == 0, out
  assert (json.loads((workdir / "summary.json").read_text())
          == json.loads((reference / "summary.json").read_text()))
