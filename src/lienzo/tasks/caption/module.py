"""CaptionModule: the ranking loss or the decoder's cross-entropy, validation by Recall@K or CIDEr-D,
and how a run's networks are built (word vectors included)."""

from __future__ import annotations

import inspect
import logging

import torch
import torch.nn.functional as F

from lienzo.config import OptimConfig
from lienzo.errors import ConfigError
from lienzo.models.registry import create_model, get_builder
from lienzo.optimizers import build_optimizer, build_scheduler
from lienzo.tasks.state import capture_rng, restore_rng
from lienzo.tasks.base import TaskModule
from lienzo.tasks.caption.config import MARGINS

log = logging.getLogger("lienzo")

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


class CaptionModule(TaskModule):
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
        from lienzo.data.vocabulary import Vocabulary

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
        dtype = autocast_dtype(resolve_precision(precision, accelerator, caption_macs(self)))
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


def caption_macs(module) -> float:
    """Work per caption, so that precision auto keeps small decoders in fp32 on the CPU: every weight
    multiplies once per word (a lower bound that is right in size), plus the encoder's image when it trains."""
    params = sum(p.numel() for p in module.model.parameters())
    macs = float(params) * int(module.hparams.config["caption"]["max_length"])
    if module.encoder is not None:
        from lienzo.models.summary import macs_for_precision

        p = module.preprocess
        macs += macs_for_precision(module.encoder.model, (p.channels, *p.output_size))
    return macs
