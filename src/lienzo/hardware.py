"""What the hardware can do fast: the one place that decides precision and accelerator."""

from __future__ import annotations

import functools

import torch

from lienzo.errors import ConfigError


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


# Below this many multiply-adds per image a CPU step is all framework and memory traffic: bf16
# autocast only adds casts. Measured on the 2-core AMX machine (benchmarks/RESULTS.md): BaseNet
# (0.25 M) trains faster in fp32, BaseNet+ (29 M) and FastNet-S (17 M) 1.6x faster in bf16.
CPU_BF16_MIN_MACS = 5e6


def resolve_precision(precision: str, accelerator: str, macs_per_image: float | None = None) -> str:
    """Lightning's precision string: 'auto' is bf16 autocast where the hardware runs it fast, fp32 elsewhere.

    On the CPU, 'auto' also needs the model to be big enough to gain (`macs_per_image`, when known)."""
    accelerator = resolve_accelerator(accelerator)
    if precision == "auto":
        if accelerator == "gpu":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        big_enough = macs_per_image is None or macs_per_image >= CPU_BF16_MIN_MACS
        return "bf16-mixed" if cpu_has_fast_bf16() and big_enough else "32-true"
    if precision == "16" and accelerator == "cpu":
        raise ConfigError("trainer.precision: 16 (fp16 autocast) needs a GPU; use bf16 or 32 on the CPU")
    return {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}[precision]


def autocast_dtype(lightning_precision: str) -> torch.dtype | None:
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(lightning_precision)
