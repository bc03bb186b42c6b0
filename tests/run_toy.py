"""Runs ``noisy_regression`` in a fresh process (for multi-device and kill/resume tests).

Usage: python tests/run_toy.py OUT_JSON [--steps N] [--batch B] [--out DIR] [--every N]
       [--resume] [--slow-after T] [--steps-per-call K]
Set XLA_FLAGS=--xla_force_host_platform_device_count=N in the environment for N devices.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from toy_algorithms import ArraySource, noisy_regression  # noqa: E402

from unigen.training import fit, make_optimizer  # noqa: E402


class SlowSource(ArraySource):
    """Sleeps before each batch from ``slow_after`` on, so a test can kill the run mid-way."""

    def __init__(self, x, batch_size, slow_after):
        super().__init__(x, batch_size)
        self.slow_after = slow_after

    def at(self, step, **kw):
        if self.slow_after is not None and step >= self.slow_after:
            time.sleep(0.5)
        return super().at(step, **kw)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out")
    parser.add_argument("--every", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--slow-after", type=int)
    parser.add_argument("--steps-per-call", type=int, default=1)
    parser.add_argument("--coordinator", help="host:port; with --process-id and --processes, run multi-host")
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(args.coordinator, num_processes=args.processes, process_id=args.process_id)
    x = np.random.default_rng(1).normal(size=(64, 4))
    source = SlowSource(x, args.batch, args.slow_after)
    result = fit(
        noisy_regression(),
        source,
        steps=args.steps,
        optimizer=make_optimizer("adam", 0.05),
        seed=3,
        out_dir=args.out,
        checkpoint_every=args.every,
        resume=args.resume,
        steps_per_call=args.steps_per_call,
        progress=False,
    )
    params = jax.tree.map(lambda a: np.asarray(a).tolist(), result.state.params)
    if jax.process_index() == 0:
        Path(args.result).write_text(json.dumps({"params": params, "devices": jax.device_count(),
                                                 "processes": jax.process_count()}))


if __name__ == "__main__":
    main()
