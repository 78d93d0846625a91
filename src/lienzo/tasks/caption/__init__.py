"""The caption task: image–sentence retrieval in a joint space (`caption.model: rank`, the draft thesis's
model: image features → affine, sentences → a recurrent network over word vectors, a bidirectional ranking
loss) and caption generation (`showtell`: Vinyals et al.; `attend`: Xu et al.'s soft attention), on image
features computed once by the transfer pipeline and cached.

    lienzo train configs/flickr8k_vgg16_rank.yaml
    lienzo caption describe runs/flickr8k_showtell photo.jpg --beam 3
    lienzo evaluate runs/flickr8k_vgg16_rank

An epoch is every training caption once, paired with its image. Validation scores the validation images
after every epoch: R@1/5/10 both ways (`val_rsum`, their sum, chooses best.ckpt) for retrieval; the
teacher-forced loss and greedy captions' BLEU-4 and CIDEr-D (`val_cider` chooses) for generation.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from lienzo.config import DataConfig, FinetuneConfig, OptimConfig, validate_finetune
from lienzo.errors import ConfigError, RunError
from lienzo.models.registry import create_model, get_builder, list_models, model_kind
from lienzo.optimizers import build_optimizer, build_scheduler
from lienzo.tasks.base import Report, Task
from lienzo.tasks.state import capture_rng, restore_rng

log = logging.getLogger("lienzo")

GENERATORS = ("showtell", "attend")
MARGINS = {"sum": 1.0, "hardest": 0.2}  # the thesis's sum of hinges (margin 1); VSE++'s hardest negative (0.2)


# -- config ------------------------------------------------------------------------------------------

@dataclass
class CaptionDataConfig(DataConfig):
    name: str = "captions"  # image files named by a caption file (data.captions)
    root: str | None = None  # the folder the caption file's image paths are relative to; None = the file's folder
    captions: str | None = None  # Karpathy's dataset_*.json, Flickr8k.token.txt, COCO captions_*.json, or CSV/JSONL
    format: str = "auto"  # auto, karpathy, flickr8k, coco, csv, jsonl
    split_file: str | None = None  # COCO: Karpathy's json or "<file> <split>" lines; Flickr8k: the split lists' folder
    restval: str = "train"  # where Karpathy's restval images go: train, val, test or drop
    val_fraction: float = 0.05  # CSV/JSONL without a split column: images held out (by file name, seeded)
    test_fraction: float = 0.05
    batch_size: int = 128  # (image, caption) pairs per step
    normalize: bool = False  # (features, not pixels: unused)


@dataclass
class CaptionOptimConfig(OptimConfig):
    name: str = "adam"
    lr: float = 2e-4


@dataclass
class CaptionConfig:
    model: str = "rank"  # rank (image–sentence retrieval), showtell or attend (caption generation)
    backbone: str = "vgg16"  # the image network: a torchvision/timm name or a lienzo run folder (lienzo.transfer)
    weights: str | None = "IMAGENET1K_V1"  # its weights: a file, or a torchvision name in $TORCH_HOME/hub/checkpoints
    layer: str = "fc7"  # its layer whose output is the image feature; attend: a convolutional grid (pool5)
    grid_pool: int = 1  # rank/showtell on a convolutional layer: the grid averaged to k×k and flattened (1 = one
    # vector; 2 or more keeps where things are); attend takes the whole grid
    features: str | None = None  # a features file to use as it is; None = computed once into `cache` and reused
    cache: str = "cache/features"  # where computed features files are kept (one per caption file, backbone, layer)
    min_count: int = 5  # words seen fewer times in the training captions are <unk>
    max_length: int = 16  # words per caption (longer ones are cut, and counted)
    word_dim: int | None = None  # word vectors (None: 300 for rank, 512 for the generators)
    word_vectors: str | None = None  # GloVe/word2vec text file to start the word vectors from (its dim = word_dim)
    joint_dim: int = 1024  # rank: the joint space
    encoder: str = "brnn"  # rank: sentence encoder brnn (the thesis's bidirectional net), gru or lstm
    score: str = "cosine"  # rank: cosine or dot
    loss: str = "sum"  # rank: sum (of hinges, the thesis) or hardest (VSE++'s hardest negative)
    margin: float | None = None  # rank: hinge margin; None = 1.0 for sum, 0.2 for hardest
    hidden: int = 512  # generators: LSTM size
    attention_dim: int = 512  # attend: size of the attention layer
    attention_weight: float = 1.0  # attend: λ of the doubly stochastic attention penalty
    dropout: float | None = None  # None = the model's default
    scheduled_sampling: float = 0.0  # generators: largest chance of feeding the model its own word, reached linearly
    finetune: bool = False  # train the image network too, end to end on the images (its layers' rates, frozen and
    # re-initialised layers: the `finetune` section, as in transfer; the rest at optim.lr); False = cached features
    grad_clip: float | None = 2.0  # gradient norm clipping
    beam: int = 3  # beam width of generated captions (1 = greedy)
    length_penalty: float = 0.0  # GNMT length normalisation α of beam scores (0 = sum of log-probabilities)
    val_images: int | None = 1000  # validation images scored per epoch (None = all)
    monitor: str = "auto"  # what chooses best.ckpt: auto (rsum for rank, cider for generators), cider, bleu4, rsum, loss


CHOICES = {"model": ("rank", *GENERATORS), "encoder": ("brnn", "gru", "lstm"), "score": ("cosine", "dot"),
           "loss": tuple(MARGINS), "monitor": ("auto", "cider", "bleu4", "rsum", "loss")}


def validate(cfg) -> None:
    c, d = cfg.caption, cfg.data
    for key, options in CHOICES.items():
        if getattr(c, key) not in options:
            raise ConfigError(f"caption.{key}: {getattr(c, key)!r} is not one of {', '.join(options)}")
    if model_kind(c.model) != "caption":
        raise ConfigError(f"caption.model: {c.model} is not a captioning model ({', '.join(list_models(kind='caption'))})")
    if d.format not in ("auto", "karpathy", "flickr8k", "coco", "csv", "jsonl"):
        raise ConfigError(f"data.format: {d.format!r} is not one of auto, karpathy, flickr8k, coco, csv, jsonl")
    if d.restval not in ("train", "val", "test", "drop"):
        raise ConfigError(f"data.restval: {d.restval!r} is not one of train, val, test, drop")
    for key in ("min_count", "max_length", "joint_dim", "hidden", "attention_dim", "beam", "grid_pool"):
        if getattr(c, key) < 1:
            raise ConfigError(f"caption.{key}: must be at least 1, got {getattr(c, key)}")
    if not 0.0 <= c.scheduled_sampling <= 1.0:
        raise ConfigError(f"caption.scheduled_sampling: must be in [0, 1], got {c.scheduled_sampling}")
    if c.model == "rank" and c.monitor in ("cider", "bleu4"):
        raise ConfigError(f"caption.monitor: {c.monitor} measures generated captions; a rank model monitors rsum or loss")
    if c.model != "rank" and c.monitor == "rsum":
        raise ConfigError("caption.monitor: rsum measures retrieval; a generator monitors cider, bleu4 or loss")
    if c.word_vectors and not Path(c.word_vectors).is_file():
        raise ConfigError(f"caption.word_vectors: {c.word_vectors} does not exist (a GloVe or word2vec text file)")
    if c.features and not Path(c.features).is_file():
        raise ConfigError(f"caption.features: {c.features} does not exist (leave it unset to compute the features)")
    if c.finetune and c.features:
        raise ConfigError("caption.finetune trains the image network on the images; caption.features (a fixed features "
                          "file) cannot be fine-tuned: unset one of them")
    if cfg.finetune.groups and not c.finetune:
        raise ConfigError("finetune.groups: set caption.finetune=true to fine-tune the image network (without it the "
                          "features are cached and fixed)")
    validate_finetune(cfg.finetune)
    if cfg.finetune.unfreeze_after:
        raise ConfigError("finetune.unfreeze_after: the caption task fine-tunes every group from the start "
                          "(freeze a group with finetune.groups[i].freeze instead)")
    if cfg.optim.schedule == "plateau":
        raise ConfigError("optim.schedule: plateau is not offered by the caption task; use step (decay every "
                          "optim.step_size epochs, as VSE++), cosine or linear")
    if c.val_images is not None and c.val_images < 1:
        raise ConfigError(f"caption.val_images: must be at least 1 (or null for all), got {c.val_images}")
    if c.margin is not None and c.margin < 0:
        raise ConfigError(f"caption.margin: must be >= 0, got {c.margin}")
    if c.grad_clip is not None and c.grad_clip <= 0:
        raise ConfigError(f"caption.grad_clip: must be > 0 (or null for no clipping), got {c.grad_clip}")
    for key in ("image_size", "channels", "classes", "random_erasing", "progressive_scale"):
        if getattr(d, key) is not None:
            raise ConfigError(f"data.{key}: not used by the caption task (the image network's own preprocessing "
                              "sizes the images; captions, not classes, are the labels)")
    if d.augment != "none":
        raise ConfigError("data.augment: the caption task trains on cached features of the images as they are (none)")


# -- the LightningModule -----------------------------------------------------------------------------

def _freeze_unreached(encoder: torch.nn.Module, preprocess) -> None:
    """The layers of the image network past caption.layer never run: no gradients for them (so DDP, under any
    strategy, has no unused parameters, and the optimizer none to carry). A layer counts as run when its
    forward finished on a probe image (in eval mode: no batch-norm statistics move)."""
    owners = [m for m in encoder.model.modules() if any(True for _ in m.parameters(recurse=False))]
    finished: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, _inputs, _output: finished.add(id(mod))) for m in owners]
    mode = encoder.training
    try:
        with torch.no_grad():
            encoder.eval()(torch.zeros(1, preprocess.channels, *preprocess.output_size))
    finally:
        encoder.train(mode)
        for hook in hooks:
            hook.remove()
    for module in owners:
        if id(module) not in finished:
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)


class CaptionModule(L.LightningModule):
    """One captioning network (`self.model`: rank, showtell or attend) on cached image features."""

    def __init__(self, model: torch.nn.Module, config: dict, info: dict, backbone=None):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "backbone"])
        self.model = model
        self.encoder = None  # the image network when it is fine-tuned (caption.finetune): images in, features out
        if backbone is not None:
            from lienzo.transfer.layers import FeatureExtractor

            self.encoder = FeatureExtractor(backbone, config["caption"]["layer"])
            self.preprocess = backbone.preprocess
            _freeze_unreached(self.encoder, backbone.preprocess)
        c = config["caption"]
        self.kind = c["model"]
        self.margin = c["margin"] if c["margin"] is not None else MARGINS[c["loss"]]
        self.hardest = c["loss"] == "hardest"
        shape = info["feature_shape"]
        self.grid = tuple(shape) if len(shape) == 3 else None  # (C, H, W) of a convolutional layer
        self.grid_pool = int(c["grid_pool"])
        from lienzo.data.captions import Vocabulary

        self.vocab = Vocabulary.from_dict(info["vocab"])
        self._val: list = []

    # -- features --------------------------------------------------------------------------------
    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the loaders hand out (cached features, or uint8 images when the image network is fine-tuned)
        → the captioning model's input."""
        inputs = inputs.to(self.device, non_blocking=True)
        if self.encoder is None:
            return self.prepare(inputs)
        return self.prepare(self.encoder(self.preprocess(inputs, resized=True)))

    def prepare(self, feats: torch.Tensor) -> torch.Tensor:
        """Flat features (N×D; a grid flattened as N×C·H·W, kept so, in float16, in memory) as the model takes
        them: attention gets the grid's positions (N×H·W×C); rank and showtell get it averaged to
        caption.grid_pool² cells and flattened."""
        feats = feats.float()
        if self.grid is None:
            return feats
        c, h, w = self.grid
        grid = feats.view(len(feats), c, h, w)
        if self.kind == "attend":
            return grid.flatten(2).transpose(1, 2)
        return F.adaptive_avg_pool2d(grid, self.grid_pool).flatten(1)

    # -- training ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        feats, tokens, lengths, image = batch
        feats = self.encode(feats)
        loss = self.loss(feats, tokens, lengths, image)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(tokens))
        return loss

    def loss(self, feats, tokens, lengths, image=None) -> torch.Tensor:
        from lienzo.models.captioning import ranking_loss

        if self.kind == "rank":
            im, s = self.model(feats, tokens, lengths)
            scores = self.model.similarity(im, s).float()
            same = image[:, None] == image[None, :] if image is not None else None
            return ranking_loss(scores, self.margin, self.hardest, same)
        return self.caption_loss(feats, tokens, lengths)

    def on_train_epoch_start(self) -> None:
        if self.encoder is not None:
            from lienzo.transfer.finetune import frozen_norms_to_eval

            frozen_norms_to_eval(self.encoder.model)  # a frozen group keeps its batch-norm statistics too

    def sample_prob(self) -> float:
        top = float(self.hparams.config["caption"]["scheduled_sampling"])
        if not top or self.trainer is None or not self.training:
            return 0.0
        total = max(int(self.trainer.estimated_stepping_batches), 1)  # epochs or trainer.max_steps alike
        return top * min(1.0, self.global_step / total)

    def caption_loss(self, feats, tokens, lengths) -> torch.Tensor:
        target = tokens[:, 1:]
        out = self.model(feats, tokens, sample_prob=self.sample_prob())
        logits, alphas = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
        if alphas is not None:
            from lienzo.models.captioning import doubly_stochastic

            weight = float(self.hparams.config["caption"]["attention_weight"])
            loss = loss + weight * doubly_stochastic(alphas.float(), lengths - 1).mean()
        return loss

    # -- validation --------------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        feats, positions, tokens, lengths, owner = batch
        feats = self.encode(feats)
        if self.kind == "rank":
            self._val.append(("rank", self.model.embed_images(feats).float(),
                              self.model.embed_sentences(tokens, lengths).float(), positions[owner]))
        else:
            loss = self.caption_loss(feats[owner], tokens, lengths)
            words = self.generate(feats, beam=1)
            self._val.append(("gen", positions, words, loss.detach() * len(tokens), len(tokens)))

    def on_validation_epoch_end(self) -> None:
        parts, self._val = self._val, []
        if not parts:
            return
        data = self.trainer.datamodule
        if parts[0][0] == "rank":
            from lienzo.metrics.retrieval import retrieval_metrics

            images = torch.cat([p[1] for p in parts])
            sentences = torch.cat([p[2] for p in parts])
            owners = torch.cat([p[3] for p in parts])
            result = retrieval_metrics(self.model.similarity(images, sentences).float().cpu(), owners.cpu())
            self.log_dict({f"val_{k}": float(result[k]) for k in
                           ("rsum", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10")})
            return
        from lienzo.metrics.language import caption_metrics

        split = data.splits["val"]
        positions = torch.cat([p[1] for p in parts]).tolist()
        words = [w for p in parts for w in p[2]]
        refs = {str(i): split.references[i] for i in positions}
        cands = {str(i): " ".join(w) or "<empty>" for i, w in zip(positions, words)}
        scores = caption_metrics(refs, cands, metrics=("bleu", "cider"))
        loss = sum(float(p[3]) for p in parts) / sum(p[4] for p in parts)
        self.log_dict({"val_loss": loss, "val_bleu4": float(scores["bleu4"]), "val_cider": float(scores["cider"])})

    # -- generation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, feats: torch.Tensor, beam: int | None = None, max_length: int | None = None) -> list[list[str]]:
        """Captions (word lists) for prepared features, by beam search (beam 1: greedy), batched."""
        from lienzo.models.captioning import beam_search

        c = self.hparams.config["caption"]
        mode = self.model.training
        self.model.eval()
        try:
            with self._decoding_precision(feats.device):
                ids, _ = beam_search(self.model, feats, beam_size=beam or c["beam"],
                                     max_length=max_length or c["max_length"], length_penalty=c["length_penalty"],
                                     banned=(self.vocab.unk_id,))  # a caption never says <unk>
        finally:
            self.model.train(mode)
        return [self.vocab.decode(row) for row in ids.tolist()]

    def _decoding_precision(self, device: torch.device):
        """Search in the run's precision: inside training that is Lightning's autocast; outside (evaluate,
        `lienzo caption describe`) bf16 autocast where trainer.precision resolves to it on this hardware (the
        batched search is compute-bound there, and bf16 doubles its speed on CPUs with AMX)."""
        from contextlib import nullcontext

        from lienzo.hardware import autocast_dtype, resolve_precision

        if torch.is_autocast_enabled(device.type):
            return nullcontext()
        precision = self.hparams.config["trainer"]["precision"]
        accelerator = "gpu" if device.type == "cuda" else "cpu"
        dtype = autocast_dtype(resolve_precision(precision, accelerator, Caption().precision_macs(self, {})))
        return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

    # -- optimisation --------------------------------------------------------------------------------
    def configure_optimizers(self):
        optim_cfg = OptimConfig(**self.hparams.config["optim"])
        params = [{"params": list(self.model.parameters()), "lr": optim_cfg.lr, "name": "caption"}]
        if self.encoder is not None:
            from lienzo.transfer.finetune import assign, param_groups, parse_groups

            groups = parse_groups((self.hparams.config.get("finetune") or {}).get("groups"))
            net = self.encoder.model
            params += [{**g, "name": f"image {g['name']}"} for g in
                       param_groups(net, groups, assign(net, groups), optim_cfg.lr, optim_cfg.weight_decay)]
        optimizer = build_optimizer(params, optim_cfg)
        scheduler, interval = build_scheduler(optimizer, optim_cfg, self.trainer.estimated_stepping_batches)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval,
                                                          "monitor": "val_loss"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = capture_rng()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        restore_rng(checkpoint.get("rng_states"))


# -- building ------------------------------------------------------------------------------------------

def build_network(cfg, info: dict) -> torch.nn.Module:
    """The caption.model network for the features and vocabulary in `info`."""
    c = cfg.caption
    shape = info["feature_shape"]
    grid = len(shape) == 3
    if c.model == "attend" and not grid:
        raise ConfigError(f"caption.model=attend attends over a convolutional grid, and caption.layer={c.layer} "
                          f"gives a vector of {shape[0]}; choose a convolutional layer (vgg16: pool5, resnet50: layer4)")
    feature_dim = shape[0] * (c.grid_pool ** 2 if grid and c.model != "attend" else 1)
    values = {"feature_dim": feature_dim, "vocab_size": len(info["vocab"]["words"]), "word_dim": c.word_dim,
              "joint_dim": c.joint_dim, "encoder": c.encoder, "score": c.score, "hidden": c.hidden,
              "attention_dim": c.attention_dim, "dropout": c.dropout}
    accepted = inspect.signature(get_builder(c.model)).parameters
    return create_model(c.model, **{k: v for k, v in values.items() if k in accepted and v is not None})


def init_word_vectors(net: torch.nn.Module, path: str, words: list[str]) -> None:
    from lienzo.models.captioning import load_word_vectors

    embedding = net.word_embedding
    vectors, found = load_word_vectors(path, words, embedding.weight.shape[1])
    with torch.no_grad():
        embedding.weight.copy_(vectors)
    log.info("word vectors from %s: %d of %d words found", path, found, len(words))


# -- the task ------------------------------------------------------------------------------------------

class Caption(Task):
    """Image–sentence retrieval (rank) and caption generation (showtell, attend) on cached image features."""

    name = "caption"
    main_metric = ("test", "rsum", "max")
    evaluate_keys = ("caption.beam", "caption.length_penalty", "caption.features", "caption.cache",
                     "caption.val_images")
    config_sections = {"data": CaptionDataConfig, "optim": CaptionOptimConfig, "caption": CaptionConfig,
                       "finetune": FinetuneConfig}

    def headline(self, cfg) -> tuple[str, str, str]:
        return self.main_metric if cfg.caption.model == "rank" else ("test", "cider", "max")

    def validate(self, cfg) -> None:
        validate(cfg)

    def data_module(self, cfg, info: dict | None = None):
        from lienzo.tasks.caption.data import CaptionData

        return CaptionData(cfg, info)

    def data_info(self, data) -> dict:
        return {"vocab": data.vocab.to_dict(), "feature_shape": list(data.features.shape),
                "backbone": data.features.backbone, "layer": data.features.layer, "weights": data.features.weights,
                **data.summary()}

    def build_module(self, cfg, info: dict, load_weights: bool = True) -> CaptionModule:
        net = build_network(cfg, info)
        if load_weights and cfg.caption.word_vectors:
            init_word_vectors(net, cfg.caption.word_vectors, info["vocab"]["words"])
        backbone = None
        if cfg.caption.finetune:
            from lienzo.transfer.backbones import load_backbone
            from lienzo.transfer.finetune import parse_groups, prepare

            c = cfg.caption
            backbone = load_backbone(c.backbone, c.weights)
            if load_weights and cfg.finetune.groups:
                prepare(backbone.model, parse_groups(cfg.finetune.groups), cfg.run.seed)
        return CaptionModule(net, cfg.to_dict(), info, backbone)

    def has_validation(self, data) -> bool:
        return "val" in data.splits

    def monitor(self, cfg, has_val: bool) -> tuple[str, str]:
        if not has_val:
            return "train_loss", "min"
        wanted = cfg.caption.monitor
        if wanted == "auto":
            wanted = "rsum" if cfg.caption.model == "rank" else "cider"
        return (f"val_{wanted}", "min" if wanted == "loss" else "max")

    def precision_macs(self, module, info: dict) -> float | None:
        # Work per caption: every weight multiplies once per word (a lower bound that is right in size).
        params = sum(p.numel() for p in module.model.parameters())
        macs = float(params) * int(module.hparams.config["caption"]["max_length"])
        if module.encoder is not None:
            from lienzo.models.summary import macs_for_precision

            p = module.preprocess
            macs += macs_for_precision(module.encoder.model, (p.channels, *p.output_size))
        return macs

    def trainer_kwargs(self, cfg) -> dict:
        return {"gradient_clip_val": cfg.caption.grad_clip} if cfg.caption.grad_clip else {}

    def describe(self, cfg, module, info: dict) -> dict:
        return {"arch": cfg.caption.model, "parameters": sum(p.numel() for p in module.parameters()),
                "finetune": cfg.caption.finetune,
                "backbone": info.get("backbone"), "layer": info.get("layer"), "feature_shape": info["feature_shape"],
                "vocabulary": len(info["vocab"]["words"]), "word_coverage": info.get("coverage"),
                "truncated_captions": info.get("truncated"),
                "dataset": {"images": info.get("images"), "captions": info.get("captions")}}

    def evaluate(self, loaded, data, split: str, cfg) -> dict | None:
        if split not in data.splits:
            return None
        from lienzo.tasks.caption.evaluate import evaluate_split

        return evaluate_split(loaded.module, data, split, cfg)

    def summary_line(self, split: str, results: dict) -> str:
        if "rsum" in results:
            return (f"{split}: image→text R@1/5/10 {results['i2t_r1']:.1f}/{results['i2t_r5']:.1f}/"
                    f"{results['i2t_r10']:.1f} (median rank {results['i2t_medr']:.0f}), text→image "
                    f"{results['t2i_r1']:.1f}/{results['t2i_r5']:.1f}/{results['t2i_r10']:.1f} "
                    f"(median rank {results['t2i_medr']:.0f}) on {results['images']} images")
        shown = ", ".join(f"{k} {results[k]:.3f}" for k in ("bleu4", "meteor", "rouge_l", "cider")
                          if results.get(k) is not None)
        return f"{split}: {shown} (beam {results['beam']}, {results['images']} images)"

    def report(self, run_dir: Path, cfg, metrics: dict, history: list[dict], data=None,
               extras: dict | None = None) -> Report:
        from lienzo.tasks.caption.evaluate import report_sections

        return report_sections(run_dir, cfg, metrics, extras)


def check_caption_run(loaded, what: str) -> None:
    if loaded.task != Caption.name:
        raise RunError(f"{loaded.path.parent.parent}: {what} needs a caption run, this is a {loaded.task} run")
