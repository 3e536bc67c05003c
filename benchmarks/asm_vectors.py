"""Which vector registers the compiled kernels use ("check the assembly").

numba cannot show the assembly of code loaded from its cache, so this script compiles into a
fresh cache folder.  It counts the 512-bit (zmm), 256-bit (ymm) and 128-bit (xmm) register
operands in the machine code of the three fused kernels (integer datapath, learning engine,
float reference) as compiled for this CPU, and of the learning engine's synapse-loop helpers
(compiled as functions of their own, so not part of the kernel's listing).

    uv run python benchmarks/asm_vectors.py
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

CODE = r'''
import re
import emulator
from emulator import float_kernel, kernels
from emulator.learning import kernel as lek
from emulator.task import fig3_task
task = fig3_task(n_trials=2, N=100, seed=0)
for cfg in ("loihi2_ideal", "loihi2", "float64"):
    emulator.run(cfg, task, 10, 0, parallel=False)
for name, fn in (("datapath (emulator.kernels.run_fused_kernel)", kernels.run_fused_kernel),
                 ("learning engine (emulator.learning.kernel.fused_kernel)", lek.fused_kernel),
                 # the learning phase's synapse loops are functions of their own
                 ("  its products over the synapses (_add_product)", lek._add_product),
                 ("  its x-trace decays (_decay_x)", lek._decay_x),
                 ("float reference (emulator.float_kernel._fused_kernel)", float_kernel._fused_kernel)):
    for asm in fn.inspect_asm().values():
        n = {r: len(re.findall(r"%" + r + r"\d+", asm)) for r in ("zmm", "ymm", "xmm")}
        print(f"| {name} | {asm.count(chr(10))} | {n['zmm']} | {n['ymm']} | {n['xmm']} |")
'''


def main():
    flags = sorted({f for f in open("/proc/cpuinfo").read().split() if f.startswith("avx512")})
    print(f"CPU AVX-512 flags: {', '.join(flags) or 'none'}\n")
    print("| kernel | asm lines | zmm operands | ymm | xmm |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        subprocess.run([sys.executable, "-c", CODE], env=env, check=True)


if __name__ == "__main__":
    main()
