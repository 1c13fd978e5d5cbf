"""The wavelet VQ-VAE, its quantizer and the adaptive sampling loss."""

from wala.autoencoder.loss import LOSSES, reconstruction_loss
from wala.autoencoder.model import WaveletVQVAE, count_parameters
from wala.autoencoder.quantizer import QuantizerOutput, VectorQuantizer

__all__ = ["LOSSES", "reconstruction_loss", "WaveletVQVAE", "count_parameters", "QuantizerOutput", "VectorQuantizer"]
