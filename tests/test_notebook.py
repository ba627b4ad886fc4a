"""notebooks/legibility_tax.ipynb runs top to bottom (smoke config) and draws its figures."""

import os
import time

import nbclient
import nbformat
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_notebook_executes_and_draws(smoke_experiment, monkeypatch):
  """Runs in the session's smoke experiment directory: the notebook's own settings are the
  same, so it resumes those (finished, evaluated) runs and then draws and reports."""
  tmp_path, _ = smoke_experiment
  nb = nbformat.read(REPO / "notebooks" / "legibility_tax.ipynb", as_version=4)
  monkeypatch.setenv("PVG_NOTEBOOK_WORKDIR", str(tmp_path))
  # the kernel inherits the environment: 1 CPU device is enough for the notebook
  monkeypatch.setenv("XLA_FLAGS", os.environ["XLA_FLAGS"].replace(
      "--xla_force_host_platform_device_count=8", ""))
  start = time.time()
  nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert len(images) == 3
  for name in ("tax.png", "dynamics.png", "legibility.png"):
    assert (tmp_path / name).stat().st_size > 10_000
  assert (tmp_path / "report" / "report.md").stat().st_mtime >= start   # rewritten by it
  assert (tmp_path / "gsm8k_smoke" / "summary.json").exists()   # the real path, on a CPU
  for run in ("src", "correctness"):            # it evaluated (resumed) both runs
    results = tmp_path / "seed_0" / run / "evals" / "results.json"
    assert results.stat().st_mtime >= start
