"""Codec for activations and gradients: top-k sparsification, unbiased stochastic quantization,
ANS entropy coding of values and positions, in a versioned self-describing byte stream.

Public API: encode, decode, measure, distortion, analytic_beta, EncodeInfo. Importing this
package does not import torch; torch tensors are handled when passed in.
"""

from .core import EncodeInfo, analytic_beta, decode, distortion, encode, measure
from .stream import VERSION as FORMAT_VERSION

__all__ = [
    "FORMAT_VERSION",
    "EncodeInfo",
    "analytic_beta",
    "decode",
    "distortion",
    "encode",
    "measure",
]
