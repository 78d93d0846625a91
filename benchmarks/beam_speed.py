"""Caption decoding speed: `beam_search` batched over all images (one decoder call per step for every image and
beam) against a loop calling it on one image at a time, and greedy decoding batched. The batched and per-image
captions and scores must agree (asserted); prints captions/s for each and the batched speed-up (issue 11's
target: ≥ 10× the per-image loop at beam 3, 16 tokens, vocabulary 2,500).

    python benchmarks/beam_speed.py --images 256 --beam 3 --length 16 --vocab 2500

The decoder is Show and Tell (features 2048, words 512, LSTM 512) with random weights, in eval mode, on the CPU.
Its word distributions are nearly flat, so <end> is practically never the best word and every caption runs
the full --length steps: the worst case, and the same work for every image. Each timing is the best of
--repeats after one warm-up call.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time

import torch

from lienzo.models.captioning import PAD, beam_search, greedy
from lienzo.models.registry import create_model


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls, after one call that warms up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_image(decoder, feats: torch.Tensor, beam: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """beam_search on one image at a time, its captions PAD-filled to one width like the batched call's."""
    results = [beam_search(decoder, feats[i:i + 1], beam_size=beam, max_length=length) for i in range(len(feats))]
    width = max(ids.shape[1] for ids, _ in results)
    ids = torch.cat([torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=PAD) for ids, _ in results])
    return ids, torch.cat([scores for _, scores in results])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--beam", type=int, default=3)
    p.add_argument("--length", type=int, default=16, help="most tokens per caption")
    p.add_argument("--vocab", type=int, default=2500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", nargs="+", choices=("32", "bf16"), default=["32", "bf16"],
                   help="autocast precisions to time (default: both)")
    a = p.parse_args()
    random.seed(0)
    torch.manual_seed(0)
    decoder = create_model("showtell", feature_dim=2048, vocab_size=a.vocab, word_dim=512, hidden=512).eval()
    feats = torch.randn(a.images, 2048)
    with torch.inference_mode():
        batched = beam_search(decoder, feats, beam_size=a.beam, max_length=a.length)
        looped = per_image(decoder, feats, a.beam, a.length)
        if not torch.equal(batched[0], looped[0]) or not torch.allclose(batched[1], looped[1], rtol=1e-4, atol=1e-4):
            raise SystemExit("beam_search batched and per image disagree")
        seconds = {}
        for precision in a.precision:
            context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

            def timed(fn):
                def run():
                    with context():
                        fn()
                return best_time(run, a.repeats)

            seconds[f"beam batched {precision}"] = timed(lambda: beam_search(decoder, feats, beam_size=a.beam,
                                                                            max_length=a.length))
            seconds[f"beam per image {precision}"] = timed(lambda: per_image(decoder, feats, a.beam, a.length))
            seconds[f"greedy batched {precision}"] = timed(lambda: greedy(decoder, feats, max_length=a.length))
    words = (batched[0] != PAD).sum(1).float().mean()
    print(f"showtell, {a.images} images, beam {a.beam}, ≤{a.length} tokens (mean {words:.1f} words), vocabulary "
          f"{a.vocab}, {torch.get_num_threads()} threads; batched and per-image captions are equal (fp32)")
    for name, value in seconds.items():
        print(f"{name}: {a.images / value:.0f} captions/s ({value * 1000:.0f} ms)")
    for precision in a.precision:
        print(f"speed-up of batched beam search over the per-image loop, both {precision}: "
              f"{seconds[f'beam per image {precision}'] / seconds[f'beam batched {precision}']:.1f}x")
    best_loop = min(v for k, v in seconds.items() if k.startswith("beam per image"))
    best_batched = min(v for k, v in seconds.items() if k.startswith("beam batched"))
    print(f"speed-up, each at its faster precision: {best_loop / best_batched:.1f}x")


if __name__ == "__main__":
    main()
