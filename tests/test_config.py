"""Bad configs fail before anything is built, naming the key and what is allowed."""

import json

import pytest

from configs import ablation, arith
from pvg_jax import config, players, train
from pvg_jax.training import state


def _with(cfg, key, value):
  cfg = cfg.copy_and_resolve_references()
  *parents, name = key.split(".")
  node = cfg
  for p in parents:
    node = node[p]
  with cfg.unlocked():
    node[name] = value
  return cfg


@pytest.mark.parametrize("key, value, match", [
    ("prover.size", "huge", "not one of the allowed values"),
    ("verifier.size", "p1m", "larger than the prover"),
    ("sft.steps", 0, "positive integer"),
    ("sft.batch_size", 7, "even"),
    ("sft.lr", 0.0, "> 0"),
    ("verifier_pretrain.loss", "hinge", "allowed values"),
    ("verifier_pretrain.lam", -1.0, ">= 0"),
    ("game.verifier.lam", -0.1, ">= 0"),
    ("game.ppo.beta", -0.05, ">= 0"),
    ("game.ppo.group_size", 1, "group_size >= 2"),
    ("game.reward", "vibes", "allowed values"),
    ("game.mixture", "1,2,3", "one weight >= 0 per round"),
    ("game.mixture", "linear", "'equal', 'exp2'"),
    ("game.verifier.k", 3, "even"),
    ("game.ppo.minibatches", 3, "must divide"),
    ("game.ppo.advantages", "twin", "allowed values"),
    ("game.ppo.whiten", "yes", "allowed values"),
    ("game.roles", "neither", "allowed values"),
    ("game.heldout_pool_problems", 64, "must be < game.pool_problems"),
    ("game.rounds", 0, "positive integer"),
    ("game.checkpoint_every", -1, "positive integer"),
    ("mesh.shape", (8, 1), "one size per axis"),
    ("world.operations", ("times", "divide"), "not in"),
])
def test_bad_values_name_the_key(smoke_config, key, value, match):
  with pytest.raises(config.ConfigError, match=f"config.{key}") as err:
    config.validate(_with(smoke_config, key, value))
  assert match in str(err.value)


def test_defaults_and_variants_are_valid():
  for arg in ("", "smoke", "cgc", "goodhart", "correctness", "smoke,cgc", "styles", "terse",
              "smoke,terse,correctness"):
    config.validate(arith.get_config(arg))


def test_larger_verifier_needs_the_switch(smoke_config):
  cfg = _with(smoke_config, "verifier.size", "p1m")
  config.validate(_with(cfg, "allow_larger_verifier", True))


def test_wrong_types_are_rejected_when_set(smoke_config):
  with pytest.raises(TypeError, match="'steps'"):
    _with(smoke_config, "sft.steps", 2.5)
  with pytest.raises(TypeError, match="'beta'"):
    _with(smoke_config, "game.ppo.beta", "high")


def test_unknown_keys_and_options_are_rejected(smoke_config):
  with pytest.raises(AttributeError, match="no_such_key"):
    smoke_config.game.no_such_key = 1
  with pytest.raises(ValueError, match="options are"):
    arith.get_config("fast")


def test_validation_runs_before_anything_is_built(smoke_config, tmp_path):
  with pytest.raises(config.ConfigError):
    train.train(_with(smoke_config, "game.ppo.group_size", 1), tmp_path / "w")
  assert not (tmp_path / "w").exists()


def test_a_config_saved_before_compute_dtype_is_a_float32_run(tmp_path):
  """Workdirs and player caches from before the option keep working: a saved config without
  compute_dtype validates, reads as float32, shows no config change against today's default
  and keeps its player cache key; bfloat16 gets a key of its own."""
  import json

  import ml_collections

  from pvg_jax import players
  cfg = arith.get_config("smoke")
  saved = cfg.to_dict()
  del saved["compute_dtype"]
  old = ml_collections.ConfigDict(saved)
  config.validate(old)
  assert config.compute_dtype(old) == "float32"
  assert train.game_config_diff(json.loads(old.to_json()), cfg) == []
  assert players.cache_key(old) == players.cache_key(cfg)
  cfg.compute_dtype = "bfloat16"
  assert players.cache_key(cfg) != players.cache_key(old)
  assert train.game_config_diff(json.loads(old.to_json()), cfg) == ["compute_dtype"]
  # a game whose config has no compute_dtype at all (Anil's) resumes against itself
  assert train.game_config_diff(json.loads(old.to_json()), old) == []


