"""`lienzo curate`: build datasets from loose image folders, one module per verb.

- matching: descriptive file names + a class vocabulary → out/<class>/ (the thesis's Algorithm 1); the files
  left out are listed in out/unsorted.csv;
- scoring: a trained classifier over a folder → per-image top-k CSV and per-class figures, as `lienzo
  evaluate` computes them;
- filtering: keep images a `score` CSV is sure of, or the samples of an HDF5 file a classify run is sure of;
- splitting: stratified train/val/test into folders or one HDF5 file;
- masks: coco-masks, mask-pairs: RGB+mask HDF5 files for the GAN pipeline, from COCO instances or image/mask
  folders;
- files: placing files under names of their own, CSV text.

No step ever overwrites a file: two images with one name (cat/1.jpg, dog/1.jpg) landing in one folder
become 1.jpg and 1-2.jpg, and each rename is logged and counted.
"""

from lienzo.curate.files import csv_text, place, safe_folder_name
from lienzo.curate.filtering import filter_hdf5, filter_scored, fit_to_run
from lienzo.curate.masks import coco_masks, mask_pairs
from lienzo.curate.matching import (IMAGENET_SHARED_NAMES, IRREGULAR_PLURALS, STOPWORDS, UNSORTED_FILE, match,
                                    plural_forms, read_vocabulary, words)
from lienzo.curate.scoring import score
from lienzo.curate.splitting import split

__all__ = [
    "IMAGENET_SHARED_NAMES", "IRREGULAR_PLURALS", "STOPWORDS", "UNSORTED_FILE", "coco_masks", "csv_text",
    "filter_hdf5", "filter_scored", "fit_to_run", "mask_pairs", "match", "place", "plural_forms", "read_vocabulary",
    "safe_folder_name", "score", "split", "words",
]
