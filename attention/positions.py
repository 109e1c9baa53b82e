"""Relative positions inside attention: rotary embeddings (RoPE) and linear biases (ALiBi).

RoPE (Su et al., "RoFormer", 2021): each query and key vector at position p is rotated, pair of
dimensions by pair, by angles p * theta_i, theta_i = base^(-2i / D), so q_m . k_n depends on the
positions only through m - n. The pairs are (x_i, x_{i + D/2}) ("rotate half", as GPT-NeoX and
Llama lay them out); D must be even.

    rope(x)_p = x_p * cos(p theta) + rotate_half(x_p) * sin(p theta)

ALiBi (Press et al., "Train Short, Test Long", ICLR 2022): no position embedding; each head h adds
-m_h * distance(i, j) to the scores, with slopes m_h the geometric sequence 2^(-8 h / H) (for H a
power of two; otherwise the slopes of the next lower power of two, completed with every other slope
of the next higher one, as the paper's code does). Causal models use distance i - j (keys ahead are
masked anyway); bidirectional encoders use |i - j|.

Both act on the (B, H, L, D) tensors of the dense interface: RoPE on the queries and keys before
the call, ALiBi as an additive mask, so a variant that takes no additive mask refuses ALiBi with
its reason (it is never dropped silently).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

POSITIONS = ("none", "rope", "alibi")


def rope_tables(length: int, head_dim: int, *, base: float = 10000.0, offset: int = 0,
                device: torch.device | None = None, dtype: torch.dtype = torch.float32
                ) -> tuple[Tensor, Tensor]:
    """cos and sin tables (length, head_dim) for positions offset .. offset + length - 1."""
    if head_dim % 2:
        raise ValueError(f"rope needs an even head dim, got {head_dim}")
    if not (math.isfinite(base) and base > 1):
        raise ValueError(f"rope base must be a finite number > 1, got {base}")
    inverse = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.arange(offset, offset + length, dtype=torch.float64, device=device)[:, None] * inverse
    angles = torch.cat([angles, angles], dim=-1)  # (length, head_dim): the same angle for both halves
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: Tensor, *, base: float = 10000.0, offset: int = 0) -> Tensor:
    """x (B, H, L, D) rotated by its positions offset .. offset + L - 1."""
    cos, sin = rope_tables(x.shape[-2], x.shape[-1], base=base, offset=offset, device=x.device,
                           dtype=x.dtype)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def alibi_slopes(num_heads: int) -> Tensor:
    """The per-head slopes m_h (float64, shape (H,))."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")

    def powers(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    lower = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = powers(lower)
    if lower < num_heads:
        slopes += powers(2 * lower)[0::2][: num_heads - lower]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(num_heads: int, lq: int, lk: int, *, causal: bool, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """(1, H, Lq, Lk) additive bias -m_h * distance: i - j when causal, else |i - j| (queries and
    keys at positions 0 ..)."""
    i = torch.arange(lq, device=device, dtype=torch.float64)[:, None]
    j = torch.arange(lk, device=device, dtype=torch.float64)[None, :]
    distance = (i - j).clamp(min=0) if causal else (i - j).abs()
    return (-alibi_slopes(num_heads).to(device)[:, None, None] * distance)[None].to(dtype)
