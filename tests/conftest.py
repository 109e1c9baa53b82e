"""Test-wide settings: tiny tensors run fastest, and most robustly on a busy machine, on one thread."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
