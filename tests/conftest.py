"""Shared test settings: which backends to run on, and hypothesis profiles."""
import os

# One BLAS thread for the tests (set before NumPy loads): their matrices are tiny, and
# on a busy 2-core machine OpenBLAS threads spin-wait for each other, making tests ~5x slower.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pytest
from hypothesis import HealthCheck, settings

import minigrad

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Every backend test runs on the CPU, and on CUDA where CuPy sees a GPU.
BACKENDS = [
    "cpu",
    pytest.param("cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not minigrad.cuda_available(), reason="needs CuPy and a CUDA GPU"),
    ]),
]


@pytest.fixture(params=BACKENDS)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seeded():
    minigrad.manual_seed(0)


@pytest.fixture
def pieces(monkeypatch):
    """A list that gets the number of tasks of every threads.run_in_parallel call (which
    still runs them): how many pieces an op split its work into."""
    counts, run = [], minigrad.threads.run_in_parallel

    def counting(tasks):
        counts.append(len(tasks))
        return run(tasks)
    monkeypatch.setattr(minigrad.threads, "run_in_parallel", counting)
    return counts
