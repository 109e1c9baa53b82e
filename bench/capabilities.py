"""The variant x capability matrix, as rows (for the console, the README and reports)."""

from __future__ import annotations

import torch

import attention

DTYPE_SHORT = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}
NO_LIMIT = "none: tested against its own equation in float64"
COLUMNS = ("variant", "kind", "devices", "dtypes", "masks", "causal", "cross", "gqa", "decode", "dropout",
           "weights", "exact", "needs", "oracle limit")


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def capability_rows() -> list[dict[str, str]]:
    """One row per registered variant, in registry order, every cell a short string."""
    rows = []
    for name, cls in attention.REGISTRY.items():
        caps = cls.capabilities
        dense = issubclass(cls, attention.DenseAttention)
        limit = getattr(cls, "limit_case", None)
        rows.append({
            "variant": name,
            "kind": "dense" if dense else "graph",
            "devices": " ".join(sorted(caps.devices)),
            "dtypes": " ".join(DTYPE_SHORT[d] for d in DTYPE_SHORT if d in caps.dtypes),
            "masks": " ".join(m for m in ("key_padding", "boolean", "additive")
                              if m in caps.masks or (m == "key_padding" and "boolean" in caps.masks)) or "-",
            "causal": _yes(caps.causal),
            "cross": _yes(caps.cross),
            "gqa": _yes(caps.gqa),
            "decode": _yes(caps.decode and dense),
            "dropout": _yes(caps.dropout),
            "weights": _yes(caps.weights),
            "exact": _yes(caps.exact),
            "needs": " ".join(sorted(caps.needs)) or "-",
            "oracle limit": "is exact" if caps.exact else (limit.description if limit else NO_LIMIT),
        })
    return rows


def markdown_table(rows: list[dict[str, str]]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join([head, rule, *body])
