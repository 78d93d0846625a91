"""What the hardware can do fast: the one place that decides precision and accelerator."""

from __future__ import annotations

import functools

import torch

from .errors import ConfigError


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles or AVX-512 BF16 (Sapphire Rapids and later, Zen 4 and later)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        if any(check() for check in checks if check is not None):
            return True
    except RuntimeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "amx_bf16" in flags or "avx512_bf16" in flags
    except OSError:
        return False


def resolve_accelerator(accelerator: str) -> str:
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator: gpu was asked for but torch sees no CUDA device")
    return "gpu" if accelerator == "cuda" else accelerator


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision string: 'auto' is bf16 autocast where the hardware runs it fast, fp32 elsewhere."""
    accelerator = resolve_accelerator(accelerator)
    if precision == "auto":
        if accelerator == "gpu":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"
    if precision == "16" and accelerator == "cpu":
        raise ConfigError("trainer.precision: 16 (fp16 autocast) needs a GPU; use bf16 or 32 on the CPU")
    return {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}[precision]


def autocast_dtype(lightning_precision: str) -> torch.dtype | None:
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(lightning_precision)
