"""Bad input, table-driven: every case exits 2 with one line on stderr that names the
culprit (key, file:line or path), and leaves the workdir as it was.

Config and workdir cases run the main job's library path (`train.train` inside
`cli.errors`, exactly what pvg-train runs after parsing flags); command-line cases run
the console scripts in subprocesses, flag parsing included."""

import json
import os
import subprocess
import sys

import pytest

from pvg_jax import cli, files, train
from tests.conftest import REPO
from tests.test_config import _with

CONFIG_CASES = [   # (dotted key, value, what the message must name)
    ("seed", -1, "config.seed"),
    ("seed", 2 ** 40, "config.seed"),
    ("mesh.shape", (2, 1, 1), "mesh.shape=(2, 1, 1) needs 2 devices"),
    ("mesh.shape", (3, -1, 1), "mesh.shape=(3, 2, 1) needs 6 devices"),
    ("mesh.shape", (1, 1), "config.mesh.shape"),
    ("mesh.shape", (0, 1, 1), "config.mesh.shape"),
    ("mesh.shape", (-1, -1, 1), "at most one -1"),
    ("world.min_start", 0, "world.min_start"),
    ("world.min_steps", 3, "world.min_steps"),
    ("world.start_range", (1, 100), "world.start_range"),
    ("world.operations", ("times", "divide"), "world.operations"),
    ("world.max_number", 10, "world.max_number"),
    ("world.styles", ("full", "fancy"), "world.styles"),
    ("world.style_weights", (1.0, 1.0), "world.style_weights"),
    ("evals.checker_budget_share", 1.0, "config.evals.checker_budget_share"),
    ("evals.checker_effort_terse", -1, "config.evals.checker_effort_terse"),
    ("prover.size", "huge", "config.prover.size"),
    ("verifier.size", "p120k", "config.verifier.size"),
    ("sft.steps", 0, "config.sft.steps"),
    ("sft.batch_size", 3, "config.sft.batch_size"),
    ("sft.lr", 0.0, "config.sft.lr"),
    ("verifier_pretrain.loss", "hinge", "config.verifier_pretrain.loss"),
    ("game.reward", "bogus", "config.game.reward"),
    ("game.rounds", 0, "config.game.rounds"),
    ("game.roles", "neither", "config.game.roles"),
    ("game.ppo.advantages", "vtrace", "config.game.ppo.advantages"),
    ("game.ppo.whiten", "all", "config.game.ppo.whiten"),
    ("game.ppo.group_size", 1, "config.game.ppo.group_size"),
    ("game.ppo.minibatches", 3, "config.game.ppo.minibatches"),
    ("game.ppo.role_anchor_share", 0.0, "config.game.ppo.role_anchor_share"),
    ("game.ppo.beta", -0.1, "config.game.ppo.beta"),
    ("game.ppo.max_kl", -1.0, "config.game.ppo.max_kl"),
    ("game.verifier.generator_share", 1.0, "config.game.verifier.generator_share"),
    ("game.verifier.k", 3, "config.game.verifier.k"),
    ("game.heldout_pool_problems", 64, "config.game.heldout_pool_problems"),
    ("game.mixture", "0,0", "config.game.mixture"),
    ("game.mixture", "1,2,3", "config.game.mixture"),
    ("game.mixture", "a,b", "config.game.mixture"),
    ("game.sample_batch", 10 ** 6, "GiB"),
    ("init_checkpoint_every", 0, "config.init_checkpoint_every"),
    ("log_every", 0, "config.log_every"),
    ("eval.temperature", -1.0, "config.eval.temperature"),
    ("evals.judges", ("v16k",), "config.evals.judges"),
    ("evals.best_of_n", (3,), "config.evals.best_of_n"),
]


def _snapshot(path):
  """Everything under `path` (None if it does not exist), to compare before and after."""
  if not path.exists():
    return None
  if path.is_file():
    return path.read_bytes()
  return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None
          for p in sorted(path.rglob("*"))}


def _expect_one_line_exit_2(cfg, workdir, capsys, monkeypatch, culprit: str) -> None:
  monkeypatch.delenv("PVG_DEBUG", raising=False)
  before = _snapshot(workdir)
  with pytest.raises(SystemExit) as exit_info:
    with cli.errors("pvg-train"):
      train.train(cfg, workdir)
  err = capsys.readouterr().err
  assert exit_info.value.code == cli.EXIT_USAGE, err
  assert len(err.strip().splitlines()) == 1, err
  assert err.startswith("pvg-train: error: ") and culprit in err, err
  assert _snapshot(workdir) == before


@pytest.mark.parametrize("key,value,culprit", CONFIG_CASES,
                         ids=[f"{k}={v}" for k, v, _ in CONFIG_CASES])
def test_bad_config_value(smoke_config, tmp_path, capsys, monkeypatch, key, value, culprit):
  _expect_one_line_exit_2(_with(smoke_config, key, value), tmp_path / "run", capsys,
                          monkeypatch, culprit)


def _other_config(workdir, cfg):
  other = cfg.copy_and_resolve_references()
  with other.unlocked():
    other.seed = 5
  workdir.mkdir()
  (workdir / "config.json").write_text(other.to_json_best_effort(sort_keys=True))


