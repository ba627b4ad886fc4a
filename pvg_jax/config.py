"""Validation of experiment configs, before anything is built or compiled.

Config files (configs/*.py) return locked ConfigDicts, so an unknown key already fails at
override time; `validate` checks types, values and their relations, naming the key and
what is allowed.
"""

from __future__ import annotations

import ml_collections

from pvg_jax.models import sizes, transformer
from pvg_jax.rl import prover_step, rewards
from pvg_jax.verifier import losses, pool
from pvg_jax.worlds import WORLDS
from pvg_jax.worlds.arith import problems


class ConfigError(ValueError):
  """A config value that cannot work."""


BASELINE_STEPS_FACTOR = 2   # the baseline's single run is this many rounds' budgets long


# Games played beside the main game and the baseline from the same initial players, each
# the main game's config with one change (docs/results.md): name -> (key, value, meaning).
CONTROLS = {
    "cgc": ("game.reward", "cgc", "correctness-gated convincingness instead of SRC"),
    "oracle_verifier": ("game.reward", "oracle_src",
                        "SRC with the grader's verdict as the verifier's score"),
    "no_sneaky": ("game.roles", "helpful", "the helpful role only: no sneaky prover"),
    "frozen_verifier": ("game.verifier.steps", 0,
                        "no verifier training: every round plays V_init"),
}


# what a control game is evaluated for (pvg-experiments, pvg-report): the measures its
# comparison needs, not the attacks
CONTROL_PARTS = ("dynamics", "legibility", "styles", "flaws", "crossplay")


def as_control(cfg: ml_collections.ConfigDict, name: str) -> None:
  """Turn the main game's config into control game `name` of CONTROLS, in place."""
  if name not in CONTROLS:
    raise ConfigError(f"unknown control game {name!r}; expected one of {sorted(CONTROLS)}")
  key, value, _ = CONTROLS[name]
  *path, last = key.split(".")
  block = cfg
  for part in path:
    block = block[part]
  block[last] = value


def as_baseline(cfg: ml_collections.ConfigDict) -> None:
  """Turn a game config into its correctness-only baseline, in place: the same players, beta
  and PPO settings, reward = correctness, one continuous run of BASELINE_STEPS_FACTOR x the
  per-round step budget (K's baseline is one RL run, not restarted rounds)."""
  cfg.game.reward = "correctness"
  cfg.game.rounds = 1
  cfg.game.ppo.max_steps = cfg.game.ppo.steps = cfg.game.ppo.max_steps * BASELINE_STEPS_FACTOR


DEFAULT_COMPUTE_DTYPE = "float32"


def compute_dtype(cfg) -> str:
  """cfg.compute_dtype; configs saved before the option existed ran in float32."""
  return cfg.get("compute_dtype", DEFAULT_COMPUTE_DTYPE)


# World keys added after runs were saved, with the value those runs had: a saved config or
# cache key without them is the same world as one that sets them to these values.
SINGLE_STYLE_WORLD = {"styles": ["full"], "style_weights": [1.0]}


def without_legacy_world_keys(world: dict) -> dict:
  """`world` without the keys of SINGLE_STYLE_WORLD that hold their legacy values."""
  return {k: v for k, v in world.items()
          if not (k in SINGLE_STYLE_WORLD and list(v) == SINGLE_STYLE_WORLD[k])}


def _get(cfg, key: str):
  value = cfg
  for part in key.split("."):
    value = value[part]
  return value


def _require(ok: bool, key: str, message: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}: {message}")


def _positive_int(cfg, key: str) -> None:
  value = _get(cfg, key)
  _require(isinstance(value, int) and not isinstance(value, bool) and value > 0, key,
           f"must be a positive integer, got {value!r}")


def _non_negative(cfg, key: str) -> None:
  value = _get(cfg, key)
  _require(isinstance(value, (int, float)) and value >= 0, key,
           f"must be a number >= 0, got {value!r}")


def _one_of(cfg, key: str, allowed) -> None:
  value = _get(cfg, key)
  _require(value in allowed, key, f"{value!r} is not one of the allowed values {allowed}")


