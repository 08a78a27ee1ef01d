"""`riffd bench blas`: MLX matrix and training speed with OpenBLAS and with the bundled
reference BLAS, each measured in a fresh process (the BLAS is bound at import time).

- ``matmul_gflops``: a 512x512 float32 product, 2n^3 flops each, best of 3 rounds of 10;
- ``train_steps_per_s``: riffd train's compiled AdamW step on riff-small's architecture
  at batch 8 x 128 tokens, after 3 warm-up steps, over ``steps`` steps.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, sys, time
from functools import partial
import numpy as np
from riffd.models.blas import use_fast_blas
path = use_fast_blas()
import mlx.core as mx, mlx.nn as nn, mlx.optimizers as optim
from riffd.models import checkpoint as ck
steps = int(sys.argv[1])
a = mx.random.normal((512, 512)); mx.eval(a)
best = 1e9
for _ in range(3):
    t = time.perf_counter()
    for _ in range(10):
        mx.eval(a @ a)
    best = min(best, (time.perf_counter() - t) / 10)
model = ck.build_model(ck.architecture(605)); mx.eval(model.parameters())
opt = optim.AdamW(1e-3)
loss_and_grad = nn.value_and_grad(model, lambda m, x, y: nn.losses.cross_entropy(m(x), y).mean())
state = [model.state, opt.state]
@partial(mx.compile, inputs=state, outputs=state)
def step(x, y):
    loss, g = loss_and_grad(model, x, y); opt.update(model, g); return loss
x = mx.array(np.random.default_rng(0).integers(0, 605, (8, 129)))
for _ in range(3):
    step(x[:, :-1], x[:, 1:]); mx.eval(state)
t = time.perf_counter()
for _ in range(steps):
    step(x[:, :-1], x[:, 1:]); mx.eval(state)
print(json.dumps({"blas": path or "reference", "matmul_gflops": 2 * 512 ** 3 / best / 1e9,
                  "train_steps_per_s": steps / (time.perf_counter() - t)}))
"""


def blas(steps: int = 20, as_json: bool = False, echo=print) -> dict:
    """Run the probe under OpenBLAS and under the reference BLAS; echo both."""
    result = {}
    for label, env in (("openblas", {}), ("reference", {"RIFFD_BLAS": "reference"})):
        out = subprocess.run([sys.executable, "-c", PROBE, str(steps)], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(f"the {label} probe failed: {out.stderr.strip().splitlines()[-1:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        result[f"{label}_library"] = row["blas"]
        result[f"{label}_matmul_gflops"] = round(row["matmul_gflops"], 2)
        result[f"{label}_train_steps_per_s"] = round(row["train_steps_per_s"], 3)
        echo(f"{label:9s} ({row['blas']}): matmul {row['matmul_gflops']:.2f} GFLOP/s, "
             f"training {row['train_steps_per_s']:.3f} steps/s (batch 8 x 128)")
    result["train_speedup"] = round(result["openblas_train_steps_per_s"] / result["reference_train_steps_per_s"], 1)
    if as_json:
        echo(json.dumps(result))
    return result
