"""The ListOps task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

import lightning as L

import attention
from tasks._base import Task, variant_kwargs
from tasks._text import AttentionUse, dense_variant_reasons, forms_weights, run_device, spread

from .data import build_data, collate
from .model import ListOpsModel
from .module import ListOpsModule

EXAMPLES = 3  # test expressions in a run's attention file


def encoder_use(config: dict, tokens: int) -> AttentionUse:
    """The encoder's self-attention over ``tokens`` positions ([CLS] included)."""
    model_cfg = config["model"]
    return AttentionUse("encoder self-attention", tokens, tokens, key_padding=True, causal=False,
                        dropout_p=float(model_cfg["attn_dropout"]),
                        head_dim=max(model_cfg["hidden"] // model_cfg["heads"], 1),
                        num_heads=model_cfg["heads"], additive=model_cfg.get("positions") == "alibi")


class ListOpsTask(Task):
    name = "listops"
    monitor = "val/acc"
    optional_keys = ("model.positions",)  # sinusoid (default) | rope | alibi: tasks._layers.POSITIONS
    diagnoses: dict[str, str] = {}  # measured on the quick preset's embedded expressions, seed 0

    def sequence_length(self, config: dict) -> int:
        """The longest sequence the encoder may see: ``data.max_length`` tokens and [CLS]."""
        return int(config["data"]["max_length"]) + 1

    def attention_calls(self, variant: str, config: dict) -> list[AttentionUse] | None:
        """Every block's self-attention, at most ``data.max_length`` tokens plus [CLS] (real files
        longer than that are refused, ``data.read_lra``)."""
        if variant not in attention.REGISTRY:
            return None
        return [encoder_use(config, int(config["data"]["max_length"]) + 1)]

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        """Reasons for the configured encoder (the ``quick`` preset when no config is given)."""
        config = config or self.config("quick")
        if variant in self.baselines:
            return []
        # The capability checks need only a few positions; data.max_length bounds the real ones.
        uses = [encoder_use(config, 3)] if variant in attention.REGISTRY else []
        return dense_variant_reasons(variant, uses, device=run_device(config["trainer"]),
                                     baselines=self.baselines, kwargs=variant_kwargs(config, variant))

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[L.LightningDataModule, L.LightningModule]:
        kwargs = self.check_variant(variant, config)
        cfg, optim = config["model"], config["optim"]
        datamodule = build_data(config["data"], data, seed)
        model = ListOpsModel(vocab=len(datamodule.vocab), hidden=cfg["hidden"], heads=cfg["heads"],
                             layers=cfg["layers"], ff_dim=cfg["ff_dim"], dropout=cfg["dropout"],
                             attn_dropout=cfg["attn_dropout"], variant=variant,
                             variant_kwargs=kwargs.get(variant), max_len=datamodule.max_len,
                             positions=cfg.get("positions", "sinusoid"))
        module = ListOpsModule(model=model, vocab=datamodule.vocab, variant=variant, lr=optim["lr"],
                               weight_decay=optim["weight_decay"])
        return datamodule, module

    def attention_examples(self, module: L.LightningModule, datamodule: L.LightningDataModule) -> dict | None:
        """The last block's [CLS] attention over a few test expressions, with value and prediction."""
        if not forms_weights(module.variant):
            return None
        test = datamodule.sets["test"]
        batch = collate([test[i] for i in spread(len(test), EXAMPLES)])
        maps = module.attention_weights(batch)
        return {"kind": "pooling", "examples": [
            {"tokens": tokens, "weights": maps["weights"][row, :len(tokens)].tolist(),
             "label": int(batch["label"][row]), "prediction": maps["prediction"][row]}
            for row, tokens in enumerate(maps["tokens"])]}
