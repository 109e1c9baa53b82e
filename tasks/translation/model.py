"""The translation networks: the configured model family, built for a variant and the data.

Two families, one file each: ``rnn.py`` (Bahdanau/Luong encoder-decoder, or a fixed context for
``none``) and ``transformer.py`` (encoder-decoder Transformer with the variant in every attention).
``model.attn_projections`` (RNN) puts the same learned query/key/value/output projections around
every variant (see ``rnn.py``); the Transformer always has them (``attention.MultiHeadAttention``).
"""

from __future__ import annotations

from .data import TranslationData
from .rnn import RNNSeq2Seq
from .transformer import TransformerSeq2Seq

FAMILIES = ("rnn", "transformer")


def build_model(cfg: dict, variant: str, data: TranslationData) -> RNNSeq2Seq | TransformerSeq2Seq:
    """The configured family (``model`` section) with ``variant``, sized to the data's vocabularies."""
    kwargs = dict((cfg.get("variant_kwargs") or {}).get(variant) or {})
    common = {"src_vocab": len(data.src_vocab), "tgt_vocab": len(data.tgt_vocab), "dropout": cfg["dropout"],
              "variant": variant, "variant_kwargs": kwargs}
    projections = cfg.get("attn_projections", True)
    if cfg["family"] == "rnn":
        steps = int(data.max_src_len * cfg["max_len_ratio"]) + cfg["max_len_extra"]  # longest decode
        return RNNSeq2Seq(emb_dim=cfg["emb_dim"], hidden=cfg["hidden"], cell=cfg["cell"],
                          layers=cfg["layers"], max_len=data.max_src_len, max_steps=steps,
                          attn_projections=projections, **common)
    if projections is not True:
        raise ValueError(f"model.attn_projections={projections!r}: the transformer always projects "
                         "queries, keys and values (attention.MultiHeadAttention); only the rnn family "
                         "can turn them off")
    return TransformerSeq2Seq(dim=cfg["hidden"], heads=cfg["heads"], layers=cfg["layers"],
                              ff_dim=cfg["ff_dim"], attn_dropout=cfg["attn_dropout"],
                              max_src_len=data.max_src_len, max_tgt_len=data.max_tgt_len, **common)
