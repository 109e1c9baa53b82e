"""Question-guided attention over image regions (stacked, one or more hops) vs a mean-pooled image.

After Yang et al., "Stacked Attention Networks for Image Question Answering", CVPR 2016, with
the multiplicative question-image fusion F(q, v) = ReLU(W q) * ReLU(W' v) of Kim et al. 2017 /
Anderson et al. 2018. With regions a_1..a_L (``RegionEncoder``, LayerNorm-ed) and the question
vector q (a GRU's last state or the mean of its word embeddings, LayerNorm-ed):

    hop 1:   query_1 = MLP(q)
    hop k>1: query_k = W_k F_k(q, [z_1; ...; z_{k-1}])
    z_k = Attend_k(query_k, K_k a, a)
    answer logits = MLP_out(F(q, [z_1; ...; z_K]))

``Attend_k`` is any dense attention variant (one head, head dim = ``dim``) on (B, 1, 1, dim)
queries over (B, 1, L, dim) keys/values. The second hop's query sees what the first hop read
(e.g. where the red object is), which is what relational questions ("the object nearest to the
red object") need. The ``none`` baseline replaces the hops by the mean of the regions:
logits = MLP_out(F(q, mean_i a_i)), the CNN+MLP model of Santoro et al. 2017.

Shapes: images (U, 3, H, W), image_row (B,) into U, question (B, T), lengths (B,) -> (B, A).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

import attention
from tasks._vision import RegionEncoder

QUESTION_ENCODERS = ("gru", "bow")


def mlp(inp: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out))


class QuestionEncoder(nn.Module):
    def __init__(self, *, vocab: int, emb_dim: int, dim: int, kind: str) -> None:
        super().__init__()
        if kind not in QUESTION_ENCODERS:
            raise ValueError(f"question_encoder must be one of {list(QUESTION_ENCODERS)}, got {kind!r}")
        self.kind = kind
        self.embed = nn.Embedding(vocab, emb_dim, padding_idx=0)
        self.rnn = nn.GRU(emb_dim, dim, batch_first=True) if kind == "gru" else None
        self.proj = nn.Linear(emb_dim, dim) if kind == "bow" else None

    def forward(self, question: Tensor, lengths: Tensor) -> Tensor:
        x = self.embed(question)  # (B, T, E)
        if self.rnn is None:
            return self.proj(x.sum(1) / lengths.clamp(min=1).unsqueeze(1).to(x.dtype))
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        return self.rnn(packed)[1][-1]  # (B, dim)


class Fusion(nn.Module):
    """Multiplicative fusion ReLU(W_q q) * ReLU(W_v v) (Kim et al. 2017; Anderson et al. 2018):
    the product lets the question gate which image features reach the answer."""

    def __init__(self, q_dim: int, v_dim: int, hidden: int) -> None:
        super().__init__()
        self.q, self.v = nn.Linear(q_dim, hidden), nn.Linear(v_dim, hidden)

    def forward(self, q: Tensor, v: Tensor) -> Tensor:
        return torch.relu(self.q(q)) * torch.relu(self.v(v))


class VQAModel(nn.Module):
    """Args: vocab, num_answers; variant (a dense attention name or ``none``) and its kwargs;
    hops; dim (region, question and attention width); emb_dim; hidden (MLP width);
    question_encoder (``gru``/``bow``); dropout; encoder: ``RegionEncoder`` keyword arguments."""

    def __init__(self, *, vocab: int, num_answers: int, variant: str, variant_kwargs: Mapping | None,
                 hops: int, dim: int, emb_dim: int, hidden: int, question_encoder: str, dropout: float,
                 encoder: Mapping) -> None:
        super().__init__()
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
            raise ValueError(f"hops must be a positive integer, got {hops!r}")
        self.variant, self.hops = variant, hops if variant != "none" else 0
        self.encoder = RegionEncoder(dim=dim, **encoder)
        # Unit-scale question (the regions are normalised by the encoder): the first dot-product
        # scores are then not all ~0, so attention leaves the uniform start sooner.
        self.question_norm = nn.LayerNorm(dim)
        self.question = QuestionEncoder(vocab=vocab, emb_dim=emb_dim, dim=dim, kind=question_encoder)
        self.first_query = mlp(dim, hidden, dim, dropout) if self.hops else None
        self.later_queries = nn.ModuleList(
            nn.ModuleDict({"fuse": Fusion(dim, dim * k, hidden), "out": nn.Linear(hidden, dim)})
            for k in range(1, self.hops))
        self.keys = nn.ModuleList(nn.Linear(dim, dim) for _ in range(self.hops))
        self.attend = nn.ModuleList(
            attention.build_in_context(variant, head_dim=dim, num_heads=1, max_len=self.encoder.num_regions,
                                       **dict(variant_kwargs or {})) for _ in range(self.hops))
        self.fuse = Fusion(dim, dim * max(self.hops, 1), hidden)
        self.classify = mlp(hidden, hidden, num_answers, dropout)

    def _query(self, hop: int, q: Tensor, read: list[Tensor]) -> Tensor:
        if hop == 0:
            return self.first_query(q)
        later = self.later_queries[hop - 1]
        return later["out"](later["fuse"](q, torch.cat(read, dim=-1)))

    def forward(self, images: Tensor, image_row: Tensor, question: Tensor, lengths: Tensor, *,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Answer logits (B, A) and, with ``need_weights``, the weights (B, hops, L) of each hop."""
        regions = self.encoder(images)  # (U, L, D), one row per distinct image
        q = self.question_norm(self.question(question, lengths))  # (B, D)
        if self.hops == 0:
            return self.classify(self.fuse(q, regions.mean(1)[image_row])), None
        values = regions[image_row].unsqueeze(1)  # (B, 1, L, D)
        read, weights = [], []
        for hop, (key_proj, attend) in enumerate(zip(self.keys, self.attend, strict=True)):
            query = self._query(hop, q, read)[:, None, None, :]  # (B, 1, 1, D)
            keys = key_proj(regions)[image_row].unsqueeze(1)  # projected once per image
            out = attend(query, keys, values, need_weights=need_weights)
            read.append(out.output[:, 0, 0])  # (B, D)
            if need_weights:
                weights.append(out.weights[:, 0, 0])  # (B, L)
        logits = self.classify(self.fuse(q, torch.cat(read, dim=-1)))
        return logits, torch.stack(weights, 1) if need_weights else None