def validate(cfg: ml_collections.ConfigDict, devices: int | None = None,
             host_memory: bool = True) -> None:
  """Raise ConfigError on the first impossible value: types, ranges, their relations, the
  world's ranges, the mesh against the devices (`devices`, default this process's) and,
  with `host_memory`, the memory the run will need against this host's (ahead-of-time
  compiles for another target check neither against this host)."""
  _require(isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool)
           and 0 <= cfg.seed < 2 ** 32, "seed", f"must be an integer in [0, 2**32), got "
           f"{cfg.seed!r}")
  _one_of_value(world_name(cfg), "world.name", WORLDS)
  if world_name(cfg) == "gsm8k":
    for key, what in (("prover.checkpoint", "a Hugging Face checkpoint directory"),
                      ("verifier.checkpoint", "a Hugging Face checkpoint directory"),
                      ("world.tokenizer", "the players' tokenizer.json (or its directory)"),
                      ("world.data_dir", "a directory with GSM8K's train.jsonl and "
                                         "test.jsonl")):
      _require(bool(_get(cfg, key)), key, f"the gsm8k world needs {what}")
  for player in ("prover", "verifier"):
    if not cfg[player].get("checkpoint", ""):
      _one_of(cfg, f"{player}.size", tuple(sizes.SIZES))
  (pd, pl), (vd, vl) = player_shape(cfg, "prover"), player_shape(cfg, "verifier")
  which = {p: cfg[p].get("checkpoint", "") or cfg[p].size for p in ("prover", "verifier")}
  _require(cfg.allow_larger_verifier or vd ** 2 * vl <= pd ** 2 * pl,
           "verifier.checkpoint" if cfg.verifier.get("checkpoint", "") else "verifier.size",
           f"{which['verifier']} is larger than the prover {which['prover']}; set "
           "allow_larger_verifier=True to allow it")
  for key in ("sft.steps", "sft.batch_size", "sft.num_problems", "verifier_pretrain.steps",
              "verifier_pretrain.batch_size", "verifier_pretrain.num_problems",
              "eval.num_problems", "eval.samples_per_role", "eval.batch_size", "log_every",
              "game.rounds", "game.pool_problems", "game.pool_samples_per_role",
              "game.prover_problems", "game.eval_problems", "game.eval_samples_per_role",
              "game.sample_batch", "game.checkpoint_every", "game.snapshot_every",
              "game.verifier.batch_size", "game.verifier.k", "game.ppo.max_steps",
              "game.ppo.groups", "game.ppo.group_size", "game.ppo.epochs",
              "game.ppo.minibatches", "game.ppo.stop_window", "init_checkpoint_every"):
    _positive_int(cfg, key)
  steps = cfg.game.verifier.steps    # 0: every round plays V_init (the frozen-verifier control)
  _require(isinstance(steps, int) and steps >= 0, "game.verifier.steps",
           f"must be an integer >= 0 (0: the verifier is never trained), got {steps!r}")
  for key in ("sft.lr", "verifier_pretrain.lr", "game.verifier.lr", "game.ppo.lr"):
    _require(_get(cfg, key) > 0, key, f"must be > 0, got {_get(cfg, key)}")
  for key in ("verifier_pretrain.lam", "game.verifier.lam", "game.ppo.beta",
              "eval.temperature", "game.ppo.temperature", "game.ppo.clip_eps",
              "game.ppo.value_clip", "game.ppo.vf_coef", "game.ppo.whiten_floor",
              "game.ppo.role_anchor", "game.ppo.critic_warmup_steps", "profile_steps",
              "game.ppo.max_kl", "game.ppo.min_parseable"):
    _non_negative(cfg, key)
  for key in ("verifier_pretrain.loss", "game.verifier.loss"):
    _one_of(cfg, key, tuple(losses.LOSSES))
  _one_of(cfg, "game.reward", tuple(rewards.REWARDS))
  _one_of(cfg, "game.ppo.advantages", prover_step.ADVANTAGES)
  _one_of(cfg, "game.ppo.whiten", prover_step.WHITEN)
  _one_of(cfg, "game.roles", ("both", "helpful", "sneaky"))
  _one_of_value(compute_dtype(cfg), "compute_dtype", transformer.COMPUTE_DTYPES)
  _require(cfg.game.ppo.advantages != "rloo" or cfg.game.ppo.group_size >= 2,
           "game.ppo.group_size", "the rloo group baseline needs group_size >= 2")
  _require(cfg.sft.batch_size % 2 == 0, "sft.batch_size", "must be even (half each role)")
  _require(0 < cfg.game.ppo.role_anchor_share <= 1, "game.ppo.role_anchor_share",
           f"must be in (0, 1], got {cfg.game.ppo.role_anchor_share}")
  share = cfg.game.verifier.generator_share
  _require(0 <= share < 1, "game.verifier.generator_share",
           f"must be in [0, 1) so every step has pool problems, got {share}")
  _require(cfg.game.verifier.k % 2 == 0, "game.verifier.k",
           f"must be even (half correct, half incorrect), got {cfg.game.verifier.k}")
  _require(cfg.game.reward != "src" or cfg.game.ppo.group_size >= 2, "game.ppo.group_size",
           "SRC centres scores within a group: needs group_size >= 2")
  n = cfg.game.ppo.groups * cfg.game.ppo.group_size
  _require(n % cfg.game.ppo.minibatches == 0, "game.ppo.minibatches",
           f"must divide groups * group_size = {n}")
  _require(cfg.game.heldout_pool_problems < cfg.game.pool_problems,
           "game.heldout_pool_problems", f"must be < game.pool_problems "
           f"({cfg.game.pool_problems}) so some pool problems are left to train on")
  _require(0 <= cfg.game.heldout_pool_problems, "game.heldout_pool_problems", "must be >= 0")
  try:
    mixture = pool.parse_mixture(cfg.game.mixture)
  except ValueError as e:
    raise ConfigError(f"config.game.mixture: {e}") from None
  if not isinstance(mixture, str):
    _require(len(mixture) == cfg.game.rounds and all(w >= 0 for w in mixture)
             and sum(mixture) > 0, "game.mixture",
             f"explicit weights need one weight >= 0 per round ({cfg.game.rounds}), "
             f"got {cfg.game.mixture!r}")
  if world_name(cfg) == "arith":
    bad_ops = [o for o in cfg.world.operations if o not in problems.OPERATIONS]
    _require(not bad_ops, "world.operations", f"{bad_ops} not in {problems.OPERATIONS}")
  _validate_world(cfg)
  _validate_mesh(cfg, devices)
  if host_memory:
    _validate_memory(cfg)
  if "evals" in cfg:
    _validate_evals(cfg)


