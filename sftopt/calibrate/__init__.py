"""Calibration: measure stage time, memory, FLOPs, device FLOP/s, codec table (torch lazily)."""

# Modules: models, timing, memory, flops, device, codec, profile, cli. Only device and models are
# imported here, and neither imports torch at import time, so `import sftopt.calibrate` stays light.
from .device import device_entry, fit_affine, fit_flops
from .models import MODEL_NAMES, reduced_arch

__all__ = ["MODEL_NAMES", "device_entry", "fit_affine", "fit_flops", "reduced_arch"]
