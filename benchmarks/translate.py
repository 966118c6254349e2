"""Translation throughput: the official test phase vs nicegan's batched inference, images/s (disk I/O excluded).

    python benchmarks/translate.py [--img-size 256] [--images 16] [--batch-size 16] [--full]

official   benchmarks/official_nicegan.py networks in eval mode, one image at a time, gradients recorded (the
           official test loop has no no_grad), the full discriminator run to get z, output converted to uint8
ours       nicegan.inference's path: batches under inference_mode, the encoder alone, output to uint8
ours, compiled  the same with `translate --compile` (nicegan.nn.compiled); its first pass compiles, reported apart
onnxruntime  the same weights through `nicegan export --format onnx` (the graph users deploy), run by onnxruntime
           on the CPU with its default threads and graph optimisations, same batches (skip with --no-onnx)
All use the same weights and inputs; the maximum output difference from the official path is printed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from nicegan.core.runtime import tune_malloc
from nicegan.data.transforms import tensor_to_uint8
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.nn.compiled import compile_translation

try:
    from common import add_json_flag, emit, matmul_peaks
    from official_nicegan import OfficialNiceGAN
except ImportError:
    from benchmarks.common import add_json_flag, emit, matmul_peaks
    from benchmarks.official_nicegan import OfficialNiceGAN


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--img-size", type=int, default=256)
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--full", action="store_true")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="leave out the onnxruntime variant")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the compiled variant "
                   "(translate --compile; its first pass, which compiles, is reported apart)")
    add_json_flag(p)
    args = p.parse_args()
    s, light = args.img_size, not args.full
    torch.manual_seed(0)
    official = OfficialNiceGAN(s, 64, 6, 7 if s >= 96 else 6, light)
    for net in official.nets.values():
        net.eval()
    x = torch.rand(args.images, 3, s, s, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def run_official() -> list:
        out = []
        for i in range(len(x)):
            _, _, _, _, z = official.disA(x[i:i + 1])
            out.append(tensor_to_uint8(official.gen2B(z)[0]))
        return out

    run_official()  # warm-up
    t = time.perf_counter()
    ref = run_official()
    t_official = time.perf_counter() - t

    tune_malloc()  # what the nicegan CLI does
    torch.manual_seed(0)
    model = NiceGAN(NiceGANConfig(img_size=s, n_dis=7 if s >= 96 else 6, light=light)).eval()
    for name, off in (("gen_a2b", "gen2B"), ("gen_b2a", "gen2A"), ("dis_a", "disA"), ("dis_b", "disB")):
        model.nets[name].load_state_dict(official.nets[off].state_dict())

    def run_ours(fmt: torch.memory_format) -> list:
        out = []
        with torch.inference_mode():
            for k in range(0, len(x), args.batch_size):
                y = model.translate(x[k:k + args.batch_size].contiguous(memory_format=fmt), "a2b").clamp(-1, 1)
                out += [tensor_to_uint8(img) for img in y]
        return out

    print(f"NICE-GAN {'light' if light else 'full'} {s}px, {args.images} images, {torch.get_num_threads()} threads")
    print(f"{'path':<24}{'images/s':>10}{'s/image':>10}{'speed-up':>10}{'max diff':>10}")
    print(f"{'official':<24}{args.images / t_official:>10.2f}{t_official / args.images:>10.3f}{1:>9.1f}x{0:>10}")
    variants = {"official": {"images_per_s": args.images / t_official, "batch_size": 1}}
    for name, fmt in (("ours", torch.contiguous_format), ("ours, channels_last", torch.channels_last)):
        model.to(memory_format=fmt)
        run_ours(fmt)
        t = time.perf_counter()
        got = run_ours(fmt)
        t_ours = time.perf_counter() - t
        diff = max(int(abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(ref, got, strict=True))
        print(f"{name:<24}{args.images / t_ours:>10.2f}{t_ours / args.images:>10.3f}{t_official / t_ours:>9.1f}x"
              f"{diff:>7}/255   (batch {args.batch_size})")
        variants["ours" if fmt == torch.contiguous_format else "ours_channels_last"] = {
            "images_per_s": args.images / t_ours, "batch_size": args.batch_size, "max_diff_255": diff}
    if args.compile:  # `nicegan translate --compile`: the first batch compiles (timed apart)
        model.to(memory_format=torch.contiguous_format)
        compile_translation(model, torch.device("cpu"))
        t = time.perf_counter()
        run_ours(torch.contiguous_format)
        t_compile = time.perf_counter() - t
        t = time.perf_counter()
        got = run_ours(torch.contiguous_format)
        t_ours = time.perf_counter() - t
        diff = max(int(abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(ref, got, strict=True))
        print(f"{'ours, compiled':<24}{args.images / t_ours:>10.2f}{t_ours / args.images:>10.3f}"
              f"{t_official / t_ours:>9.1f}x{diff:>7}/255   (batch {args.batch_size}; first pass {t_compile:.1f} s)")
        variants["ours_compiled"] = {"images_per_s": args.images / t_ours, "batch_size": args.batch_size,
                                     "max_diff_255": diff, "first_pass_s": t_compile}
        model.translate = NiceGAN.translate.__get__(model)  # plain again for the variants below
    if args.onnx:
        runner = onnx_runner(model, s, light)
        batches = [x[k:k + args.batch_size].numpy() for k in range(0, len(x), args.batch_size)]

        def run_onnx() -> list:
            return [tensor_to_uint8(torch.from_numpy(img)) for b in batches for img in runner(b)]

        run_onnx()
        t = time.perf_counter()
        got = run_onnx()
        t_onnx = time.perf_counter() - t
        diff = max(int(abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(ref, got, strict=True))
        print(f"{'onnxruntime':<24}{args.images / t_onnx:>10.2f}{t_onnx / args.images:>10.3f}"
              f"{t_official / t_onnx:>9.1f}x{diff:>7}/255   (batch {args.batch_size})")
        variants["onnxruntime"] = {"images_per_s": args.images / t_onnx, "batch_size": args.batch_size,
                                   "max_diff_255": diff}
    if args.json:
        emit("translate", variants, matmul_peaks(),
             config={"img_size": s, "light": light, "images": args.images})


def onnx_runner(model: NiceGAN, size: int, light: bool):
    """Export ``model``'s a2b translation as a user would (checkpoint -> ``nicegan export --format onnx``) and
    return a function running the graph in onnxruntime on N x 3 x S x S float32 arrays."""
    import onnxruntime as ort

    from nicegan.configs.schema import resolve_config
    from nicegan.deploy.export import export
    from nicegan.formats import checkpoint

    cfg = resolve_config("nicegan-light" if light else "nicegan-full",
                         [("model.img_size", size), ("model.n_dis", model.cfg.n_dis)])
    folder = Path(tempfile.mkdtemp(prefix="nicegan-bench-onnx-"))
    checkpoint.write(checkpoint.Checkpoint(model="nicegan", config=cfg.to_dict(), step=0,
                                           nets={k: v.state_dict() for k, v in model.nets.items()}),
                     folder / "model.pt")
    export(folder / "model.pt", folder / "bundle", direction="a2b", fmt="onnx")
    session = ort.InferenceSession(str(folder / "bundle" / "model_a2b.onnx"), providers=["CPUExecutionProvider"])
    shutil.rmtree(folder, ignore_errors=True)  # the session holds the graph
    return lambda batch: session.run(["output"], {"input": batch})[0]


if __name__ == "__main__":
    main()