def _validate_world(cfg: ml_collections.ConfigDict) -> None:
  """The world's own checks (ranges, operations, data files), as config errors naming the
  key (a missing or malformed data file is the reader's one-line error)."""
  from pvg_jax import worlds
  try:
    worlds.make(cfg)
  except (ValueError, TypeError) as e:
    raise ConfigError(f"config.world: {e}") from None


def world_name(cfg: ml_collections.ConfigDict) -> str:
  return cfg.world.get("name", "arith")


def player_shape(cfg: ml_collections.ConfigDict, player: str) -> tuple[int, int]:
  """(d_model, n_layers) of a player: its named size, or its checkpoint's config.json."""
  path = cfg[player].get("checkpoint", "")
  if not path:
    return sizes.SIZES[cfg[player].size][:2]
  from pvg_jax.models import hf
  config = hf.read_config(path)
  return config["hidden_size"], config["num_hidden_layers"]


def _validate_mesh(cfg: ml_collections.ConfigDict, devices: int | None) -> None:
  import jax

  from pvg_jax import sharding
  shape = tuple(cfg.mesh.shape)
  _require(len(shape) == 3 and all(isinstance(s, int) and (s > 0 or s == -1) for s in shape),
           "mesh.shape", f"needs one size per axis (data, fsdp, tensor), each > 0 or -1, "
           f"got {shape}")
  try:
    sharding.resolve_mesh_shape(shape, jax.device_count() if devices is None else devices)
  except ValueError as e:
    raise ConfigError(f"config.{e}") from None


