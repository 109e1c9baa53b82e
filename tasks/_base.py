"""What every task provides to the runner (``bench/train.py``): configs, models, data, metrics.

A task is a ``Task`` subclass instance, registered by name in ``tasks.TASK_MODULES``. The
runner owns everything shared (seeding, the Lightning Trainer, best-validation checkpointing,
timing, memory, the result record); a task owns its data module, its Lightning module and which
attention variants apply to it. Every task's Lightning module is a ``TaskModule``: the base owns
the optimiser, the validation and test steps, the sample count the runner's meter reads, saved
hyperparameters and the eval-mode switch around attention maps; a task module adds its network,
its loss and its metrics (``training_step`` and ``evaluate``).

Each task package has the same layout: ``task.py`` (the ``Task``), ``module.py`` (its
``TaskModule``), ``model.py`` (the networks), ``data.py`` (the data module and the real-format
loader) and the embedded generator.

Config files are YAML mappings with four sections, mirrored by ``configs/tasks/<task>/*.yaml``:

    data:    options of the data module (sizes, lengths, batch size, ...)
    model:   options of the model (widths, layers, heads, ...)
    optim:   optimiser settings (lr, weight_decay, ...)
    trainer: max_epochs, patience (early stopping on the monitored metric), and any further
             ``lightning.Trainer`` keyword (accelerator, devices, strategy, precision, ...)
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
import yaml

import configs

SECTIONS = ("data", "model", "optim", "trainer")
SCHEDULES = ("constant", "cosine")
# optim keys the runner applies for every task (bench/protocol.py), not a task's own settings
RUNNER_OPTIM_KEYS = ("schedule", "variant_lr", "lr_provenance")


class Task(ABC):
    name: ClassVar[str]
    monitor: ClassVar[str]  # validation metric that picks the best checkpoint, e.g. "val/acc"
    monitor_mode: ClassVar[str] = "max"
    baselines: ClassVar[tuple[str, ...]] = ("none",)  # no-attention controls, selectable as variants
    # Why a variant does not learn this task's embedded data with the quick preset, as measured
    # (variant -> text with the numbers); runs on embedded data record it, and the report prints it
    # beside a variant that does not beat the baseline. A variant missing here that fails to beat
    # the baseline is reported as undiagnosed.
    diagnoses: ClassVar[dict[str, str]] = {}
    # The attention-free model an attention variant must beat to count as having learned (graph: the
    # MLP; its GCN baseline ``none`` aggregates neighbours too, and may legitimately win).
    learning_baseline: ClassVar[str] = "none"
    # Dotted config keys a run may set although the presets leave them out (their default lives in
    # the code), e.g. the Transformer-family tasks' ``model.positions``.
    optional_keys: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        """Why ``variant`` cannot be used by this task with ``config`` (default: the quick preset);
        an empty list: it can."""

    @abstractmethod
    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[L.LightningDataModule, L.LightningModule]:
        """The data module (embedded data when ``data`` is None, else the real files at ``data``)
        and the model using ``variant``. Bad data must raise before training starts."""

    def attention_examples(self, module: L.LightningModule, datamodule: L.LightningDataModule
                           ) -> dict | None:
        """A few test examples of the trained model's attention, for the report's pictures.

        JSON-serialisable: ``{"kind": ..., "examples": [...]}`` where kind is ``alignment``
        (``source``/``target`` tokens and ``weights`` [target][source]), ``pooling`` (``tokens``,
        ``weights`` [token], ``label``, ``prediction``) or ``regions`` (``image`` [C][H][W] in 0..1,
        ``grid`` [rows, cols], ``weights`` [step][rows * cols], ``text``, ``steps`` [labels]).
        None when the task or the variant has no attention to show.
        """
        return None

    def attention_calls(self, variant: str, config: dict) -> list | None:
        """Every call the model built with ``config`` makes of ``variant``, as ``tasks._text.AttentionUse``
        at its longest lengths; None (the default): not described, and nothing is claimed about it."""
        return None

    def sequence_length(self, config: dict) -> int | None:
        """The longest sequence the model attends over with ``config``, for tasks whose length is a
        benchmark axis (the long-context tasks); None (the default): not one of them."""
        return None

    def computes_reference(self, variant: str, config: dict) -> str | None:
        """Why ``variant`` computes exactly ``reference`` in this task's model with ``config`` (at every
        call each query sees every key with softmax weights, no dropout: ``covers_every_key``), or
        None when it may not. A suite records such a variant as ``equivalent`` instead of training a
        copy of reference under its name."""
        from tasks._text import covers_every_call

        calls = self.attention_calls(variant, config)
        return covers_every_call(variant, calls, variant_kwargs(config, variant)) if calls else None

    def applicable_variants(self, config: dict | None = None) -> dict[str, list[str]]:
        """Every registered attention variant and baseline, with the reasons it does not apply."""
        import attention

        names = (*self.baselines, *attention.VARIANTS)
        return {name: self.variant_reasons(name, config) for name in names}

    def check_variant(self, variant: str, config: dict) -> dict:
        """Raise (before any data or model is built) when ``variant`` cannot run with ``config``;
        return the config's ``model.variant_kwargs`` mapping (variant -> constructor arguments)."""
        import attention

        reasons = self.variant_reasons(variant, config)
        if reasons:
            raise ValueError(f"{self.name} cannot use variant {variant!r}: {'; '.join(reasons)}")
        kwargs = config["model"].get("variant_kwargs") or {}
        unknown = set(kwargs) - set(attention.VARIANTS)
        if unknown:
            raise ValueError(f"model.variant_kwargs names unknown variants {sorted(unknown)}")
        return kwargs

    def config(self, preset_or_path: str = "quick") -> dict:
        """A shipped preset (``quick``, ``full``) or a YAML file, checked for its sections."""
        path = Path(preset_or_path)
        if not path.suffix:
            path = configs.path("tasks", self.name, f"{preset_or_path}.yaml")
        if not path.is_file():
            presets = sorted(p.stem for p in configs.path("tasks", self.name).glob("*.yaml"))
            raise ValueError(f"config {preset_or_path!r} not found: give a YAML path or one of "
                             f"the {self.name} presets {presets}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict) or set(loaded) - set(SECTIONS):
            raise ValueError(f"{path}: expected a mapping with sections {list(SECTIONS)}, got "
                             f"{sorted(loaded) if isinstance(loaded, dict) else type(loaded).__name__}")
        return {section: dict(loaded.get(section) or {}) for section in SECTIONS}


class TaskModule(L.LightningModule, ABC):
    """The Lightning module every task builds on.

    A subclass sets ``size_key`` (the batch entry whose first dimension counts its samples),
    calls ``super().__init__(lr=..., weight_decay=...)`` first and implements ``training_step``
    and ``evaluate(batch, stage)`` (stage ``val`` or ``test``). Its constructor arguments are saved
    as hyperparameters (``hparams.yaml`` of the run's log), except the objects in ``NOT_SAVED``
    (networks and vocabularies, which the checkpoint or the data hold).
    """

    size_key: ClassVar[str]
    optimizer: ClassVar[type[torch.optim.Optimizer]] = torch.optim.AdamW
    NOT_SAVED: ClassVar[tuple[str, ...]] = ("model", "vocab", "src_vocab", "tgt_vocab")
    # How the per-item values given to ``add_test_items`` combine into the headline test metric
    # (``reports.paired``): "mean" (times ``item_scale``) or "bleu" (summed sufficient statistics).
    item_kind: ClassVar[str] = "mean"
    item_scale: ClassVar[float] = 1.0

    def __init__(self, *, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.lr, self.weight_decay = lr, weight_decay
        self.save_hyperparameters(ignore=list(self.NOT_SAVED))  # the subclass's arguments too
        self._items: list[object] = []
        self._item_keys: list[object] = []
        self._val_items: list[object] = []

    def samples_in(self, batch: dict) -> int:
        """How many samples ``batch`` holds (the runner's training throughput counts them)."""
        return int(batch[self.size_key].shape[0])

    @abstractmethod
    def evaluate(self, batch: dict, stage: str) -> None:
        """Log the ``stage`` (``val`` or ``test``) loss and metrics of ``batch``."""

    def add_test_items(self, values: list, keys: list) -> None:
        """During the test pass: each test item's contribution to the headline metric (see
        ``item_kind``) and a JSON-able key naming the item (its target), in test order."""
        if len(values) != len(keys):
            raise ValueError(f"add_test_items got {len(values)} values but {len(keys)} keys")
        self._items += values
        self._item_keys += keys

    def on_test_epoch_start(self) -> None:
        self._items, self._item_keys = [], []

    def add_val_items(self, values: list) -> None:
        """During a validation pass: each validation item's contribution to the monitored metric, in
        the form of ``add_test_items`` (the same items every validation, in the same order), so the
        runner can ask whether a later checkpoint beat an earlier one beyond the noise of the
        validation set (``bench.protocol.convergence``)."""
        self._val_items += values

    def on_validation_epoch_start(self) -> None:
        self._val_items = []

    def val_items(self) -> dict | None:
        """The last validation pass's items: ``{"kind", "scale", "values"}``; None if none were added."""
        if not self._val_items:
            return None
        return {"kind": self.item_kind, "scale": self.item_scale, "values": list(self._val_items)}

    def test_items(self) -> dict | None:
        """The last test pass's items: ``{"kind", "scale", "values", "keys"}``; None if none were added."""
        if not self._items:
            return None
        return {"kind": self.item_kind, "scale": self.item_scale, "values": list(self._items),
                "keys": list(self._item_keys)}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode without gradients (attention maps, examples), then the mode it was in."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    schedule: str = "constant"  # set by the runner from ``optim.schedule`` (``use_schedule``)

    def use_schedule(self, name: str) -> None:
        """``constant`` learning rate, or ``cosine``: from lr down to 0 over the run's steps (per step),
        so the last epochs refine rather than oscillate (Loshchilov & Hutter, SGDR, ICLR 2017)."""
        if name not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {list(SCHEDULES)}, got {name!r}")
        self.schedule = name

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.schedule == "constant":
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}


def variant_kwargs(config: dict, variant: str) -> dict:
    """The constructor arguments ``model.variant_kwargs`` gives ``variant`` ({} when none)."""
    kwargs = (config["model"].get("variant_kwargs") or {}).get(variant) or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"model.variant_kwargs.{variant} must map argument names to values, got {kwargs!r}")
    return dict(kwargs)


