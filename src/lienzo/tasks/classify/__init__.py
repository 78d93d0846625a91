"""The classification task: train a classifier from scratch or from pretrained weights; top-1/top-5/
per-class evaluation; predictions on new images (`predict`), and the illustration study (`study`).

    config.py     the keys only classify honours (data.augment, trainer.tta, ...) and `finetune`
    data.py       ClassificationData: a source read once into memory, split, served in batches
    module.py     ClassifyModule: the LightningModule (loss, metrics, optimizers)
    inference.py  logits in the run's precision and TTA; a split's metrics
    report.py     the run page's sections
    task.py       Classify: the Task the spine talks to
    predict.py    the `lienzo predict` verb;  study.py: `lienzo study illustration`
"""

from lienzo.tasks.classify.inference import evaluate_arrays, predict_logits, run_logits, shift_images
from lienzo.tasks.classify.module import ClassifyModule
from lienzo.tasks.classify.task import INFO_KEYS, Classify

__all__ = ["Classify", "ClassifyModule", "INFO_KEYS", "evaluate_arrays", "predict_logits", "run_logits",
           "shift_images"]
