"""Validation of experiment configs, before anything is built or compiled.

Config files (configs/*.py) return locked ConfigDicts, so an unknown key already fails at
override time; `validate` checks values and their relations, naming the key and what is
allowed.
"""

from __future__ import annotations

import ml_collections

from pvg_jax.models import sizes
from pvg_jax.verifier import losses
from pvg_jax.worlds.arith import problems


class ConfigError(ValueError):
  """A config value that cannot work."""


def _require(ok: bool, key: str, message: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}: {message}")


def _positive_int(cfg, key: str) -> None:
  value = cfg
  for part in key.split("."):
    value = value[part]
  _require(isinstance(value, int) and value > 0, key, f"must be a positive integer, got "
           f"{value!r}")


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raise ConfigError on the first impossible value."""
  for player in ("prover", "verifier"):
    _require(cfg[player].size in sizes.SIZES, f"{player}.size",
             f"unknown size {cfg[player].size!r}; allowed: {sorted(sizes.SIZES)}")
  p, v = sizes.SIZES[cfg.prover.size], sizes.SIZES[cfg.verifier.size]
  _require(cfg.allow_larger_verifier or v[0] ** 2 * v[1] <= p[0] ** 2 * p[1], "verifier.size",
           f"{cfg.verifier.size} is larger than the prover {cfg.prover.size}; set "
           "allow_larger_verifier=True to allow it")
  for key in ("sft.steps", "sft.batch_size", "sft.num_problems", "verifier_pretrain.steps",
              "verifier_pretrain.batch_size", "verifier_pretrain.num_problems",
              "eval.num_problems", "eval.samples_per_role", "eval.batch_size", "log_every"):
    _positive_int(cfg, key)
  for section in ("sft", "verifier_pretrain"):
    _require(cfg[section].lr > 0, f"{section}.lr", f"must be > 0, got {cfg[section].lr}")
  _require(cfg.verifier_pretrain.loss in losses.LOSSES, "verifier_pretrain.loss",
           f"{cfg.verifier_pretrain.loss!r}; allowed: {sorted(losses.LOSSES)}")
  _require(cfg.verifier_pretrain.lam >= 0, "verifier_pretrain.lam",
           f"must be >= 0, got {cfg.verifier_pretrain.lam}")
  _require(cfg.sft.batch_size % 2 == 0, "sft.batch_size", "must be even (half each role)")
  bad_ops = [o for o in cfg.world.operations if o not in problems.OPERATIONS]
  _require(not bad_ops, "world.operations", f"{bad_ops} not in {problems.OPERATIONS}")
  _require(cfg.eval.temperature >= 0, "eval.temperature", "must be >= 0")
  _require(len(cfg.mesh.shape) == 3, "mesh.shape", "one size per axis (data, fsdp, tensor)")
