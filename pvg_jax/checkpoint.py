"""Orbax checkpoints of player states, with integrity metadata.

A checkpoint directory holds the array tree (Orbax, written atomically: an interrupted save
leaves no finalized checkpoint) and `meta.json`: the key the tree was saved under, the tree's
structure and shapes, and a SHA-256 of every array's bytes. `restore` checks all three, so a
stale, mismatched or corrupted checkpoint raises `CheckpointError` instead of being used.
"""

from __future__ import annotations

import errno
import hashlib
import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from pvg_jax import files


class CheckpointError(RuntimeError):
  """A checkpoint that is missing, incomplete, mismatched or corrupted."""


class NoIntactCheckpointError(CheckpointError):
  """Every checkpoint of a run failed its checks (they were moved aside, not deleted)."""


def _leaf_digest(path, leaf) -> str:
  """SHA-256 of one leaf's path, shape, dtype and bytes. A fully addressable array (one
  process) is hashed whole, so the digest does not depend on the mesh; otherwise this
  process hashes the shards it holds the first replica of, each with its index."""
  h = hashlib.sha256(f"{jax.tree_util.keystr(path)}:{leaf.shape}:{leaf.dtype}".encode())
  if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
    h.update(np.ascontiguousarray(np.asarray(jax.device_get(leaf))).tobytes())
  else:
    for shard in sorted(leaf.addressable_shards, key=lambda s: str(s.index)):
      if shard.replica_id == 0:
        h.update(str(shard.index).encode())
        h.update(np.ascontiguousarray(np.asarray(shard.data)).tobytes())
  return h.hexdigest()


