"""Latent diffusion: the released U-ViT / DiT denoisers (`denoisers`), the Gaussian diffusion
(`gaussian`: schedule, objective, sampler, guidance) and the generator that joins them with a
condition encoder and its autoencoder (`model.LatentDiffusion`)."""
