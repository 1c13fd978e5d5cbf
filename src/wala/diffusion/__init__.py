"""Latent diffusion: U-ViT / DiT denoisers, the cosine schedule, samplers and guidance."""
from wala.diffusion.model import ARCHITECTURES, LatentDiffusion
from wala.diffusion.sampling import SAMPLERS, combine_guidance, guided, sample

__all__ = ["ARCHITECTURES", "LatentDiffusion", "SAMPLERS", "combine_guidance", "guided", "sample"]
