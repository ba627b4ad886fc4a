"""pvg-compile: compile a game's jitted steps for a target mesh ahead of time, without it.

    pvg-compile --config configs/arith.py --topology v5e:4x4
    pvg-compile --config configs/arith.py --config.prover.size=p110m --topology v5p:2x2x2
    pvg-compile --config configs/arith.py --devices 8          # a fake 8-device CPU mesh
    pvg-compile ... --steps prover_step,sample_ppo             # only these steps

Lowers and compiles, for the config's shapes on the target's mesh (cfg.mesh.shape, -1 filled
from the device count): the SFT step, the PPO prover iteration (prover_step), the verifier
step, the PPO sampler and the verifier scorer. For each it prints per-device memory from
`Compiled.memory_analysis()` (arguments, outputs, temporaries, donated aliases: what must
fit in HBM at once) and FLOPs from `Compiled.cost_analysis()` (which counts a while loop's
body once: the sampler's FLOPs are its prompt pass and one decode step; the profiler flag's
summary, pvg_jax/profiling.py, counts every decode step it ran).

Targets:
- `--topology NAME` (e.g. v5e:4x4, v5p:2x2x2, v4:2x2x1, v6e:2x4): TPU devices from
  `jax.experimental.topologies`, compiled by libtpu's own compiler on this (CPU) host. Needs
  libtpu (`pip install -e ".[tpu-aot]"`); without it the same number of fake CPU devices
  stands in, and the output says so (CPU memory and FLOPs, not TPU ones).
- `--devices N`: N fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count).
The first line of the report names which target was compiled for.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re

from absl import flags, logging
from ml_collections import config_flags

from pvg_jax import cli

STEPS = ("sft_step", "prover_step", "verifier_step", "sample_ppo", "score")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_TOPOLOGY = flags.DEFINE_string("topology", None, "TPU topology, e.g. v5e:4x4 or v5p:2x2x2.")
_DEVICES = flags.DEFINE_integer("devices", None, "Compile for N fake CPU devices instead.")
_STEPS = flags.DEFINE_list("steps", None, f"Compile only these steps (default: all of "
                           f"{', '.join(STEPS)}).")
flags.mark_flags_as_required(["config"])

# HBM per chip (GiB), to say whether a step fits.
HBM_GIB = {"v4": 32, "v5e": 16, "v5litepod": 16, "v5p": 95, "v6e": 32}
_TOPOLOGY_RE = re.compile(r"^(v\d+[a-z]*):(\d+(?:x\d+)*)$")


@dataclasses.dataclass(frozen=True)
class Target:
  """Where the steps are compiled for: `kind` is "tpu" or "cpu"; `note` says why."""

  kind: str
  name: str
  n_devices: int
  note: str = ""

  @property
  def hbm_bytes(self) -> float | None:
    gen = self.name.split(":")[0]
    return HBM_GIB[gen] * 2**30 if self.kind == "tpu" and gen in HBM_GIB else None


def parse_topology(name: str) -> tuple[str, int]:
  """'v5e:4x4' -> ('v5e', 16): the generation and the number of chips."""
  match = _TOPOLOGY_RE.match(name)
  if not match:
    raise cli.UserError(f"--topology {name!r}: expected GENERATION:AxB[xC], e.g. v5e:4x4")
  return match.group(1), math.prod(int(d) for d in match.group(2).split("x"))


def choose_target(topology: str | None, devices: int | None) -> Target:
  """The target, decided before jax is imported (a fake CPU mesh needs XLA_FLAGS first)."""
  if (topology is None) == (devices is None):
    raise cli.UserError("give exactly one of --topology and --devices")
  if devices is not None:
    if devices < 1:
      raise cli.UserError(f"--devices {devices}: must be >= 1")
    return Target("cpu", f"cpu x{devices}", devices)
  _, chips = parse_topology(topology)
  if importlib.util.find_spec("libtpu") is None:
    return Target("cpu", f"cpu x{chips}", chips,
                  f"libtpu is not installed, so {chips} fake CPU devices stand in for "
                  f"{topology} (pip install -e \".[tpu-aot]\" for TPU numbers)")
  return Target("tpu", topology, chips)


def _set_cpu_device_count(n: int) -> None:
  flag = f"--xla_force_host_platform_device_count={n}"
  existing = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                    os.environ.get("XLA_FLAGS", ""))
  os.environ["XLA_FLAGS"] = f"{existing} {flag}".strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")


def target_devices(target: Target) -> list:
  """The target's devices: TPU topology devices or this host's (fake) CPU devices."""
  import jax
  if target.kind == "tpu":
    from jax.experimental import topologies
    return list(topologies.get_topology_desc(topology_name=target.name,
                                             platform="tpu").devices)
  cpus = jax.devices("cpu")
  if len(cpus) < target.n_devices:
    raise cli.UserError(f"{target.name}: this process has {len(cpus)} CPU devices (jax was "
                        "initialized before XLA_FLAGS could ask for more)")
  return cpus[:target.n_devices]


def abstract_inputs(cfg, world, fns, mesh) -> dict:
  """{step name: (jitted function, abstract arguments)} at the config's shapes."""
  import jax
  import jax.numpy as jnp

  from pvg_jax import sharding
  from pvg_jax.models import functional
  from pvg_jax.training import state as train_state
  from pvg_jax.training import steps

  def struct(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype)

  layout, g = world.layout, cfg.game
  key = jax.eval_shape(lambda: jax.random.key(0))
  policy = functional.abstract_params(fns.prover_spec)
  verifier = functional.abstract_params(fns.verifier_spec)
  ppo_params = {"policy": policy}
  if fns.critic_spec is not None:
    ppo_params["critic"] = functional.abstract_params(fns.critic_spec)
  ppo_state = jax.eval_shape(fns.init_prover_state, ppo_params)
  verifier_state = jax.eval_shape(fns.init_verifier_state, verifier)
  n_ppo, seq = g.ppo.groups * g.ppo.group_size, layout.seq_len
  ppo_batch = {"tokens": struct((n_ppo, seq), jnp.int32),
               "verifier_tokens": struct((n_ppo, seq), jnp.int32),
               "other_role_tokens": struct((n_ppo, seq), jnp.int32),
               "kv_mask": struct((n_ppo, seq), bool),
               "loss_mask": struct((n_ppo, layout.solution_len), bool),
               "correct": struct((n_ppo,), bool), "parseable": struct((n_ppo,), bool),
               "helpful": struct((g.ppo.groups,), bool)}
  rows, k = g.verifier.batch_size * g.verifier.k, g.verifier.k
  verifier_batch = {"tokens": struct((rows, seq), jnp.int32),
                    "kv_mask": struct((rows, seq), bool),
                    "correct": struct((g.verifier.batch_size, k), bool),
                    "valid": struct((g.verifier.batch_size, k), bool)}
  sft_tx = train_state.make_optimizer(cfg.sft)
  rules = sharding.DEFAULT_RULES
  sft_sh = train_state.spec_state_shardings(fns.prover_spec, sft_tx, mesh, rules)
  sft_batch = {"tokens": struct((cfg.sft.batch_size, seq), jnp.int32),
               "kv_mask": struct((cfg.sft.batch_size, seq), bool),
               "loss_mask": struct((cfg.sft.batch_size, layout.solution_len), bool)}
  sft_step = steps.jit_step(steps.make_sft_step(fns.prover_spec, sft_tx), sft_sh, sft_batch,
                            mesh, rules)
  sft_state = jax.eval_shape(lambda p: {"params": p, "opt_state": sft_tx.init(p),
                                        "step": jnp.int32(0)}, policy)
  beta = struct((), jnp.float32)
  return {
      "sft_step": (sft_step, (sft_state, sft_batch)),
      "prover_step": (fns.prover_step, (ppo_state, policy, verifier, ppo_batch, beta, key)),
      "verifier_step": (fns.verifier_step, (verifier_state, verifier_batch)),
      "sample_ppo": (fns.sample_ppo, (policy, struct((n_ppo, layout.prompt_len), jnp.int32),
                                      key)),
      "score": (fns.score, (verifier, struct((g.sample_batch, seq), jnp.int32),
                            struct((g.sample_batch, seq), bool))),
  }