def _matching_config(workdir, cfg):
  workdir.mkdir()
  (workdir / "config.json").write_text(cfg.to_json_best_effort(sort_keys=True))


WORKDIR_CASES = {   # name: (prepare(workdir, cfg), what the message must name)
    "workdir_is_a_file": (lambda w, c: w.write_text("x"), "is a file, not a directory"),
    "other_config": (_other_config, "different config (keys: seed)"),
    "truncated_config": (lambda w, c: (w.mkdir(), (w / "config.json").write_text('{"seed"')),
                         "config.json: not valid JSON"),
    "binary_config": (lambda w, c: (w.mkdir(), (w / "config.json").write_bytes(b"\xff\xfe")),
                      "config.json: not UTF-8"),
    "truncated_summary": (lambda w, c: (_matching_config(w, c),
                                        (w / "summary.json").write_text('{"rounds": [')),
                          "summary.json: not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(WORKDIR_CASES))
def test_bad_workdir(smoke_config, tmp_path, capsys, monkeypatch, case):
  prepare, culprit = WORKDIR_CASES[case]
  workdir = tmp_path / "run"
  prepare(workdir, smoke_config)
  _expect_one_line_exit_2(smoke_config, workdir, capsys, monkeypatch, culprit)


def test_occupied_workdir(smoke_config, tmp_path, capsys, monkeypatch):
  workdir = tmp_path / "run"
  workdir.mkdir()
  with files.WorkdirLock(workdir):
    _expect_one_line_exit_2(smoke_config, workdir, capsys, monkeypatch,
                            f"{workdir} is in use by pid {os.getpid()}")


def _gsm8k_file(tmp_path, content: bytes):
  path = tmp_path / "data.jsonl"
  path.write_bytes(content)
  return str(path)


GOOD = json.dumps({"question": "q", "answer": "#### 1"}).encode()
CLI_CASES = {   # name: (argv after python -m, or a function of tmp_path giving it; culprit)
    "unknown_config_key": (["pvg_jax.main", "--config", "configs/arith.py:smoke",
                            "--config.game.foo=1", "--workdir", "{w}"], "foo"),
    "wrong_type_override": (["pvg_jax.main", "--config", "configs/arith.py:smoke",
                             "--config.seed=abc", "--workdir", "{w}"], "seed"),
    "bad_config_option": (["pvg_jax.main", "--config", "configs/arith.py:bogus",
                           "--workdir", "{w}"], "bogus"),
    "missing_config_file": (["pvg_jax.main", "--config", "configs/nope.py",
                             "--workdir", "{w}"], "nope.py"),
    "unknown_flag": (["pvg_jax.main", "--config", "configs/arith.py:smoke", "--bogus",
                      "--workdir", "{w}"], "bogus"),
    "missing_workdir_flag": (["pvg_jax.main", "--config", "configs/arith.py:smoke"],
                             "workdir"),
    "seed_flag_negative": (["pvg_jax.main", "--config", "configs/arith.py:smoke",
                            "--config.seed=-1", "--workdir", "{w}"], "config.seed"),
    "gsm8k_empty": (lambda t: ["pvg_jax.worlds.gsm8k", _gsm8k_file(t, b"")],
                    "data.jsonl: no GSM8K examples"),
    "gsm8k_not_utf8": (lambda t: ["pvg_jax.worlds.gsm8k", _gsm8k_file(t, GOOD + b"\n\xff\n")],
                       "data.jsonl:2: not UTF-8"),
    "gsm8k_not_json": (lambda t: ["pvg_jax.worlds.gsm8k", _gsm8k_file(t, b"{oops\n")],
                       "data.jsonl:1: not a JSON line"),
    "gsm8k_missing": (["pvg_jax.worlds.gsm8k", "/nonexistent/test.jsonl"],
                      "/nonexistent/test.jsonl"),
    "report_missing_workdir": (["pvg_jax.report.build", "--workdir", "{w}"], "{w}"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_command_line(tmp_path, case):
  argv, culprit = CLI_CASES[case]
  workdir = tmp_path / "run"
  argv = argv(tmp_path) if callable(argv) else argv
  argv = [a.replace("{w}", str(workdir)) for a in argv]
  env = {k: v for k, v in os.environ.items() if k != "PVG_DEBUG"}
  proc = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == cli.EXIT_USAGE, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and culprit.replace("{w}", str(workdir)) in lines[0], proc.stderr
  assert not workdir.exists()


def test_broken_pipe_is_not_an_error(gsm8k_dir):
  """`pvg-gsm8k-check test.jsonl | head -1`: exit 0, no BrokenPipeError."""
  proc = subprocess.run(
      f"set -o pipefail; {sys.executable} -m pvg_jax.worlds.gsm8k "
      f"{gsm8k_dir / 'test.jsonl'} | head -1",
      shell=True, cwd=REPO, capture_output=True, text=True, timeout=120,
      executable="/bin/bash")
  assert proc.returncode == 0 and "BrokenPipe" not in proc.stderr, proc.stderr
