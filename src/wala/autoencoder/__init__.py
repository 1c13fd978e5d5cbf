"""The wavelet VQ-VAE, its quantizer and the adaptive sampling loss."""

from wala.autoencoder.loss import LOSSES, reconstruction_loss, surface_loss
from wala.autoencoder.model import WaveletVQVAE
from wala.autoencoder.quantizer import QuantizerOutput, VectorQuantizer

__all__ = ["LOSSES", "reconstruction_loss", "surface_loss", "WaveletVQVAE", "QuantizerOutput", "VectorQuantizer"]
