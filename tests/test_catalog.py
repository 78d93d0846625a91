"""`lienzo models` answers from the catalog (no torch import); the catalog is the live registries."""

from __future__ import annotations

import subprocess
import sys

from lienzo.cli.catalog import read_catalog
from lienzo.models.summary import models_table


def test_catalog_is_the_live_registry():
    # Fails when a model is added, renamed or changed without `python -m lienzo.cli.catalog`.
    assert read_catalog() == models_table()


def test_catalog_filters_by_pattern_and_kind():
    rows = read_catalog("vgg1?", "classifier")
    assert [r["name"] for r in rows] == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert read_catalog("vgg16", "nothing") == []


def test_models_answers_without_importing_torch():
    # What made `lienzo models` fast: it reads the catalog and imports no torch (the time itself, which a
    # shared machine makes flaky, is measured by benchmarks/cli_startup.py).
    code = ("import sys\nfrom lienzo.cli import main\n"
            "code = main(['models', 'res*'])\nprint(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "resnet18" in done.stdout and "11,689,512" in done.stdout
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout
