"""The VQA task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

import lightning as L

from tasks._base import Task, variant_kwargs
from tasks._text import AttentionUse, dense_variant_reasons, forms_weights, run_device

from .data import build_data
from .model import VQAModel
from .module import VQAModule

EXAMPLE_TYPES = ("shape", "nearest", "farthest", "count")  # one test question of each, when present


class VQATask(Task):
    name = "vqa"
    monitor = "val/acc"
    diagnoses = {  # measured on the quick preset's Sort-of-CLEVR, seed 0
        "performer": "FAVOR+'s random features estimate exp(q.k scale) too noisily at these key norms "
                     "(|k| sqrt(scale) about 3 to 3.8): fed a zero query, where softmax is uniform, its "
                     "features put 0.78 of the weight on one region; its second hop picks the same region "
                     "for every question of an image on 100% of images (exact softmax on the same q, k: "
                     "53%), and its first hop lands on the named object 18% of the time (reference 83%)",
        "linformer": "its weights over the 16 regions are a^T F, mixtures of F's rows, which are learned "
                     "but the same for every image, so it cannot single out the cell a question names; "
                     "rank 16 (no compression) did no better in 12 epochs (62.0%)",
    }

    def attention_calls(self, variant: str, config: dict) -> list[AttentionUse]:
        """One query per hop over the grid x grid regions (every hop builds the variant alike)."""
        grid = config["model"]["encoder"]["grid"]
        return [AttentionUse("question-guided attention over the regions", lq=1, lk=grid * grid,
                             key_padding=False, causal=False, head_dim=config["model"]["dim"])]

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        """Reasons from the variant's capabilities for the configured model (``quick`` by default).

        Training only needs the attended vectors; ``attention_maps`` additionally asks for the
        weights and raises for a variant that cannot form them.
        """
        config = config or self.config("quick")
        return dense_variant_reasons(variant, self.attention_calls(variant, config),
                                     device=run_device(config["trainer"]), baselines=self.baselines,
                                     kwargs=variant_kwargs(config, variant))

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[L.LightningDataModule, L.LightningModule]:
        kwargs = self.check_variant(variant, config)
        cfg, optim = config["model"], config["optim"]
        datamodule = build_data(config["data"], data, seed)
        model = VQAModel(vocab=len(datamodule.vocab), num_answers=len(datamodule.answer_list),
                         variant=variant, variant_kwargs=kwargs.get(variant), hops=cfg["hops"],
                         dim=cfg["dim"], emb_dim=cfg["emb_dim"], hidden=cfg["hidden"],
                         question_encoder=cfg["question_encoder"], dropout=cfg["dropout"],
                         encoder=cfg["encoder"])
        module = VQAModule(model=model, answer_list=datamodule.answer_list, lr=optim["lr"],
                           weight_decay=optim["weight_decay"])
        return datamodule, module

    def attention_examples(self, module: L.LightningModule, datamodule: L.LightningDataModule
                           ) -> dict | None:
        """Each hop's weights over the image grid for a few test questions (one per type)."""
        if not forms_weights(module.model.variant):
            return None
        test = datamodule.sets["test"]
        kinds = [test.qa.types[k] for k in test.keep]
        chosen = [kinds.index(t) for t in EXAMPLE_TYPES if t in kinds] or list(range(min(3, len(test))))
        batch = test.collate(chosen)
        maps = module.attention_maps(batch)
        grid = maps["weights"].shape[-1]
        examples = []
        for row, i in enumerate(chosen):
            q = test.keep[i]
            image = test.qa.images[test.qa.image_index[q]].float() / 255.0
            text = f"{test.qa.questions[q]} -> {maps['answers'][row]} (truth: {test.qa.answers[q][0]})"
            examples.append({"image": image.tolist(), "grid": [grid, grid], "text": text,
                             "weights": maps["weights"][row].flatten(1).tolist(),
                             "steps": [f"hop {h + 1}" for h in range(maps["weights"].shape[1])]})
        return {"kind": "regions", "examples": examples}
