"""Start N processes of one pvg_jax command on this machine, as one multi-process JAX job.

    python launch/local.py --num_processes 2 --devices_per_process 4 -- \\
        python -m pvg_jax.main --config configs/arith.py:smoke --workdir runs/mp

Each process gets `--multihost --coordinator_address localhost:PORT --num_processes N
--process_id i` appended (jax.distributed.initialize on localhost; process 0 hosts the
coordinator) and, on CPU, `--xla_force_host_platform_device_count` fake devices, so the
job's mesh spans N x devices_per_process devices in N processes - the same code path as a
pod or a cluster, on one machine. With `--platform gpu` each process sees one GPU
(CUDA_VISIBLE_DEVICES=i). SIGTERM/SIGINT are forwarded to every process (the job
checkpoints and exits 75; run the same command to resume). If one process fails the others
are stopped; the exit code is the first failure's (or 0). `--dry_run` prints the commands.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def commands(command: list[str], num_processes: int, devices_per_process: int, port: int,
             platform: str) -> list[tuple[dict[str, str], list[str]]]:
  """(extra environment, argv) of every process."""
  out = []
  for i in range(num_processes):
    env = {"JAX_PLATFORMS": platform}
    if platform == "cpu":
      inherited = re.sub(r"--xla_force_host_platform_device_count=\d+", "",
                         os.environ.get("XLA_FLAGS", ""))
      env["XLA_FLAGS"] = (f"{inherited} --xla_force_host_platform_device_count="
                          f"{devices_per_process}").strip()
    else:
      env["CUDA_VISIBLE_DEVICES"] = str(i)
    out.append((env, [*command, "--multihost", f"--coordinator_address=localhost:{port}",
                      f"--num_processes={num_processes}", f"--process_id={i}"]))
  return out


def run(procs_spec: list[tuple[dict[str, str], list[str]]]) -> int:
  procs = [subprocess.Popen(argv, env={**os.environ, **env}) for env, argv in procs_spec]

  def forward(signum, _frame):
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)
  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGINT, forward)
  code = 0
  while any(p.poll() is None for p in procs):
    failed = [p for p in procs if p.poll() not in (None, 0)]
    if failed and not code:
      code = failed[0].returncode
      for p in procs:
        if p.poll() is None:
          p.terminate()
    time.sleep(0.2)
  return code or next((p.returncode for p in procs if p.returncode), 0)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--num_processes", type=int, default=2)
  p.add_argument("--devices_per_process", type=int, default=4,
                 help="fake CPU devices per process (platform cpu)")
  p.add_argument("--platform", choices=("cpu", "gpu"), default="cpu")
  p.add_argument("--port", type=int, default=0, help="coordinator port (0: a free one)")
  p.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
  p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the pvg_jax command")
  args = p.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    p.error("give the command after --, e.g. -- python -m pvg_jax.main --config ...")
  spec = commands(command, args.num_processes, args.devices_per_process,
                  args.port or free_port(), args.platform)
  if args.dry_run:
    for env, cmd in spec:
      print(" ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                      *map(shlex.quote, cmd)]))
    return 0
  return run(spec)


if __name__ == "__main__":
  sys.exit(main())
