"""Calibration: measure stage time, memory, FLOPs, device FLOP/s, codec table (torch lazily)."""

# Modules: timing, memory, flops, device, codec, profile, cli (the staged model and LoRA are in
# sftopt.torchrt, shared with the executor). device and torchrt.models are imported here, and
# neither imports torch at import time, so `import sftopt.calibrate` stays light.
from ..torchrt.models import MODEL_NAMES, reduced_arch
from .device import device_entry, fit_affine, fit_flops

__all__ = ["MODEL_NAMES", "device_entry", "fit_affine", "fit_flops", "reduced_arch"]
