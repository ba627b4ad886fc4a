"""Device mesh and logical-axis sharding rules.

One mesh with axes ('data', 'fsdp', 'tensor') is built from `config.mesh`; every parameter
and activation names its dimensions logically (batch, embed, mlp, heads, vocab, ...) and
`config.mesh.rules` maps each logical name to mesh axes. Rules that name a mesh axis which
does not divide the dimension fall back to replication for that dimension, so tiny CPU
models and pod-sized ones share one set of rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# logical name -> mesh axes. batch over data x fsdp, parameters over fsdp (ZeRO-3 style)
# and tensor (Megatron style).
DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "batch": ("data", "fsdp"),
    "length": (),
    "embed": ("fsdp",),
    "mlp": ("tensor",),
    "heads": ("tensor",),
    "vocab": ("tensor",),
    "norm": (),
}


def resolve_mesh_shape(shape: Sequence[int], n_devices: int) -> tuple[int, ...]:
  """`shape` with its -1 filled in; ValueError naming mesh.shape if it cannot fit."""
  shape = list(shape)
  if len(shape) != len(MESH_AXES):
    raise ValueError(f"mesh.shape={tuple(shape)} needs one size per axis {MESH_AXES}")
  if shape.count(-1) > 1:
    raise ValueError(f"mesh.shape={tuple(shape)}: at most one -1")
  if -1 in shape:
    rest = int(np.prod([s for s in shape if s != -1]))
    shape[shape.index(-1)] = max(n_devices // rest, 1)
  if int(np.prod(shape)) != n_devices:
    raise ValueError(f"mesh.shape={tuple(shape)} needs {int(np.prod(shape))} devices, "
                     f"{n_devices} are available")
  return tuple(shape)


def make_mesh(shape: Sequence[int], devices=None) -> Mesh:
  """A ('data', 'fsdp', 'tensor') mesh; -1 in `shape` takes the remaining devices."""
  devices = jax.devices() if devices is None else devices
  shape = resolve_mesh_shape(shape, len(devices))
  return jax.make_mesh(tuple(shape), MESH_AXES, axis_types=(AxisType.Auto,) * 3,
                       devices=devices)


def logical_to_spec(axes: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                    rules: Mapping[str, Sequence[str]]) -> PartitionSpec:
  """PartitionSpec for an array whose dimensions have logical names `axes`."""
  used: set[str] = set()
  spec = []
  for name, dim in zip(axes, shape):
    if name is None:
      spec.append(None)
      continue
    if name not in rules:
      raise KeyError(f"no sharding rule for logical axis {name!r}; rules: {sorted(rules)}")
    mesh_axes = tuple(a for a in rules[name] if a not in used)
    size = int(np.prod([mesh.shape[a] for a in mesh_axes])) if mesh_axes else 1
    if not mesh_axes or dim % size:
      spec.append(None)
      continue
    used.update(mesh_axes)
    spec.append(mesh_axes if len(mesh_axes) > 1 else mesh_axes[0])
  return PartitionSpec(*spec)


def named_sharding(axes, shape, mesh: Mesh, rules) -> NamedSharding:
  return NamedSharding(mesh, logical_to_spec(axes, shape, mesh, rules))


def batch_sharding(mesh: Mesh, rules, shape: Sequence[int]) -> NamedSharding:
  """Sharding of a [batch, ...] array: batch over its rule, the rest replicated."""
  return named_sharding(("batch",) + (None,) * (len(shape) - 1), shape, mesh, rules)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


# -- several processes: host data in, host values out ----------------------------------------

def to_global(tree, shardings):
  """Host values (numpy arrays, scalars, PRNG keys on one local device) as global arrays
  with `shardings` (a prefix tree of NamedShardings): what jit needs when the mesh spans
  processes. Every process passes the same host values (the data pipeline is a pure
  function of the seed), and each puts its own shards. Arrays already on their sharding
  pass through."""
  def put(x, sh):
    if isinstance(x, jax.Array) and (x.sharding == sh or not x.is_fully_addressable):
      return x
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(jax.device_put(np.asarray(jax.random.key_data(x)), sh))
    return jax.device_put(np.asarray(x), sh)
  return jax.tree.map(lambda sh, sub: jax.tree.map(lambda x: put(x, sh), sub), shardings,
                      tree, is_leaf=lambda s: isinstance(s, jax.sharding.Sharding))


def to_host(tree):
  """Arrays as numpy on every process: a global array that this process cannot address in
  full is gathered from all processes (a collective: every process must call it)."""
  from jax.experimental import multihost_utils

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return x
  return jax.tree.map(get, tree)


def jit(fn, *, in_shardings, out_shardings=None, host_outputs: bool = False, **kw):
  """jax.jit(fn, ...) that also runs with a mesh spanning several processes: host inputs
  become global arrays (to_global) and, with `host_outputs`, outputs come back gathered
  (to_host) for the host code that reads them. On one process it is jax.jit itself."""
  jitted = jax.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings, **kw)

  def call(*args):
    if jax.process_count() == 1:
      return jitted(*args)
    out = jitted(*to_global(tuple(args), tuple(in_shardings)))
    return to_host(out) if host_outputs else out
  call.lower = jitted.lower           # AOT, cost analysis and FLOP counts (profiling)
  call.trace = jitted.trace           # see the jitted function
  return call
