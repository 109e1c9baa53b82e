"""The recall task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

import lightning as L

from tasks._base import Task, variant_kwargs
from tasks._text import AttentionUse, dense_variant_reasons, forms_weights, run_device, spread

from .data import build_data
from .model import build_model
from .module import RecallModule

EXAMPLES = 3  # test sequences in a run's attention file


def self_attention(model_cfg: dict, length: int) -> AttentionUse:
    """The decoder's causal self-attention over ``length`` tokens (every block makes the same call)."""
    heads = model_cfg["heads"]
    return AttentionUse("decoder causal self-attention", lq=length, lk=length, key_padding=False,
                        causal=True, dropout_p=float(model_cfg["attn_dropout"]),
                        head_dim=max(model_cfg["dim"] // heads, 1), num_heads=heads,
                        additive=model_cfg.get("positions") == "alibi")


class RecallTask(Task):
    name = "recall"
    monitor = "val/acc"
    optional_keys = ("model.positions",)  # sinusoid (default) | rope | alibi: tasks._layers.POSITIONS
    # Measured on the quick preset (8 pairs, 64 tokens), seed 0, lr 0.001, by probing the best
    # checkpoints on the 8,000 test answers; reference puts 0.96 of its last-block weight on the
    # queried pair's value and answers 1.00 at every distance; none (the LSTM) scores 0.31.
    diagnoses = {
        "local": "its window of 16 keys (model.variant_kwargs) keeps most pairs out of reach: the value "
                 "lies more than 16 positions before its query for 81% of the test answers and more than "
                 "32 (beyond both blocks' windows) for 47%, where it scores 0.065, chance (1/16); within "
                 "16 it scores 0.25 and puts 0.02 of its last-block weight on the value (reference 0.96): "
                 "too few answers within reach to learn the look-up in 1,000 steps; test accuracy 0.17",
        "sparse": "window_global with window 16 and one global token (position 0, the first key; its "
                  "value is not global) sees what local's window 16 sees: 0.065 (chance) on the 47% of "
                  "answers whose value lies more than 32 positions back, 0.24 within 16, 0.02 of its "
                  "last-block weight on the value (reference 0.96); test accuracy 0.17",
        "hard": "sample mode trains on one sampled key per head with a straight-through gradient: at the "
                "best checkpoint 10% of its last-block picks land on the queried pair's value (reference "
                "puts 0.96 of its weight there); validation accuracy flat at 0.17-0.20 from epoch 2, test "
                "0.20",
        "linear": "elu + 1 features sum every pair into one 32 x 32 state per head and the trained model "
                  "does not single out the queried pair: 0.24-0.26 at every distance from it, flat from "
                  "epoch 2; 3,000 steps (cosine from 0.001) stay at 0.23-0.26 and lr 0.003 reaches 0.29. "
                  "With fewer pairs it does recall: 0.84 with 4 pairs, 0.25 with 8, 0.19 with 16 "
                  "(reference 1.00 at each)",
        "performer": "its 64 positive random features approximate softmax too coarsely to single out one "
                     "pair of 8: validation accuracy flat at 0.29-0.30 from epoch 4 (test 0.30, none "
                     "0.31); 3,000 steps (cosine from 0.001) stay at 0.31-0.32 and lr 0.003 reaches 0.33. "
                     "With fewer pairs: 0.48 with 4 pairs, 0.22 with 16 (reference 1.00 at each)",
    }

    def sequence_length(self, config: dict) -> int:
        """``data.seq_len``: every sequence has exactly that many tokens."""
        return int(config["data"]["seq_len"])

    def attention_calls(self, variant: str, config: dict) -> list[AttentionUse] | None:
        """Each block's causal self-attention over all ``data.seq_len`` tokens (none for ``none``)."""
        if variant in self.baselines:
            return None
        return [self_attention(config["model"], int(config["data"]["seq_len"]))]

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        """Reasons for the causal decoder of ``config`` (the ``quick`` preset when none is given)."""
        config = config or self.config("quick")
        # A few tokens suffice for the capability checks; the variant is built at the real length.
        return dense_variant_reasons(variant, [self_attention(config["model"], 3)],
                                     device=run_device(config["trainer"]), baselines=self.baselines,
                                     kwargs=variant_kwargs(config, variant))

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[L.LightningDataModule, L.LightningModule]:
        kwargs = self.check_variant(variant, config)
        optim = config["optim"]
        datamodule = build_data(config["data"], data, seed)
        model = build_model(config["model"], variant, len(datamodule.vocab), datamodule.max_len,
                            kwargs.get(variant))
        module = RecallModule(model=model, vocab=datamodule.vocab, variant=variant, lr=optim["lr"],
                              weight_decay=optim["weight_decay"])
        return datamodule, module

    def attention_examples(self, module: L.LightningModule, datamodule: L.LightningDataModule
                           ) -> dict | None:
        """The last block's attention of each answer position (the queried key) over the sequence."""
        if not forms_weights(module.variant):
            return None
        test = datamodule.sets["test"]
        rows = spread(len(test), EXAMPLES)
        maps = module.attention_weights({"ids": test.ids[rows], "targets": test.targets[rows]})
        examples = []
        for row, (tokens, answers) in enumerate(zip(maps["tokens"], maps["answers"], strict=True)):
            predicted = maps["prediction"][row, answers].tolist()
            examples.append({"source": tokens, "target": [tokens[p] for p in answers],  # the queried keys
                             "weights": maps["weights"][row, answers].tolist(),  # [query][token]
                             "answers": [tokens[p + 1] for p in answers],
                             "prediction": [module.vocab.itos[i] for i in predicted]})
        return {"kind": "alignment", "examples": examples}