def _local_digests(tree) -> list[str]:
  return [_leaf_digest(p, x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def leaf_digests(tree) -> dict[str, list[str]]:
  """{"p<k>": [SHA-256 per leaf]} for every process k (gathered: the same on all)."""
  mine = _local_digests(tree)
  if jax.process_count() == 1:
    return {"p0": mine}
  from jax.experimental import multihost_utils
  raw = np.frombuffer(b"".join(bytes.fromhex(d) for d in mine), np.uint8).reshape(-1, 32)
  every = np.asarray(multihost_utils.process_allgather(raw))          # [processes, leaves, 32]
  return {f"p{k}": [bytes(row).hex() for row in every[k]] for k in range(len(every))}


def tree_digest(tree) -> str:
  """One SHA-256 over all leaves and processes (what meta.json stores)."""
  digests = leaf_digests(tree)
  return hashlib.sha256("".join("".join(digests[k]) for k in sorted(digests)).encode()
                        ).hexdigest()


def first_mismatch(tree, saved: dict[str, list[str]]) -> str | None:
  """The path of the first leaf whose bytes on this process differ from `saved`
  (leaf_digests of the tree that was written), None if all match. Local: no collective,
  so it can run where another process failed earlier (combine verdicts with any_process)."""
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
  expected = saved.get(f"p{jax.process_index()}", [])
  now = _local_digests(tree)
  bad = [i for i in range(len(paths)) if i >= len(expected) or now[i] != expected[i]]
  return paths[bad[0]] if bad else None


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any (a collective: all must call it)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(np.asarray(multihost_utils.process_allgather(np.array([int(flag)], np.int32))).any())


def checkpoint_bytes(tree, previous: pathlib.Path | None = None) -> int:
  """A bound on the disk a checkpoint of `tree` takes: 1.2 x its arrays' bytes + 16 KiB a
  leaf + 256 KiB, or 1.25 x the footprint of `previous` (the same tree's last checkpoint)
  if that is larger. Orbax's OCDBT files cost about a fixed amount per array on top of the
  bytes: measured 985 KB for the smoke game's 54 leaves and 370 KB of arrays, 0.94 x the
  bytes for a few 200 KB leaves."""
  leaves = jax.tree.leaves(tree)
  bound = int(1.2 * sum(x.nbytes for x in leaves)) + (16 << 10) * len(leaves) + (256 << 10)
  if previous is not None and previous.exists():
    bound = max(bound, int(1.25 * files.footprint(previous)))
  return bound


def ensure_room(directory: pathlib.Path, tree, previous: pathlib.Path | None = None) -> None:
  """OSError(ENOSPC) on every process if any has less free space under `directory` than a
  checkpoint of `tree` takes (a collective, called before the Orbax save). A write that
  fails inside Orbax's background threads fills stderr with their tracebacks and leaves the
  other processes waiting in the save; this fails first, everywhere, with one line."""
  need, free = checkpoint_bytes(tree, previous), files.free_bytes(directory)
  if any_process(free < need):
    detail = (f"{free} bytes free, about {need} needed" if free < need
              else "on another process")
    raise OSError(errno.ENOSPC, f"No space left on device ({detail})", str(directory))


def assert_finite(tree, what: str) -> None:
  """Raise metrics.NonFiniteError naming `what` and the first leaf with NaN or inf: nothing
  non-finite is ever written as a checkpoint or snapshot."""
  from pvg_jax import metrics
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  floats = [(p, x) for p, x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]
  if not floats:
    return
  ok = jax.device_get(_all_finite([x for _, x in floats]))
  if not all(ok):
    path = jax.tree_util.keystr(floats[list(ok).index(False)][0])
    raise metrics.NonFiniteError(f"non-finite values in {path} of {what}; not saved")


@jax.jit
def _all_finite(leaves):
  return [jnp.isfinite(x).all() for x in leaves]


def _structure(tree) -> list[str]:
  return [f"{jax.tree_util.keystr(p)}:{tuple(x.shape)}:{x.dtype}"
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def save(directory: str | pathlib.Path, tree, key: str, extra: dict | None = None) -> None:
  """Write `tree` and its integrity metadata to `directory` (replacing what was there)."""
  directory = pathlib.Path(directory).absolute()
  assert_finite(tree, str(directory))
  ensure_room(directory.parent, tree)
  if jax.process_index() == 0 and directory.exists():
    shutil.rmtree(directory)
  barrier(f"checkpoint.save:{directory}")
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(directory / "state", tree)
    ckptr.wait_until_finished()
  meta = {"key": key, "structure": _structure(tree), "sha256": tree_digest(tree),
          "extra": extra or {}}
  if jax.process_index() == 0:          # meta.json last: its presence marks completion
    files.atomic_write_text(directory / "meta.json", json.dumps(meta, indent=1))
  barrier(f"checkpoint.saved:{directory}")


def barrier(name: str) -> None:
  """All processes wait here (a no-op on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def first_line(e: BaseException, limit: int = 200) -> str:
  """An exception as one short line (Orbax and TensorStore messages run to pages)."""
  text = str(e).strip().splitlines()[0] if str(e).strip() else ""
  text = f"{type(e).__name__}: {text}" if text else type(e).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


def restore(directory: str | pathlib.Path, abstract_tree, key: str):
  """Restore a tree saved under `key` into the shapes/shardings of `abstract_tree`.

  Returns (tree, extra). Raises CheckpointError naming the directory and the problem.
  """
  directory = pathlib.Path(directory).absolute()
  meta_path = directory / "meta.json"
  if not meta_path.exists():
    raise CheckpointError(f"{directory}: no finished checkpoint (meta.json missing)")
  try:
    meta = json.loads(meta_path.read_text())
  except json.JSONDecodeError as e:
    raise CheckpointError(f"{meta_path}: unreadable ({e.msg})") from e
  if meta.get("key") != key:
    raise CheckpointError(f"{directory}: saved for key {meta.get('key')!r}, wanted {key!r}")
  if meta.get("structure") != _structure(abstract_tree):
    raise CheckpointError(f"{directory}: saved tree structure or shapes differ from the "
                          "current model")
  try:
    with ocp.StandardCheckpointer() as ckptr:
      tree = ckptr.restore(directory / "state", abstract_tree)
  except Exception as e:  # Orbax/TensorStore raise many types on damaged files
    raise CheckpointError(f"{directory}: Orbax could not restore it ({first_line(e)})") from e
  if tree_digest(tree) != meta.get("sha256"):
    raise CheckpointError(f"{directory}: array contents do not match their SHA-256")
  return tree, meta.get("extra", {})
