"""Validation of a debate config (configs/debate.py): one line naming the first bad key."""

from __future__ import annotations

import ml_collections

from pvg_jax.config import ConfigError
from pvg_jax.models import sizes
from pvg_jax.worlds.reading import quotes


def validate(cfg: ml_collections.ConfigDict) -> None:
  def need(ok: bool, key: str, msg: str) -> None:
    if not ok:
      raise ConfigError(f"config.{key}: {msg}")

  for player in ("debater", "judge"):
    need(cfg[player].size in sizes.SIZES, f"{player}.size",
         f"{cfg[player].size!r} is not one of {sorted(sizes.SIZES)}")
  need(cfg.world.quote_mode in quotes.MODES, "world.quote_mode",
       f"{cfg.world.quote_mode!r} is not one of {quotes.MODES}")
  need(cfg.world.argument_len >= 4, "world.argument_len", "must be >= 4")
  for key in ("sft.steps", "sft.batch_size", "judge_pretrain.steps",
              "judge_pretrain.batch_size", "game.rounds", "game.steps", "game.questions",
              "game.train_questions", "game.checkpoint_every", "eval.questions",
              "log_every"):
    value = cfg
    for part in key.split("."):
      value = value[part]
    need(isinstance(value, int) and value > 0, key, f"must be a positive integer, got {value!r}")
  need(cfg.game.group_size >= 2, "game.group_size",
       f"must be >= 2 (RLOO needs another argument of the group), got {cfg.game.group_size}")
  need(cfg.game.ppo.advantages == "rloo", "game.ppo.advantages",
       "the debate game uses 'rloo' (no critic)")
  need(not cfg.game.ppo.adaptive_kl, "game.ppo.adaptive_kl",
       "the debate game keeps the KL weight fixed at game.ppo.beta")
  need(cfg.game.ppo.beta >= 0, "game.ppo.beta", f"must be >= 0, got {cfg.game.ppo.beta}")
  need(cfg.game.ppo.minibatches >= 1 and
       (2 * cfg.game.questions * cfg.game.group_size) % cfg.game.ppo.minibatches == 0,
       "game.ppo.minibatches", "must divide the 2 * questions * group_size rows")