def compile_report(cfg, target: Target, only: tuple[str, ...] | None = None) -> list[dict]:
  """Compile every step (or those named in `only`) for `target`; one row per step with its
  bytes and FLOPs per device."""
  from pvg_jax import config as config_lib
  from pvg_jax import players, sharding, worlds
  from pvg_jax.games import jitted

  config_lib.validate(cfg, devices=target.n_devices, host_memory=False)
  devices = target_devices(target)
  try:
    mesh = sharding.make_mesh(cfg.mesh.shape, devices)
  except ValueError as e:
    raise cli.UserError(f"{target.name}: {e}") from None
  world = worlds.make(cfg)
  prover_spec, verifier_spec = players.player_specs(cfg, world)
  fns = jitted.build(cfg, world, prover_spec, verifier_spec, mesh)
  rows = []
  for name, (fn, args) in abstract_inputs(cfg, world, fns, mesh).items():
    if only is not None and name not in only:
      continue
    try:
      compiled = fn.lower(*args).compile()
    except Exception as e:          # libtpu refuses a program that cannot fit in HBM
      if "RESOURCE_EXHAUSTED" not in str(e):
        raise
      rows.append({"step": name, "fits": False, "error": _oom_reason(str(e))})
      continue
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
            - mem.alias_size_in_bytes)
    rows.append({"step": name, "arguments": mem.argument_size_in_bytes,
                 "outputs": mem.output_size_in_bytes, "temporaries": mem.temp_size_in_bytes,
                 "aliased": mem.alias_size_in_bytes, "peak": peak,
                 "flops": float(cost.get("flops", math.nan)),
                 "fits": None if target.hbm_bytes is None else peak <= target.hbm_bytes})
  return rows