def estimated_memory_bytes(cfg: ml_collections.ConfigDict) -> int:
  """A lower bound on what the game holds at once: float32 params, AdamW moments and
  gradients of both players and the frozen reference prover, plus the largest batch's
  activations (attention scores and the MLP per layer, fp32)."""
  total = 0
  for player in ("prover", "verifier"):
    d, layers = player_shape(cfg, player)
    params = 12 * d * d * layers
    total += 4 * params * (4 + (player == "prover"))    # params, grads, 2 moments (+ ref)
  d, layers = player_shape(cfg, "prover")
  rows = max(cfg.game.ppo.groups * cfg.game.ppo.group_size // cfg.game.ppo.minibatches,
             cfg.game.sample_batch, cfg.sft.batch_size)
  seq = (cfg.world.prompt_len + cfg.world.solution_len if world_name(cfg) == "gsm8k"
         else 256)                                   # 256: longer than any arith layout
  total += 4 * rows * layers * (seq * seq + 6 * seq * d)
  return total


def _validate_memory(cfg: ml_collections.ConfigDict) -> None:
  import os
  need = estimated_memory_bytes(cfg)
  try:
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return
  _require(need < have, "prover.size", f"the run needs at least {need / 2**30:.1f} GiB "
           f"(estimated from the model and batch shapes) but this host has "
           f"{have / 2**30:.1f} GiB; choose smaller sizes or batches")


def _validate_evals(cfg: ml_collections.ConfigDict) -> None:
  for key in ("test_problems", "samples_per_problem", "judge_problems",
              "judge_samples_per_role", "judge_steps", "judge_batch", "bon_samples",
              "bon_draws", "attack_steps", "attack_groups", "attack_group_size",
              "attack_window", "separability_steps", "separability_batch"):
    _positive_int(cfg, f"evals.{key}")
  _non_negative(cfg, "evals.checker_budget")
  for key in ("checker_effort_terse", "checker_effort_merged"):
    if key in cfg.evals:
      _non_negative(cfg, f"evals.{key}")
  if "checker_budget_share" in cfg.evals:
    _require(0.0 <= cfg.evals.checker_budget_share < 1.0, "evals.checker_budget_share",
             f"{cfg.evals.checker_budget_share!r} must lie in [0, 1)")
  _one_of(cfg, "evals.checker_fallback", ("coin", "accept", "reject"))
  _one_of(cfg, "evals.separability_size", tuple(sizes.SIZES))
  for judge in cfg.evals.judges:
    size, _, seed = str(judge).partition(":")
    _require(size in sizes.SIZES and seed.isdigit(), "evals.judges",
             f"{judge!r} is not '<size>:<seed>' with a size in {sorted(sizes.SIZES)}")
  for n in cfg.evals.best_of_n:
    _require(isinstance(n, int) and n >= 2 and n % 2 == 0 and 2 * n <= cfg.evals.bon_samples,
             "evals.best_of_n", f"{n!r}: every n must be even, >= 2 and at most half of "
             f"evals.bon_samples ({cfg.evals.bon_samples}), so the balanced draws vary")
  for reward in cfg.evals.attack_rewards:
    _one_of_value(reward, "evals.attack_rewards", ("src", "cgc", "goodhart"))
  _require(len(cfg.evals.judges) > 0, "evals.judges", "needs at least one model judge")
  n = cfg.evals.attack_groups * cfg.evals.attack_group_size
  _require(n % cfg.game.ppo.minibatches == 0, "evals.attack_groups",
           f"attack_groups * attack_group_size = {n} must be divisible by "
           f"game.ppo.minibatches ({cfg.game.ppo.minibatches})")
  _require(cfg.evals.attack_group_size >= 2, "evals.attack_group_size",
           "SRC centres scores within a group: needs >= 2")
  _require(cfg.evals.attack_window <= cfg.evals.attack_steps, "evals.attack_window",
           f"must be <= evals.attack_steps ({cfg.evals.attack_steps}) or no attack can succeed")


def _one_of_value(value, key: str, allowed) -> None:
  _require(value in allowed, key, f"{value!r} is not one of the allowed values {allowed}")
