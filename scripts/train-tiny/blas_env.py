"""Sets the BLAS environment; the training scripts call setup() before NumPy or torch load OpenBLAS.

Debian 12's OpenBLAS 0.3.21 does not recognise the build machine's CPU (a virtual "Intel Xeon Processor" with
AVX-512) and falls back to its generic kernels: torch's [256, 96] x [96, 19680] product (the output layer of a
training step) ran at 13.5 GFLOP/s on one thread, and at 63 GFLOP/s with OPENBLAS_CORETYPE=Haswell (measured
2026-11-29; a whole training step 653 -> 207 ms). Haswell kernels need AVX2 and FMA, so the core type is only forced
where /proc/cpuinfo lists both, and never over a value the caller set. OpenBLAS itself stays on one thread: torch
runs its own threads, and letting both spread over the two cores made a step 1.9x slower.
"""
import os


def setup(omp_threads):
    os.environ.setdefault('OMP_NUM_THREADS', str(omp_threads))
    os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        flags = []
    if 'avx2' in flags and 'fma' in flags:
        os.environ.setdefault('OPENBLAS_CORETYPE', 'Haswell')
