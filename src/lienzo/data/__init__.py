"""Data: sources that read files into uint8 image arrays with class names, splits, batch transforms."""

from .arrays import ImageArrays
from .sources import SOURCES, load_source

__all__ = ["ImageArrays", "SOURCES", "load_source"]
