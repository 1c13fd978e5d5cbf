"""Condition → mesh wall time per shape and peak memory, by stage: condition encoding + respaced
sampling (CFG batch of 2), autoencoder decoding + inverse DWT, marching cubes.

    python benchmarks/generation_speed.py [--config tiny|small|official] [--condition pointcloud|image]
                                          [--steps 8] [--device cuda] [--dtype fp32|bf16] [--threads N] [--compile]

`official` is a released architecture at full size with random weights (the time does not depend on
them): the 954M U-ViT, the 12.9M VQ-VAE, 256³, and PointNet_Large (`--condition pointcloud`, 25k
points) or the single-view model's DINOv2 ViT-L/14 with registers (`--condition image`: a 640×480 PNG
read, resized and cropped as `wala generate` does, then encoded).

Sampling and decoding cost the same on any weights, so they run on random ones. Marching cubes, mesh
building and file writing do not: a random model's TSDF is noise with millions of faces. They run on
TSDFs of real meshes at the model's resolution (`--surfaces`, from the real-mesh set `make meshes`
fetches: the Stanford bunny, the armadillo, the elephant), whose face counts are printed; each stage
figure is the mean over those surfaces. Peak memory: the process's max RSS (CPU) or the CUDA allocator's
peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import mcubes
import torch
from results import peak_memory_gib, report  # benchmarks/results.py (scripts run from their folder)

from wala.config import ConditionConfig, DiffusionConfig, load_config
from wala.diffusion.model import LatentDiffusion
from wala.io.mesh import load_mesh, normalize_mesh, save_mesh
from wala.nn import count_parameters
from wala.sdf.tsdf import mesh_to_tsdf
from wala.train.autoencoder import AutoencoderTrainConfig
from wala.train.diffusion import DiffusionTrainConfig
from wala.wavelet.packing import packed_size


def config(name: str, condition: str) -> DiffusionConfig:
    if name == "official":  # the released architectures (OFFICIAL.md §4): point cloud, or single view
        if condition == "image":
            return DiffusionConfig(condition=ConditionConfig(kind="image", width=1024, camera_index=True))
        return DiffusionConfig()
    if condition != "pointcloud":
        raise SystemExit("--condition image needs --config official")
    diffusion_file, ae_file, resolution = {
        "tiny": ("configs/diffusion_tiny.yaml", "configs/ae_tiny.yaml", 64),
        "small": ("configs/diffusion_pc_cpu.yaml", "configs/ae_cpu128.yaml", 128),
    }[name]
    ae = load_config(AutoencoderTrainConfig, ae_file).model
    model = load_config(DiffusionTrainConfig, diffusion_file).model
    latent = ae.sizes(packed_size(resolution))[-1]
    return dataclasses.replace(
        model, autoencoder=ae, resolution=resolution, denoiser=dataclasses.replace(model.denoiser, latent_size=latent)
    )


def real_surfaces(names: str, resolution: int) -> dict[str, object]:
    """name → the TSDF of that real mesh, normalized as prep does, at `resolution`."""
    folder = Path(os.environ.get("WALA_MESHES", Path(__file__).resolve().parents[1] / "data" / "meshes"))
    out = {}
    for name in names.split(","):
        path = folder / name
        if not path.is_file():
            raise SystemExit(f"{path} missing: run `make meshes`")
        mesh, _ = normalize_mesh(load_mesh(path))
        out[path.stem] = mesh_to_tsdf(mesh, resolution)
    return out


def surface_stages(tsdfs: dict, folder: Path, device: torch.device) -> dict[str, float]:
    """Mean seconds of marching cubes (PyMCubes on the CPU; on a GPU also wala's torch version there),
    mesh building and writing OBJ, PLY and GLB over real-surface TSDFs."""
    import trimesh

    from wala.sdf.grid import index_to_world
    from wala.sdf.marching import marching_cubes

    times = {"mc": [], "mc_device": [], "mesh": [], "write_obj": [], "write_ply": [], "write_glb": []}
    for name, tsdf in tsdfs.items():
        on_device = torch.from_numpy(tsdf).to(device)
        sync(device)
        t = time.perf_counter()
        marching_cubes(on_device)
        sync(device)
        times["mc_device"].append(time.perf_counter() - t)
        t0 = time.perf_counter()
        vertices, faces = mcubes.marching_cubes(tsdf, 0.0)
        t1 = time.perf_counter()
        mesh = trimesh.Trimesh(index_to_world(vertices, tsdf.shape[0]), faces[:, ::-1].astype("int64"), process=False)
        times["mc"].append(t1 - t0)
        times["mesh"].append(time.perf_counter() - t1)
        for suffix in ("obj", "ply", "glb"):
            t = time.perf_counter()
            save_mesh(mesh, folder / f"{name}.{suffix}")
            times[f"write_{suffix}"].append(time.perf_counter() - t)
    return {k: sum(v) / len(v) for k, v in times.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def condition_reader(args, c: DiffusionConfig):
    """A function making the model input, as `wala generate` does from a file (images) or in memory (points)."""
    if args.condition == "pointcloud":
        points = torch.rand(1, args.points, 3) * 1.8 - 0.9
        return lambda: points
    import tempfile

    import numpy as np
    from PIL import Image

    from wala.conditions import condition_kind

    path = tempfile.NamedTemporaryFile(suffix=".png", delete=False).name
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path)
    kind = condition_kind(c.condition.kind)
    return lambda: kind.to_input(kind.read([path], c.condition), c.condition)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "small", "official"), default="tiny")
    parser.add_argument("--condition", choices=("pointcloud", "image"), default="pointcloud")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--scale", type=float, default=3.0)
    parser.add_argument("--points", type=int, default=25_000, help="the released examples hold 25k points")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="weights and activations")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoiser")
    parser.add_argument("--json", help="append the result here (one JSON object per line)")
    parser.add_argument(
        "--surfaces",
        default="cgal/bunny00.off,cgal/armadillo.off,cgal/elephant.off",
        help="real meshes (under $WALA_MESHES) whose TSDFs are meshed and written",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    c = config(args.config, args.condition)
    start = time.perf_counter()
    with device:  # random weights drawn where they live: a 1B model initialises in seconds on a GPU
        model = LatentDiffusion(c)
    model = model.to(device=device, dtype=dtype).eval()
    built = time.perf_counter() - start
    if args.compile:
        model.network.unet = torch.compile(model.network.unet)
    condition_input = condition_reader(args, c)
    tsdfs = real_surfaces(args.surfaces, c.resolution)
    faces = {}
    for name, tsdf in tsdfs.items():
        faces[name] = len(mcubes.marching_cubes(tsdf, 0.0)[1])
    print(f"real surfaces at {c.resolution}³: " + ", ".join(f"{k} {v:,} faces" for k, v in faces.items()), flush=True)
    keys = ("sample", "decode", "mc", "mc_device", "mesh", "write_obj", "write_ply", "write_glb", "total")
    stages = {k: [] for k in keys}
    written = Path(tempfile.mkdtemp(prefix="wala-bench-"))
    for _ in range(args.repeat + 1):  # the first run warms up
        sync(device)
        t0 = time.perf_counter()
        latent = model.sample_latents(condition_input().to(device, dtype), args.steps, args.scale, seed=0)
        sync(device)
        t1 = time.perf_counter()
        model.decode(latent)[0].float().cpu().numpy()
        sync(device)
        t2 = time.perf_counter()
        surface = surface_stages(tsdfs, written, device)
        run = {"sample": t1 - t0, "decode": t2 - t1, **surface}
        run["total"] = run["sample"] + run["decode"] + run["mc"] + run["mesh"] + run["write_obj"]
        for key in keys:
            stages[key].append(run[key])
    shutil.rmtree(written, ignore_errors=True)
    mean = {k: sum(v[1:]) / len(v[1:]) for k, v in stages.items()}
    result = {
        "config": args.config,
        "condition": args.condition,
        "device": str(device),
        "dtype": args.dtype,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "parameters_m": round(count_parameters(model) / 1e6, 1),
        "build_s": round(built, 1),
        **{f"{k}_s": round(v, 3) for k, v in mean.items()},
        "surface_faces": faces,
        "peak_memory_gib": round(peak_memory_gib(device), 2),
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
