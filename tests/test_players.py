"""Initial players end to end on the smoke config: train, cache, reuse, reject a bad cache."""

import json
import pathlib
import shutil

import jax
import numpy as np
import pytest

from pvg_jax import checkpoint, players, sharding
from pvg_jax.metrics import MetricWriter
from pvg_jax.models import functional
from pvg_jax.training import steps
from pvg_jax.worlds.arith import world as arith_world


def _initial_players(cfg, workdir):
  mesh = sharding.make_mesh(cfg.mesh.shape)
  writer = MetricWriter(workdir)
  try:
    return players.initial_players(cfg, workdir, mesh, writer)
  finally:
    writer.close()


@pytest.fixture(scope="module")
def smoke_run(smoke_config, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("players")
  return workdir, _initial_players(smoke_config, workdir).report


def test_initial_players_report_and_metrics(smoke_run):
  workdir, report = smoke_run
  for key in ("helpful_accuracy", "sneaky_accuracy", "verifier_auc",
              "verifier_pairwise_accuracy"):
    assert key in report
  assert 0 <= report["helpful_accuracy"] <= 1
  assert report["eval_samples"] == 32 * 2 * 2
  lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {x["phase"] for x in lines} == {"prover_sft", "verifier_pretrain"}
  assert list((workdir / "tensorboard").iterdir())


def _cache_dir(cfg, workdir, player="prover") -> pathlib.Path:
  return workdir / "init_players" / f"{player}_{players.cache_key(cfg, player)}"


def test_second_call_reuses_the_cache(smoke_config, smoke_run):
  workdir, report = smoke_run
  stamps = [(_cache_dir(smoke_config, workdir, p) / "meta.json").stat().st_mtime_ns
            for p in ("prover", "verifier")]
  again = _initial_players(smoke_config, workdir)
  assert again.report == report
  assert again.timing == {"prover_restored_from_cache": 1.0,
                          "verifier_restored_from_cache": 1.0}
  assert stamps == [(_cache_dir(smoke_config, workdir, p) / "meta.json").stat().st_mtime_ns
                    for p in ("prover", "verifier")]


def test_players_are_cached_separately(smoke_config, smoke_run, tmp_path):
  """A run that changes only the verifier (a size sweep) reuses the cached prover."""
  workdir, _ = smoke_run
  other = smoke_config.copy_and_resolve_references()
  with other.unlocked():
    other.verifier_pretrain.steps += 1
    other.init_players_dir = str(workdir / "init_players")
  assert players.cache_key(other, "prover") == players.cache_key(smoke_config, "prover")
  assert players.cache_key(other, "verifier") != players.cache_key(smoke_config, "verifier")
  timing = _initial_players(other, tmp_path).timing
  assert timing["prover_restored_from_cache"] == 1.0 and "verifier_train_seconds" in timing
  assert not (tmp_path / "init_players").exists()      # the shared directory was used


def test_same_seed_same_numbers_other_seed_other_key(smoke_config, smoke_run, tmp_path):
  _, report = smoke_run
  assert _initial_players(smoke_config, tmp_path).report == report
  other = smoke_config.copy_and_resolve_references()
  with other.unlocked():
    other.seed = 1
  assert players.cache_key(other) != players.cache_key(smoke_config)


def test_corrupted_cache_is_detected_and_rebuilt(smoke_config, smoke_run, tmp_path):
  workdir, _ = smoke_run
  copy = tmp_path / "w"
  shutil.copytree(workdir, copy)
  cache = _cache_dir(smoke_config, copy)
  meta = json.loads((cache / "meta.json").read_text())
  meta["sha256"] = "0" * 64                      # contents no longer match their checksum
  (cache / "meta.json").write_text(json.dumps(meta))
  mesh = sharding.make_mesh((-1, 1, 1))
  spec, _ = players.player_specs(smoke_config, arith_world.ArithWorld(smoke_config.world, 0))
  abstract = players.sharded_abstract(spec, mesh)
  key = players.cache_key(smoke_config, "prover")
  with pytest.raises(checkpoint.CheckpointError, match="SHA-256"):
    checkpoint.restore(cache, abstract, key)
  _initial_players(smoke_config, copy)           # rebuilds instead of using it
  checkpoint.restore(cache, abstract, key)
  assert json.loads((cache / "meta.json").read_text())["sha256"] != "0" * 64


def test_checkpoint_round_trip_and_mismatch(tmp_path):
  tree = {"a": np.arange(6.0).reshape(2, 3), "b": {"c": np.ones(4, np.int32)}}
  checkpoint.save(tmp_path / "ck", tree, "key1", {"note": 1})
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
  restored, extra = checkpoint.restore(tmp_path / "ck", abstract, "key1")
  jax.tree.map(np.testing.assert_array_equal, restored, tree)
  assert extra == {"note": 1}
  with pytest.raises(checkpoint.CheckpointError, match="key1"):
    checkpoint.restore(tmp_path / "ck", abstract, "key2")
  bad = {"a": jax.ShapeDtypeStruct((3, 3), np.float64), "b": abstract["b"]}
  with pytest.raises(checkpoint.CheckpointError, match="structure"):
    checkpoint.restore(tmp_path / "ck", bad, "key1")
  with pytest.raises(checkpoint.CheckpointError, match="meta.json missing"):
    checkpoint.restore(tmp_path / "nothing", abstract, "key1")


def test_length_buckets_drop_only_shared_padding(smoke_config):
  world = arith_world.ArithWorld(smoke_config.world, 0)
  data = players.role_pair_data(world, "prover", 200)
  buckets = players.LengthBuckets.build(data, world.layout.prompt_len)
  assert len(buckets.members) == smoke_config.world.max_steps
  spec = functional.make_spec("v16k", world.tokenizer.size, ("lm", "value"))
  mesh = sharding.make_mesh((1, 1, 1), jax.devices()[:1])
  params = functional.init_params(spec, jax.random.key(0), mesh, sharding.DEFAULT_RULES)
  rng = np.random.default_rng(0)
  for _ in range(4):
    idx, (lo, hi) = buckets.draw(rng, 8)
    p = world.layout.prompt_len
    assert not data.kv_mask[idx, :, :lo].any()            # only padding is dropped
    assert not data.loss_mask[idx, :, hi - p:].any()
    full = {"tokens": data.tokens[idx, 0], "kv_mask": data.kv_mask[idx, 0],
            "loss_mask": data.loss_mask[idx, 0]}
    cut = {"tokens": data.tokens[idx, 0, lo:hi], "kv_mask": data.kv_mask[idx, 0, lo:hi],
           "loss_mask": data.loss_mask[idx, 0, :hi - p]}
    np.testing.assert_allclose(steps.sft_loss(spec, params, cut)[0],
                               steps.sft_loss(spec, params, full)[0], rtol=1e-5)
