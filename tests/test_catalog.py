"""`lienzo models` answers from the catalog (no torch import); the catalog is the live registries."""

from __future__ import annotations

import subprocess
import sys
import time

from lienzo.catalog import read_catalog
from lienzo.models.summary import models_table


def test_catalog_is_the_live_registry():
    # Fails when a model is added, renamed or changed without `python -m lienzo.catalog`.
    assert read_catalog() == models_table()


def test_catalog_filters_by_pattern_and_kind():
    rows = read_catalog("vgg1?", "classifier")
    assert [r["name"] for r in rows] == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert read_catalog("vgg16", "nothing") == []


def test_models_answers_in_under_a_second_without_torch():
    code = ("import sys, time\nstart = time.perf_counter()\nfrom lienzo.cli import main\n"
            "main(['models', 'res*'])\nprint(time.perf_counter() - start, 'torch' in sys.modules)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - start
    seconds, torch_loaded = done.stdout.split()[-2:]
    assert done.returncode == 0, done.stderr
    assert "resnet18" in done.stdout and "11,689,512" in done.stdout
    assert torch_loaded == "False" and float(seconds) < 1.0 and wall < 3.0
