"""pyproject.toml ships only files that exist."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_data_pattern_matches_a_file():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    where = setuptools.get("packages", {}).get("find", {}).get("where", ["."])[0]
    for package, patterns in setuptools.get("package-data", {}).items():
        folder = ROOT / where / package.replace(".", "/")
        for pattern in patterns:
            assert any(folder.glob(pattern)), f"package-data {package}: {pattern} matches nothing in {folder}"
