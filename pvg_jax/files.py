"""Workdir files that survive crashes: atomic writes, moving damaged files aside, the lock.

Every file the project writes goes through `atomic_write_*` (temp file in the same
directory, fsync, rename), so a kill at any moment leaves the old file or the new one,
never a torn one; writing the same content twice is harmless. On several processes only
process 0 writes (`writer_process`); Orbax checkpoints are written by every process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import pathlib
import shutil
import socket
import sys
import time

import numpy as np

from pvg_jax import cli


def writer_process() -> bool:
  """True on the one process that writes workdir files: process 0, or the only one."""
  jax = sys.modules.get("jax")            # never import jax just to ask (pvg-judge)
  return jax is None or jax.process_index() == 0


def atomic_write_bytes(path: str | pathlib.Path, data: bytes) -> None:
  """`data` to `path` atomically; on several processes only process 0 writes."""
  if not writer_process():
    return
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      tmp.unlink()
    raise


def atomic_write_text(path: str | pathlib.Path, text: str) -> None:
  atomic_write_bytes(path, text.encode())


def atomic_save_npz(path: str | pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  """Arrays to a compressed .npz at `path`, atomically (the temp name is a dotfile, so
  globs like `ppo_steps_*.npz` never see it)."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  atomic_write_bytes(path, buffer.getvalue())


def free_bytes(directory: str | pathlib.Path) -> int:
  """Free bytes on the filesystem that holds (or will hold) `directory`."""
  probe = pathlib.Path(directory)
  while not probe.exists():
    probe = probe.parent
  return shutil.disk_usage(probe).free


def footprint(directory: str | pathlib.Path) -> int:
  """Bytes the files under `directory` take on disk (allocated blocks or size, the larger)."""
  stats = (p.stat() for p in pathlib.Path(directory).rglob("*") if p.is_file())
  return sum(max(st.st_size, st.st_blocks * 512) for st in stats)


def _file_digests(directory: pathlib.Path, skip: str) -> dict[str, str]:
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob("*")) if p.is_file() and p.name != skip}


def write_manifest(directory: pathlib.Path, name: str) -> None:
  """<directory>/<name>: the SHA-256 of every file below `directory`."""
  atomic_write_text(directory / name, json.dumps(_file_digests(directory, name), indent=0))


def verify_manifest(directory: pathlib.Path, name: str) -> str | None:
  """None if every file the manifest lists is there with its SHA-256 (or there is no
  manifest), else a one-line description of the first problem."""
  path = directory / name
  if not path.exists():
    return None
  try:
    expected = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError):
    return f"{path}: unreadable manifest"
  for rel, digest in expected.items():
    f = directory / rel
    if not f.is_file():
      return f"{directory}: file {rel} is missing"
    if hashlib.sha256(f.read_bytes()).hexdigest() != digest:
      return f"{directory}: file {rel} does not match its SHA-256"
  return None


def move_aside(path: pathlib.Path, into: pathlib.Path) -> pathlib.Path:
  """Move a damaged file or directory into `into` (never delete it); returns where to."""
  into.mkdir(parents=True, exist_ok=True)
  target = into / path.name
  n = 1
  while target.exists():
    target, n = into / f"{path.name}.{n}", n + 1
  os.replace(path, target)
  return target


class WorkdirLock:
  """One run per workdir: an exclusive flock on <workdir>/.lock, released when the process
  ends however it ends (the kernel drops it on kill -9). The file names its holder."""

  def __init__(self, workdir: pathlib.Path):
    self.path = pathlib.Path(workdir) / ".lock"
    self._file = None

  def __enter__(self) -> WorkdirLock:
    self._file = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or "another process"
      self._file.close()
      raise cli.UserError(f"{self.path.parent} is in use by {holder}; wait for it to end "
                          "or use another --workdir") from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    self._file.flush()
    return self

  def __exit__(self, *exc) -> None:
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()
