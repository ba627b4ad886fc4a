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
