"""The captioning task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

import lightning as L

from tasks._base import Task, variant_kwargs
from tasks._text import AttentionUse, dense_variant_reasons, forms_weights, run_device

from .data import build_data
from .model import CaptionModel
from .module import CaptionModule

EXAMPLES = 3


class CaptioningTask(Task):
    name = "captioning"
    monitor = "val/bleu4"
    diagnoses = {  # measured on the quick preset's scenes, seed 0
        "linformer": "its weights over the 9 regions are a^T F, mixtures of F's rows, which are learned "
                     "but the same for every image, so it cannot single out the cell a word is about; "
                     "rank 9 (no compression) scored about the same (BLEU-4 61.1 against 59.7 at rank 4)",
    }

    def attention_calls(self, variant: str, config: dict) -> list[AttentionUse]:
        """One query per decoding step over the grid x grid regions."""
        model = config["model"]
        grid = model["encoder"]["grid"]
        return [AttentionUse("decoder attention over the regions", lq=1, lk=grid * grid, key_padding=False,
                             causal=False, need_weights=float(model["doubly_stochastic"]) > 0,
                             head_dim=model["dim"])]

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        """Reasons from the variant's capabilities for the configured model (``quick`` by default).

        The decoder's query attends over the L regions (Lq = 1, Lk = L, no mask); the doubly
        stochastic regulariser (``model.doubly_stochastic`` > 0) needs the attention weights.
        """
        config = config or self.config("quick")
        [use] = self.attention_calls(variant, config)
        reasons = dense_variant_reasons(variant, [use], device=run_device(config["trainer"]),
                                        baselines=self.baselines, kwargs=variant_kwargs(config, variant))
        if use.need_weights and any("need_weights" in r for r in reasons):
            reasons.append("set model.doubly_stochastic=0 to train without the regulariser")
        return reasons

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[L.LightningDataModule, L.LightningModule]:
        kwargs = self.check_variant(variant, config)
        cfg, optim = config["model"], config["optim"]
        datamodule = build_data(config["data"], data, seed)
        model = CaptionModel(vocab=len(datamodule.vocab), variant=variant, variant_kwargs=kwargs.get(variant),
                             dim=cfg["dim"], emb_dim=cfg["emb_dim"], hidden=cfg["hidden"],
                             dropout=cfg["dropout"], gate=cfg["gate"], encoder=cfg["encoder"])
        module = CaptionModule(model=model, vocab=datamodule.vocab, lr=optim["lr"],
                               weight_decay=optim["weight_decay"], doubly_stochastic=cfg["doubly_stochastic"],
                               test_decode=cfg["test_decode"], beam_size=cfg["beam_size"],
                               length_penalty=cfg["length_penalty"],
                               max_caption_len=datamodule.max_caption_len)
        return datamodule, module

    def attention_examples(self, module: L.LightningModule, datamodule: L.LightningDataModule
                           ) -> dict | None:
        """The weights behind each word of the model's greedy caption of a few test images
        (the first in-distribution and, when there are any, the first novel images)."""
        if not forms_weights(module.model.variant):
            return None
        test = datamodule.eval_sets["test"]
        novel = [i for i, flag in enumerate(test.data.novel) if flag]
        seen = [i for i, flag in enumerate(test.data.novel) if not flag]
        chosen = sorted(seen[:EXAMPLES - min(1, len(novel))] + novel[:1])
        batch = test.collate(chosen)
        maps = module.attention_maps(batch)
        grid = maps["weights"].shape[-1]
        examples = []
        for row, i in enumerate(chosen):
            words = [*maps["captions"][row], "<eos>"][:maps["weights"].shape[1]]
            examples.append({"image": (test.data.images[i].float() / 255.0).tolist(), "grid": [grid, grid],
                             "weights": maps["weights"][row, :len(words)].flatten(1).tolist(), "steps": words,
                             "text": f"{' '.join(maps['captions'][row])} (reference: {test.refs[i][0]})"})
        return {"kind": "regions", "examples": examples}
