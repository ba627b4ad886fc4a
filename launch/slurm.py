"""Submit a pvg_jax command to a SLURM GPU cluster: one process per GPU through srun, so
jax.distributed.initialize() reads the job from SLURM's environment (--multihost).

    python launch/slurm.py --nodes 2 --gpus_per_node 8 --venv ~/pvg/.venv \\
        --workdir /shared/runs/gsm8k -- python -m pvg_jax.main --config configs/arith.py

writes the batch script and submits it with sbatch; `--dry_run` prints the script instead.
The workdir must be on a filesystem every node sees (NFS, Lustre, a mounted bucket):
Orbax writes each process's shards there and every process reads them back on resume.
SLURM's --signal sends SIGTERM ahead of the time limit; the job checkpoints and exits 75,
and `--requeue` puts it back in the queue, where it resumes from the workdir.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={gpus}
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --signal=TERM@300
#SBATCH --requeue
#SBATCH --output={workdir}/slurm-%j.out
{extra}
set -euo pipefail
source {venv}/bin/activate
mkdir -p {workdir}
srun --kill-on-bad-exit=1 {command} --workdir={workdir} --multihost
"""


def script(args, command: list[str]) -> str:
  extra = "\n".join(f"#SBATCH {x}" for x in args.sbatch)
  return TEMPLATE.format(name=args.name, nodes=args.nodes, gpus=args.gpus_per_node,
                         cpus=args.cpus_per_task, time=args.time, workdir=args.workdir,
                         venv=args.venv, extra=extra, command=shlex.join(command))


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--nodes", type=int, default=1)
  p.add_argument("--gpus_per_node", type=int, default=8)
  p.add_argument("--cpus_per_task", type=int, default=8)
  p.add_argument("--time", default="24:00:00")
  p.add_argument("--name", default="pvg_jax")
  p.add_argument("--venv", required=True, help="virtualenv with `pip install -e .`")
  p.add_argument("--workdir", required=True, help="on a filesystem shared by all nodes")
  p.add_argument("--sbatch", action="append", default=[],
                 help="extra #SBATCH line, e.g. --sbatch=--partition=gpu (repeatable)")
  p.add_argument("--dry_run", action="store_true", help="print the batch script")
  p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the pvg_jax command")
  args = p.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    p.error("give the command after --, e.g. -- python -m pvg_jax.main --config ...")
  text = script(args, command)
  if args.dry_run:
    print(text, end="")
    return 0
  with tempfile.NamedTemporaryFile("w", suffix=".sbatch", delete=False) as f:
    f.write(text)
  return subprocess.call(["sbatch", f.name])


if __name__ == "__main__":
  sys.exit(main())
