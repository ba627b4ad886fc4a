"""Orbax checkpoints of player states, with integrity metadata.

A checkpoint directory holds the array tree (Orbax, written atomically: an interrupted save
leaves no finalized checkpoint) and `meta.json`: the key the tree was saved under, the tree's
structure and shapes, and a SHA-256 of every array's bytes. `restore` checks all three, so a
stale, mismatched or corrupted checkpoint raises `CheckpointError` instead of being used.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint that is missing, incomplete, mismatched or corrupted."""


def tree_digest(tree) -> str:
  """SHA-256 over the tree's paths, shapes, dtypes and array bytes (fetched to host)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    arr = np.asarray(jax.device_get(leaf))
    h.update(f"{jax.tree_util.keystr(path)}:{arr.shape}:{arr.dtype}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
  return h.hexdigest()


def _structure(tree) -> list[str]:
  return [f"{jax.tree_util.keystr(p)}:{tuple(x.shape)}:{x.dtype}"
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def save(directory: str | pathlib.Path, tree, key: str, extra: dict | None = None) -> None:
  """Write `tree` and its integrity metadata to `directory` (replacing what was there)."""
  directory = pathlib.Path(directory).absolute()
  if directory.exists():
    shutil.rmtree(directory)
  directory.mkdir(parents=True)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(directory / "state", tree)
    ckptr.wait_until_finished()
  meta = {"key": key, "structure": _structure(tree), "sha256": tree_digest(tree),
          "extra": extra or {}}
  tmp = directory / "meta.json.tmp"
  tmp.write_text(json.dumps(meta, indent=1))
  tmp.rename(directory / "meta.json")   # meta.json last: its presence marks completion


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
    raise CheckpointError(f"{directory}: Orbax could not restore it ({e})") from e
  if tree_digest(tree) != meta.get("sha256"):
    raise CheckpointError(f"{directory}: array contents do not match their SHA-256")
  return tree, meta.get("extra", {})
