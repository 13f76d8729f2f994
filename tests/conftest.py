from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

REFERENCE = Path(__file__).parent / "data" / "reference"


def read_manifest(name: str) -> dict[str, tuple[int, ...]]:
    """``name -> shape`` from a reference manifest TSV (trailer lines start with '#')."""
    shapes = {}
    for line in (REFERENCE / name).read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("name\t"):
            continue
        key, shape, _dtype, _numel = line.split("\t")
        shapes[key] = tuple(int(s) for s in shape.split(",")) if shape else ()
    return shapes


def manifest_total(name: str) -> int:
    for line in (REFERENCE / name).read_text().splitlines():
        if line.startswith("# total_params"):
            return int(line.split()[-1])
    raise AssertionError("no total_params line")


#: Trainer flags of a toy architecture, so that a training run takes seconds on a busy CPU.
TOY_ARGS = [
    "--dit-dim", "32", "--dit-heads", "2", "--dit-ffn", "64", "--dit-layers", "1",
    "--vae-dim", "4", "--vae-dec-dim", "4",
]  # fmt: skip


@contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One torch thread for a test: CPU results depend on the thread count, and small ops only lose
    to thread start-up and to other load on the cores."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_module():
    """:func:`one_thread` for a whole module (``pytestmark = pytest.mark.usefixtures(...)``)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that needs it (loopback only, no dashboard; Ray starts slowly).

    4 logical CPUs on the 2 cores: the shared pool of 2 workers, plus room for the examples' own
    actors (RLlib env runners) and a short-lived extra worker.
    """
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install "yume-env[ray]")')
    # Ray's memory monitor kills workers when the whole machine is above 95% memory, whoever uses
    # it: on a shared test machine that kills these small workers for other processes' memory.
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=4,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
        )
    yield ray
    ray.shutdown()
