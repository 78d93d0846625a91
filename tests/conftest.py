import os
import warnings

import pytest
import torch

from tests.helpers import FASHION_MNIST

torch.set_num_threads(min(2, os.cpu_count() or 1))
warnings.filterwarnings("ignore", module=r"lightning.*")


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def fashion_root():
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail("Fashion-MNIST missing: `make test` installs Debian's dataset-fashion-mnist")
    return FASHION_MNIST
