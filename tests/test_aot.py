"""pvg-compile: ahead-of-time compiles for a target mesh, memory and FLOPs per device."""

import subprocess
import sys

import pytest

from configs import arith
from pvg_jax import aot, cli


@pytest.mark.slow
def test_cli_compiles_every_step_for_a_fake_cpu_mesh():
  """The command line sets up its fake devices before jax starts (a fresh process)."""
  out = subprocess.run([sys.executable, "-m", "pvg_jax.aot", "--config",
                        "configs/arith.py:smoke", "--devices", "4"],
                       capture_output=True, text=True, timeout=300, check=True).stdout
  lines = out.strip().splitlines()
  assert lines[0].startswith("target: cpu x4 (4 devices; fake CPU devices"), out
  assert "mesh (4, 1, 1)" in lines[1]
  rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[3:-1]}
  assert set(rows) == {"sft_step", "prover_step", "verifier_step", "sample_ppo", "score"}
  for name, (args, _, _, peak, gflop) in rows.items():
    assert args > 0 and peak >= args and gflop > 0, (name, rows[name])
  only = subprocess.run([sys.executable, "-m", "pvg_jax.aot", "--config",
                         "configs/arith.py:smoke", "--devices", "2", "--steps", "score"],
                        capture_output=True, text=True, timeout=300, check=True).stdout
  assert [line.split()[0] for line in only.strip().splitlines()[3:-1]] == ["score"]
  bad = subprocess.run([sys.executable, "-m", "pvg_jax.aot", "--config",
                        "configs/arith.py:smoke", "--devices", "2", "--steps", "scor"],
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and "unknown step(s) scor" in bad.stderr


def test_fsdp_shards_what_data_parallelism_replicates():
  """Per-device argument bytes of the SFT step: its parameters and Adam moments are
  replicated on (8, 1, 1) and split 8 ways on (1, 8, 1); the batch is split 8 ways on both."""
  per_device = {}
  for shape in ((8, 1, 1), (1, 8, 1)):
    cfg = arith.get_config("smoke")
    cfg.prover.size = "p120k"              # parameters outweigh the batch
    cfg.mesh.shape = shape
    (row,) = aot.compile_report(cfg, aot.Target("cpu", "cpu x8", 8), only=("sft_step",))
    per_device[shape] = row
  data, fsdp = per_device[(8, 1, 1)], per_device[(1, 8, 1)]
  report = aot.format_report(cfg, aot.Target("cpu", "cpu x8", 8), [fsdp], (1, 8, 1))
  assert report.splitlines()[0] == "target: cpu x8 (8 devices; fake CPU devices (XLA:CPU " \
      "memory and FLOPs))"
  assert report.splitlines()[3].split()[0] == "sft_step"
  assert fsdp["arguments"] < data["arguments"] / 4, (fsdp, data)
  # the same total work is done, split 8 ways either way
  assert fsdp["flops"] == pytest.approx(data["flops"], rel=0.5)


def test_targets_are_named_and_bad_ones_are_one_line_errors(monkeypatch):
  assert aot.parse_topology("v5e:4x4") == ("v5e", 16)
  assert aot.parse_topology("v5p:2x2x2") == ("v5p", 8)
  with pytest.raises(cli.UserError, match="--topology 'v5e-16'"):
    aot.parse_topology("v5e-16")
  with pytest.raises(cli.UserError, match="exactly one of"):
    aot.choose_target(None, None)
  monkeypatch.setattr(aot.importlib.util, "find_spec", lambda name: None)
  target = aot.choose_target("v5e:2x2", None)
  assert (target.kind, target.n_devices) == ("cpu", 4)
  assert "libtpu is not installed" in target.note and target.hbm_bytes is None
  assert aot.Target("tpu", "v5e:4x4", 16).hbm_bytes == 16 * 2**30


def test_the_mesh_is_checked_against_the_target_not_this_host():
  from pvg_jax import config
  cfg = arith.get_config("smoke")
  cfg.mesh.shape = (1, 16, 1)                # 16 chips of a v5e:4x4; this host has 8
  config.validate(cfg, devices=16, host_memory=False)
  with pytest.raises(config.ConfigError, match="needs 16 devices"):
    config.validate(cfg)


def test_a_step_that_cannot_fit_is_reported_not_raised(monkeypatch):
  """libtpu refuses, at compile time, a program whose temporaries exceed HBM: the report
  names the step and what it needed, and the other steps are still compiled."""
  message = ("RESOURCE_EXHAUSTED: E1000: CompileTimeHbmOom: Ran out of memory on HBM, the "
             "total memory required for HLO temporaries (17.99G) exceeds available HBM "
             "(15.75G). HLO module: jit_step.")

  class TooBig:
    def lower(self, *args):
      return self

    def compile(self):
      raise RuntimeError(message)

  real = aot.abstract_inputs
  monkeypatch.setattr(aot, "abstract_inputs", lambda *a: {
      "sft_step": (TooBig(), ()), "score": real(*a)["score"]})
  cfg = arith.get_config("smoke")
  target = aot.Target("cpu", "cpu x8", 8)
  rows = aot.compile_report(cfg, target)
  assert [r["step"] for r in rows] == ["sft_step", "score"] and rows[1]["flops"] > 0
  report = aot.format_report(cfg, target, rows, (8, 1, 1)).splitlines()
  assert report[3] == ("sft_step      does not fit: Ran out of memory on HBM, the total "
                       "memory required for HLO temporaries (17.99G) exceeds available HBM "
                       "(15.75G)")
