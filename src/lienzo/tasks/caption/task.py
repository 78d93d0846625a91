"""Caption: the Task the spine talks to, and the check that a run is a caption run."""

from __future__ import annotations

from pathlib import Path

from lienzo.errors import RunError
from lienzo.report.content import Report
from lienzo.tasks.base import Task
from lienzo.tasks.caption.config import HINTS, SECTIONS, validate
from lienzo.tasks.caption.module import CaptionModule, build_network, caption_macs, init_word_vectors

# -- the task ------------------------------------------------------------------------------------------

class Caption(Task):
    """Image–sentence retrieval (rank) and caption generation (showtell, attend) on cached image features."""

    name = "caption"
    main_metric = ("test", "rsum", "max")
    evaluate_keys = ("caption.beam", "caption.length_penalty", "caption.features", "caption.cache",
                     "caption.val_images")
    config_sections = SECTIONS  # the `caption` section, its data keys, and `finetune` (groups) for the image network
    config_hints = HINTS

    def headline(self, cfg) -> tuple[str, str, str]:
        return self.main_metric if cfg.caption.model == "rank" else ("test", "cider", "max")

    def validate(self, cfg) -> None:
        validate(cfg)

    def data_module(self, cfg, info: dict | None = None):
        from lienzo.tasks.caption.data import CaptionData

        return CaptionData(cfg, info)

    def resume_data(self, data, epoch: int) -> None:
        data.start_epoch = epoch

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
        return caption_macs(module)

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