def _oom_reason(message: str) -> str:
  """The one line of a compile-time out-of-memory error that says how much was needed."""
  match = re.search(r"Ran out of memory[^.]*\([^)]*\)[^.]*\([^)]*\)", message)
  return match.group(0) if match else message.strip().splitlines()[0][:200]


def format_report(cfg, target: Target, rows: list[dict], mesh_shape) -> str:
  from pvg_jax import config as config_lib
  how = ("TPU, compiled by libtpu through jax.experimental.topologies" if target.kind == "tpu"
         else "fake CPU devices (XLA:CPU memory and FLOPs)")
  lines = [f"target: {target.name} ({target.n_devices} devices; {how})"]
  if target.note:
    lines.append(f"note: {target.note}")
  names = [cfg[p].get("checkpoint", "") or cfg[p].size for p in ("prover", "verifier")]
  (d, layers), _ = (config_lib.player_shape(cfg, p) for p in ("prover", "verifier"))
  lines.append(f"mesh {tuple(mesh_shape)} ('data', 'fsdp', 'tensor'); prover {names[0]} "
               f"(d={d}, {layers} layers), verifier {names[1]}, "
               f"compute {config_lib.compute_dtype(cfg)}")
  lines.append(f"{'step':<14}{'args MiB':>10}{'out MiB':>10}{'temp MiB':>10}"
               f"{'peak MiB':>10}{'GFLOP':>10}" + ("  fits HBM" if target.hbm_bytes else ""))
  mib = 2.0**20
  for r in rows:
    if "error" in r:
      lines.append(f"{r['step']:<14}does not fit: {r['error']}")
      continue
    fits = "" if r["fits"] is None else ("  yes" if r["fits"] else "  NO")
    lines.append(f"{r['step']:<14}{r['arguments'] / mib:10.1f}{r['outputs'] / mib:10.1f}"
                 f"{r['temporaries'] / mib:10.1f}{r['peak'] / mib:10.1f}"
                 f"{r['flops'] / 1e9:10.2f}{fits}")
  lines.append("per device; peak = arguments + outputs + temporaries - donated aliases; "
               "GFLOP from XLA's cost analysis, which counts a while loop's body once "
               "(sample_ppo: the prompt pass and one decode step)")
  return "\n".join(lines)


def main(argv) -> None:
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)
  unknown = set(_STEPS.value or ()) - set(STEPS)
  if unknown:
    raise cli.UserError(f"--steps: unknown step(s) {', '.join(sorted(unknown))}; expected "
                        f"some of {', '.join(STEPS)}")
  target = choose_target(_TOPOLOGY.value, _DEVICES.value)
  if target.kind == "cpu":
    _set_cpu_device_count(target.n_devices)
  else:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")     # this host runs nothing on a TPU
  from pvg_jax import sharding
  cfg = _CONFIG.value
  rows = compile_report(cfg, target, tuple(_STEPS.value) if _STEPS.value else None)
  shape = sharding.resolve_mesh_shape(cfg.mesh.shape, target.n_devices)
  print(format_report(cfg, target, rows, shape))


def run() -> None:
  """Console-script entry point (pvg-compile)."""
  cli.run_app("pvg-compile", main)


if __name__ == "__main__":
  run()
