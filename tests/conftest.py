"""Test setup: 8 fake CPU devices (set before jax is imported) and shared fixtures."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def smoke_config():
  from configs import arith
  return arith.get_config("smoke")


@pytest.fixture(scope="session")
def gsm8k_dir() -> pathlib.Path:
  path = SHARED / "data" / "gsm8k"
  if not path.exists():
    pytest.fail(f"GSM8K data not found at {path}: tests read it from ../shared beside the repo")
  return path
