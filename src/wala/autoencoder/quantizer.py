"""Vector quantizer with a straight-through estimator, usage statistics and dead-code restarts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of a code histogram: the effective number of codes in use."""
    p = counts.double() / counts.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # (B, C, ...) codebook vectors, gradients pass straight through to z
    indices: torch.Tensor  # (B, ...) code index per position
    loss: torch.Tensor  # codebook term + β · commitment term
    counts: torch.Tensor  # (K,) how often each code was picked in this batch
    inputs: torch.Tensor  # z, detached: where dead codes restart

    @property
    def perplexity(self) -> torch.Tensor:
        return perplexity(self.counts)

    @property
    def usage(self) -> torch.Tensor:
        """Fraction of the codebook used in this batch."""
        return (self.counts > 0).float().mean()


class VectorQuantizer(nn.Module):
    def __init__(self, codebook_size: int = 1024, dim: int = 4, commitment: float = 0.25):
        super().__init__()
        self.commitment = commitment
        self.embedding = nn.Embedding(codebook_size, dim)  # the official name (quantize.embedding.weight)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        # training state only (dead-code restarts); absent from released checkpoints
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.long))

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, C, ...) with C = the code dimension. Distances |z|² + |e|² − 2 z·e, first minimum
        on ties, as the official quantizer (so released models pick the same codes)."""
        flat = z.movedim(1, -1).reshape(-1, z.shape[1]).float()
        codes = self.embedding.weight.float()
        dist = flat.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1)[None] - 2 * flat @ codes.T
        indices = dist.argmin(dim=1)
        chosen = codes[indices]
        loss = F.mse_loss(chosen, flat.detach()) + self.commitment * F.mse_loss(flat, chosen.detach())
        chosen = chosen.reshape(*z.movedim(1, -1).shape).movedim(-1, 1).to(z.dtype)
        quantized = z + (chosen - z).detach()
        counts = torch.bincount(indices, minlength=codes.shape[0])
        return QuantizerOutput(quantized, indices.reshape(z.shape[0], *z.shape[2:]), loss, counts, z.detach())

    @torch.no_grad()
    def restart_dead_codes(
        self, z: torch.Tensor, counts: torch.Tensor, patience: int, generator: torch.Generator | None = None
    ) -> int:
        """Codes unused for `patience` steps restart at random encoder outputs from `z`.

        `counts` must already be summed over all ranks, and under DDP the caller broadcasts the
        codebook afterwards so every rank holds the same restarted codes. Returns how many.
        """
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        dead = torch.nonzero(self.steps_unused >= patience).flatten()
        if patience <= 0 or len(dead) == 0:
            return 0
        flat = z.detach().movedim(1, -1).reshape(-1, z.shape[1])
        pick = torch.randint(len(flat), (len(dead),), generator=generator, device="cpu").to(flat.device)
        self.embedding.weight[dead] = flat[pick].to(self.embedding.weight.dtype)
        self.steps_unused[dead] = 0
        return len(dead)
