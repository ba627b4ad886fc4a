"""Two local processes (jax.distributed on localhost, 2 CPU devices each) share one global
array: its checkpoint digests are gathered from both processes, a checkpoint written by
both restores on both, and a bit flipped in the chunk data is found by both (agreed), so
both fall back to the older checkpoint together."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent("""
    import os, sys, pathlib
    import jax, numpy as np
    jax.distributed.initialize(f"localhost:{sys.argv[1]}", num_processes=2,
                               process_id=int(sys.argv[2]))
    from jax.sharding import NamedSharding, PartitionSpec as P
    from pvg_jax import checkpoint
    from pvg_jax.games.state import GameCheckpointer, Progress
    from jax.experimental import multihost_utils

    mesh = jax.make_mesh((4,), ("data",))
    sharding = NamedSharding(mesh, P("data"))
    def tree(v):
      host = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32) + v
      return {"w": jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])}
    abstract = {"w": jax.ShapeDtypeStruct((64, 64), np.float32, sharding=sharding)}

    digests = checkpoint.leaf_digests(tree(1.0))
    assert sorted(digests) == ["p0", "p1"] and digests["p0"] != digests["p1"], digests
    directory = pathlib.Path(sys.argv[3]) / "checkpoints"
    ckpt = GameCheckpointer(directory)
    ckpt.save(tree(1.0), Progress(round=0))
    ckpt.save(tree(2.0), Progress(round=1))
    ckpt.close()
    multihost_utils.sync_global_devices("saved")
    if jax.process_index() == 1:      # damage the chunk data only process 1 reads
      path = max((directory / "2" / "arrays").glob("ocdbt.process_1/d/*"),
                 key=lambda p: p.stat().st_size)
      raw = bytearray(path.read_bytes()); raw[len(raw) // 2] ^= 0x10
      path.write_bytes(bytes(raw))
    multihost_utils.sync_global_devices("damaged")
    arrays, progress = GameCheckpointer(directory).latest(abstract)
    assert progress.round == 0, progress
    local = np.concatenate([np.asarray(s.data) for s in arrays["w"].addressable_shards])
    assert abs(local.mean() - 1.0) < 0.2
    print(f"process {jax.process_index()}: fell back to round {progress.round}")
""")


def test_two_processes_agree_on_damage_and_fall_back_together(tmp_path):
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
         "JAX_PLATFORMS": "cpu"}
  procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), str(tmp_path)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for i, (p, out) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, f"process {i}:\n{out[-3000:]}"
    assert f"process {i}: fell back to round 0" in out
