"""pvg_jax: Prover-Verifier Games in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="pvg_jax",
    version="0.1.0",
    description="Prover-Verifier Games (checkability training) in JAX/Flax",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["pvg_jax", "pvg_jax.*"]),
    package_data={"pvg_jax.judging": ["static/*"]},
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.5",
        "orbax-checkpoint>=0.11",
        "chex>=0.1.90",
        "ml-collections>=1.0",
        "tensorflow-datasets>=4.9.9",
        "array_record>=0.8",
        "importlib_resources>=6",  # etils' resource paths, used by TFDS builders
        "tqdm>=4.66",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
        "safetensors>=0.4",        # Hugging Face checkpoints (pvg_jax.models.hf)
        "tokenizers>=0.19",
        "ml_dtypes>=0.4",
        "starlette>=0.40",
        "uvicorn>=0.30",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100", "ruff>=0.6",
                 "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
                 "playwright>=1.45"],
        # pvg-compile --topology: TPU compiles on a CPU host (libtpu's compiler)
        "tpu-aot": ["libtpu"],
        # benchmarks/ppo_iteration.py and sampler.py against a peer library
        "bench": ["google-tunix"],
        # regenerating the HF parity goldens (python -m pvg_jax.models.hf_goldens) and the
        # check that transformers reads our exports
        "parity": ["torch>=2.4", "transformers>=4.45"],
    },
    entry_points={
        "console_scripts": [
            "pvg-train=pvg_jax.main:run",
            "pvg-compile=pvg_jax.aot:run",
            "pvg-export=pvg_jax.models.hf_export:main",
            "pvg-gsm8k-check=pvg_jax.worlds.gsm8k.checker:main",
            "pvg-eval=pvg_jax.evals.run:run",
            "pvg-report=pvg_jax.report.build:run",
            "pvg-experiments=pvg_jax.experiments:run",
            "pvg-probe=pvg_jax.games.probes:run",
            "pvg-survey=pvg_jax.evals.survey:run",
            "pvg-judge=pvg_jax.judging.main:run",
        ],
    },
)