@pytest.mark.parametrize("name", sorted(config.CONTROLS))
def test_each_control_game_changes_one_key_and_is_valid(smoke_config, name):
  cfg = smoke_config.copy_and_resolve_references()
  with cfg.unlocked():
    config.as_control(cfg, name)
  config.validate(cfg)
  key, value, _ = config.CONTROLS[name]
  assert train.game_config_diff(json.loads(smoke_config.to_json_best_effort()), cfg) == [key]
  block = cfg
  for part in key.split("."):
    block = block[part]
  assert block == value
  with pytest.raises(config.ConfigError, match="unknown control game"):
    config.as_control(cfg, "placebo")


def test_a_moved_experiment_keeps_its_config():
  """init_players_dir says where the cache is, not what is played (the cache checks its
  own keys): a run whose saved config differs only there is the same run."""
  cfg = arith.get_config("smoke")
  saved = json.loads(cfg.to_json_best_effort())
  saved["init_players_dir"] = "/elsewhere/seed_0/init_players"
  assert train.game_config_diff(saved, cfg) == []
  saved["seed"] = 3
  assert train.game_config_diff(saved, cfg) == ["seed"]


def test_experiment_parts_restrict_every_runs_evaluations(smoke_config, tmp_path,
                                                         monkeypatch):
  """pvg-experiments --parts: each run is evaluated for the asked parts that apply to it
  (the baseline and controls never gain the attacks), in seed-major order."""
  from pvg_jax import cli, experiments
  calls = []
  monkeypatch.setattr(experiments, "_train_and_evaluate",
                      lambda cfg, workdir, parts: calls.append((workdir.name, parts)))
  experiments.seeds(smoke_config, tmp_path, 2, controls=("no_sneaky",),
                    parts=("dynamics", "attacks"))
  assert calls == [("src", ("dynamics", "attacks")), ("correctness", ("dynamics",)),
                   ("no_sneaky", ("dynamics",))] * 2
  calls.clear()
  experiments.seeds(smoke_config, tmp_path, 1, controls=("no_sneaky",))
  assert calls == [("src", None), ("correctness", experiments.evals_run.BASELINE_PARTS),
                   ("no_sneaky", experiments.CONTROL_PARTS)]
  with pytest.raises(cli.UserError, match="--parts: unknown evaluation 'atacks'"):
    experiments.seeds(smoke_config, tmp_path, 1, parts=("atacks",))


ABLATION_KEYS = {
    "schedule": ["game.ppo.steps", "game.ppo.warmup_steps"],
    "critic": ["game.ppo.advantages", "game.ppo.critic_warmup_steps"],
    "anchor": ["game.ppo.role_anchor"],
    "verifier": ["game.verifier.generator_share"],
}


@pytest.mark.parametrize("fix", [*ablation.FIXES, "all"])
def test_each_ablation_undoes_its_fix_and_nothing_else(fix):
  """configs/ablation.py differs from the terse world only in the undone fix's keys, keeps
  the step budget and the initial players (same cache keys), and is valid."""
  terse = arith.get_config("smoke,terse")
  cfg = ablation.get_config(f"smoke,{fix}")
  config.validate(cfg)
  keys = sorted(k for f in (ablation.FIXES if fix == "all" else (fix,))
                for k in ABLATION_KEYS[f])
  assert train.game_config_diff(json.loads(terse.to_json_best_effort()), cfg) == keys
  assert cfg.game.ppo.max_steps == terse.game.ppo.max_steps
  assert players.cache_key(cfg) == players.cache_key(terse)
  with pytest.raises(ValueError, match="name the fixes to undo"):
    ablation.get_config("smoke")


def test_the_schedule_ablation_is_the_old_schedule_in_ppo_steps():
  """Before the fix the decay counted optimizer updates (epochs x minibatches per PPO step)
  against the step budget: it reached its 10% floor after a quarter of the budget."""
  fixed, undone = arith.get_config("terse").game.ppo, ablation.get_config("schedule").game.ppo
  updates = fixed.epochs * fixed.minibatches
  fixed_lr = state.make_schedule(fixed, updates)
  old_lr = state.make_schedule(undone, updates)
  floor = 0.1 * fixed.lr
  budget = fixed.max_steps * updates
  assert float(old_lr(budget // updates)) == pytest.approx(floor)   # PPO step 25 of 100
  assert float(fixed_lr(budget // updates)) > 0.9 * fixed.lr
  assert float(fixed_lr(budget)) == pytest.approx(floor)


def test_an_unknown_evaluation_part_is_refused_before_anything_is_loaded(tmp_path):
  """pvg-eval --parts stylez: one line naming it, before the workdir is even read."""
  from pvg_jax import cli
  from pvg_jax.evals import run as evals_run
  with pytest.raises(cli.UserError, match="--parts: unknown evaluation 'stylez'"):
    evals_run.evaluate(tmp_path / "no_such_run", parts=("styles", "stylez"))