def apply_overrides(config: dict, overrides: dict[str, object], optional: tuple[str, ...] = ()) -> dict:
    """``{"model.hidden": 64}`` -> a copy of ``config`` with that key replaced.

    Only keys already present in the config can be overridden (so a typo is an error), except
    under ``trainer``, which takes any ``lightning.Trainer`` keyword, and the task's ``optional``
    dotted keys (``Task.optional_keys``: options with a default in code that presets leave out,
    so that adding one changes no preset's configuration).
    """
    result = copy.deepcopy(config)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            raise ValueError(f"override {dotted!r}: expected '<section>.<key>' with section in "
                             f"{list(SECTIONS)}")
        if section != "trainer" and key not in result[section] and dotted not in optional:
            raise ValueError(f"override {dotted!r}: unknown key {key!r}; {section} has "
                             f"{sorted(result[section])}")
        result[section][key] = value
    return result


def log_train_step(module: L.LightningModule, values: dict[str, object], **kwargs: object) -> None:
    """``module.log`` per-step training values on the steps the logger writes, and only those.

    Lightning writes on-step training values every ``trainer.log_every_n_steps`` steps and drops
    the rest, yet every ``self.log`` call pays its bookkeeping (about 0.8 ms on a 2-core CPU:
    Lightning re-moves the stored metric to the value's device each call), which is most of
    Lightning's cost on a small full-batch step. Skipping the dropped steps leaves the logs as
    they were; the progress bar shows the value of the last written step. Outside a fit (no
    trainer, or Lightning without this check), every call logs.
    """
    trainer = module._trainer
    connector = getattr(trainer, "_logger_connector", None)
    if connector is not None and not trainer.fast_dev_run and not connector.should_update_logs:
        return
    for name, value in values.items():
        module.log(name, value, **kwargs)
