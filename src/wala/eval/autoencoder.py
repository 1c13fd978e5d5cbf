"""Scoring an autoencoder on a prepared dataset: IoU, MSE, D-IoU, D-MSE, CD and F-score.

The reference of each sample is the TSDF of its stored wavelet tree (C0+D0+D1, the AE's target),
decoded at the dataset's resolution; the reconstruction goes encode → quantize → decode → unpack →
IDWT. IoU/MSE are on the N³ grid; CD/F-score (optional, slower) compare marching-cubes meshes.
"""

from __future__ import annotations

import torch

from wala.autoencoder.quantizer import perplexity
from wala.errors import WalaError
from wala.eval.metrics import dataset_average, iou, nan_mean, surface_metrics, tsdf_mse
from wala.sdf.extract import tsdf_to_mesh
from wala.wavelet.packing import packed_to_tsdf


@torch.no_grad()
def evaluate_autoencoder(
    model,
    dataset,
    indices=None,
    surface: bool = False,
    points: int = 30_000,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    quantize: bool = True,
) -> dict:
    """{"overall": {...}, "per_dataset": {name: {...}}, "samples": [...]} for the chosen samples.

    overall also holds the codebook's use over all of them: `codes_used` (distinct codes) and
    `perplexity`. quantize=False decodes the continuous latent instead: the gap between the two
    runs is what the quantizer costs."""
    model.eval()
    indices = list(range(len(dataset))) if indices is None else list(indices)
    samples = []
    counts = torch.zeros(model.quantize.embedding.num_embeddings, dtype=torch.long)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        x = torch.stack([dataset[i][0] for i in chunk]).to(device)
        z = model.encode(x)
        counts += model.quantize(z).counts.cpu()
        recon = model.decode(z, x.shape[-1], quantize=quantize).float()
        truth = packed_to_tsdf(x, dataset.resolution).cpu().numpy()
        pred = packed_to_tsdf(recon, dataset.resolution).cpu().numpy()
        for i, t, p in zip(chunk, truth, pred):
            record = dataset.records[i]
            row = {"key": record["key"], "dataset": record["dataset"], "iou": iou(p < 0, t < 0), "mse": tsdf_mse(p, t)}
            if surface:
                try:
                    row.update(surface_metrics(tsdf_to_mesh(p), tsdf_to_mesh(t), points))
                except WalaError:
                    row.update(cd=float("inf"), fscore=0.0)
            samples.append(row)
    result = summarize(samples, ["iou", "mse"] + (["cd", "fscore"] if surface else []))
    result["overall"].update(
        quantized=quantize,
        codes_used=int((counts > 0).sum()),
        codebook_size=len(counts),
        perplexity=float(perplexity(counts)),
    )
    return result


def summarize(samples: list[dict], metrics: list[str]) -> dict:
    """{"overall", "per_dataset", "samples"} of per-sample rows (each with "dataset" and `metrics`);
    overall adds the dataset-balanced D-IoU and D-MSE where IoU and MSE are present. NaN (a sample
    without a surface) is left out of CD-like means; such samples still count 0 in IoU."""
    overall = {m: nan_mean([s[m] for s in samples]) for m in metrics}
    for m in ("iou", "mse"):
        if m in metrics:
            overall[f"d_{m}"] = dataset_average(samples, m)
    per_dataset = {}
    for name in sorted({s["dataset"] for s in samples}):
        rows = [s for s in samples if s["dataset"] == name]
        per_dataset[name] = {"count": len(rows), **{m: nan_mean([r[m] for r in rows]) for m in metrics}}
    return {"overall": overall, "per_dataset": per_dataset, "samples": samples}


def format_evaluation(result: dict) -> str:
    metrics = [m for m in ("iou", "mse", "cd", "fscore") if m in result["overall"]]
    header = f"{'dataset':28s} {'n':>5s} " + " ".join(f"{m.upper():>10s}" for m in metrics)
    lines = [header]
    for name, row in result["per_dataset"].items():
        lines.append(f"{name[:28]:28s} {row['count']:5d} " + " ".join(f"{row[m]:10.5f}" for m in metrics))
    o = result["overall"]
    lines.append(f"{'all':28s} {len(result['samples']):5d} " + " ".join(f"{o[m]:10.5f}" for m in metrics))
    lines.append(f"D-IoU {o['d_iou']:.5f}   D-MSE {o['d_mse']:.6f}")
    if "codes_used" in o:
        lines.append(
            f"codebook: {o['codes_used']} of {o['codebook_size']} codes used, perplexity {o['perplexity']:.1f}"
            + ("" if o["quantized"] else "; decoded without quantizing")
        )
    return "\n".join(lines)
