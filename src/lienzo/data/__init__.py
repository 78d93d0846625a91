"""Data: sources that read files into uint8 image arrays with class names, splits, batch transforms."""

from lienzo.data.arrays import ImageArrays
from lienzo.data.sources import SOURCES, load_source

__all__ = ["ImageArrays", "SOURCES", "load_source"]
