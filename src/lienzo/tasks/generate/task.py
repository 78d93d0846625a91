"""Generate: the Task the spine talks to, and the checks of a scorer and of a run before sampling."""

from __future__ import annotations

from pathlib import Path

from lienzo.errors import ConfigError, DataError, LienzoError, RunError
from lienzo.models.registry import create_model
from lienzo.report.content import Report
from lienzo.tasks.base import Task
from lienzo.tasks.generate.config import HINTS, SECTIONS, validate
from lienzo.tasks.generate.data import GenerativeData
from lienzo.tasks.generate.module import GenerateModule

# -- the task ------------------------------------------------------------------------------------------

class Generate(Task):
    """Train a GAN; samples, Inception Score and FID (with Inception or any lienzo classifier's features)."""

    name = "generate"
    main_metric = ("test", "fid", "min")
    config_sections = SECTIONS  # the `gan` section; data, model and optim with the GAN's keys and defaults
    config_hints = HINTS
    sample_count_key = "gan.eval_samples"
    sample_count_default = 50_000  # the paper's; `lienzo evaluate RUN --n 5000` for a quick look

    def validate(self, cfg) -> None:
        validate(cfg)

    def data_module(self, cfg, info: dict | None = None) -> GenerativeData:
        # a new run, a resumed one or an evaluation: a scorer that cannot score is said before anything is
        # read, trained or written
        check_scorer(cfg.gan.scorer)
        run_shape = tuple(info["input_shape"]) if info and info.get("input_shape") else None
        return GenerativeData(cfg.data, cfg.gan, cfg.run.seed, run_shape)

    def resume_data(self, data, epoch: int) -> None:
        data.start_epoch = epoch

    def data_info(self, data: GenerativeData) -> dict:
        return {"input_shape": list(data.input_shape)}

    def build_module(self, cfg, info: dict, load_weights: bool = True) -> GenerateModule:
        channels, height, width = info["input_shape"]
        if height != width:
            raise DataError(f"{cfg.data.root or cfg.data.name}: {height}×{width} images; GANs here take square "
                            "ones (set data.image_size: [S, S])")
        gan = create_model(cfg.model.arch, channels=channels, image_size=height, maps=cfg.model.maps,
                           z_dim=cfg.model.z_dim, spectral_norm=cfg.model.spectral_norm)
        return GenerateModule(gan, cfg.to_dict(), info)

    def has_validation(self, data) -> bool:
        return False

    def precision_macs(self, module, info: dict) -> float | None:
        from lienzo.tasks.generate.samples import precision_macs

        return precision_macs(module, info)

    def monitor(self, cfg, has_val: bool) -> tuple[str, str]:
        if cfg.gan.scorer and cfg.gan.score_every:
            return "val_fid", "min"
        return "generator_steps", "max"  # without a metric, the latest generator is the best one

    def trainer_kwargs(self, cfg) -> dict:
        # The critic's steps leave the generator's weights without gradients (and the reverse): DDP must look
        # for unused parameters at every backward.
        return {"strategy": "ddp_find_unused_parameters_true"} if cfg.trainer.strategy == "ddp" else {}

    def describe(self, cfg, module, info: dict) -> dict:
        networks = {name: sum(p.numel() for p in getattr(module, name).parameters()) for name in ("generator", "critic")}
        return {"arch": cfg.model.arch, "parameters": sum(networks.values()), "networks": networks,
                "input_shape": info["input_shape"], "loss": cfg.gan.loss}

    def check_evaluate(self, cfg, split: str) -> None:
        if split != "test":
            raise ConfigError(f"--split {split}: generate runs are scored against the test split (the training "
                              "images are the real-data bound); leave --split out")
        if not cfg.gan.scorer:
            raise ConfigError("gan.scorer: this run has no scorer; pass one: lienzo evaluate RUN gan.scorer=RUN "
                              "(a lienzo classifier run) or gan.scorer=inception (with its weights file)")

    def evaluate(self, loaded, data, split: str, cfg) -> dict | None:
        if split != "test":
            return None
        from lienzo.tasks.generate.samples import score_run

        return score_run(loaded, data, cfg)

    def summary_line(self, split: str, results: dict) -> str:
        if results.get("fid") is None:
            return f"{split}: no IS/FID (set gan.scorer to a classifier run, or inception with its weights file)"
        return (f"{split}: FID {results['fid']:.2f} (real data: {results['real_fid']:.2f}), IS {results['is_mean']:.2f} "
                f"± {results['is_std']:.2f} (real: {results['real_is_mean']:.2f}) over {results['samples']} samples, "
                f"{results['scorer']} features")

    def report(self, run_dir: Path, cfg, metrics: dict, history: list[dict], data=None,
               extras: dict | None = None) -> Report:
        from lienzo.tasks.generate.samples import report_sections

        report = report_sections(run_dir, cfg, metrics)
        # no validation split: the FID checks during training compare the samples with training images
        report.curve_labels.update(val_fid="samples against training images", val_is="samples")
        return report


# The scorer runs the presets name, and the command that makes each.
PRESET_SCORERS = {"runs/fashion_fast": "lienzo train configs/fashion_fast.yaml",
                  "runs/study_masks/scorer": "lienzo study masks"}


def check_scorer(scorer: str | None) -> None:
    """gan.scorer can score, checked in full before a run trains or an evaluation starts (not at the first
    FID check or after training): "inception[:FILE]" has its weights file; a run folder holds a checkpoint
    of a classify run. The presets name runs users make first: the error says with which command."""
    if not scorer:
        return
    from lienzo.metrics.generative import inception_weights, require_classifier

    inception = scorer == "inception" or scorer.startswith("inception:")
    try:
        if inception:
            inception_weights(scorer.removeprefix("inception").removeprefix(":") or None)
            return
        if Path(scorer).is_dir():
            require_classifier(scorer)
            return
    except LienzoError as err:  # the inner message names the file or folder
        raise type(err)(f"gan.scorer{'=' + scorer if inception else ''}: {err}") from None
    path = Path(scorer)
    make = PRESET_SCORERS.get(path.as_posix(), f"lienzo train CLASSIFY_CONFIG run.dir={path.parent} run.name={path.name}")
    raise ConfigError(f"gan.scorer: {scorer} is not a run folder: make it first ({make}), or set gan.scorer=null "
                      "(samples only), gan.scorer=RUN (a lienzo classifier run) or gan.scorer=inception (with its "
                      "weights file)")


def check_generate_run(loaded, what: str) -> None:
    """`lienzo sample` and friends on a run of another task: one line naming it."""
    if loaded.task != Generate.name:
        raise RunError(f"{loaded.path.parent.parent}: {what} needs a generate run, this is a {loaded.task} run")
