r"""The one training loop: every method, every scenario, CPU or GPU, one process or DDP.

Each step minimises

.. math::

    \frac{1}{b} \sum_{i=1}^{b} L\big(G(F(x_i)), y_i\big) + \Omega(W) + L_{bss}(F)

with the terms of ``config.method`` parsed by :func:`~spectral_probe.regularizers.parse_method`
and built here, the only place that builds them; ``F`` (the head's input) is captured by a
forward pre-hook, which is also where TSVD replaces it during training steps. The task
(:mod:`~spectral_probe.training.tasks`) supplies the model, the data and the loss.

See ``docs/training.md`` for the run directory, resuming, DDP and the failure modes.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .._seed import seed_everything
from ..errors import ConfigError, TrainingDivergedError
from ..models import read_state_dict, save_checkpoint
from ..regularizers import FeatureCapture, RegularizerSet, StepContext, parse_method
from ..spectral import singular_values
from . import image as _image  # noqa: F401  (registers the image-classification task)
from .batches import BatchPlan, train_loader
from .config import FinetuneConfig
from .distributed import init_distributed
from .evaluate import autocast, evaluate
from .freeze import freeze_except
from .hooks import TrainingHook
from .meters import Meters, finite_weights
from .optim import amp_dtype, build_optimizer, use_channels_last
from .rundir import RunDir, RunResult, load_run
from .schedule import lr_factor
from .state import capture_rng, load_train_state, restore_rng, save_train_state
from .tasks import TaskSetup, get_task

__all__ = ["Trainer", "finetune"]

Resume = bool | Literal["auto"]
_FLUSH_SECONDS = 10.0
_SYNC_EVERY = 10


def finetune(
    config: FinetuneConfig,
    out_dir: str | Path,
    *,
    resume: Resume = "auto",
    hooks: Sequence[TrainingHook] = (),
) -> RunResult:
    """Fine-tune as ``config`` says and write the run directory ``out_dir``.

    Args:
        config: the run (resolved here with its preset).
        out_dir: the run directory itself (e.g. ``runs/`` + ``config.run_id``).
        resume: ``"auto"`` continues an interrupted run of the same config and returns a
            finished one as it is; ``True`` requires something to resume; ``False`` requires
            a new or empty directory.
        hooks: :class:`~spectral_probe.training.TrainingHook` objects called at each phase.

    Returns:
        The :class:`~spectral_probe.training.RunResult`; its ``status`` is ``"finished"``,
        or ``"interrupted"`` after SIGTERM or :meth:`Trainer.request_stop` (the training
        state is saved: call again to continue).

    Raises:
        ConfigError: a bad value, or an existing run directory with another config (the
            message names the differing keys).
        DataError: a data spec or sampling rate that cannot be satisfied (e.g. fewer than 2
            images in a class).
        TrainingDivergedError: the loss became NaN/Inf; ``final.json`` says so and the last
            good training state is kept.

    Example:
        >>> from spectral_probe.training import FinetuneConfig, finetune
        >>> cfg = FinetuneConfig(model="bundled:efficientnet_lite0", data="fashion-mnist",
        ...                      method="l2+bss", rate="1%", preset="demo")
        >>> result = finetune(cfg, "runs/" + cfg.run_id)  # doctest: +SKIP
        >>> result.test_accuracy  # doctest: +SKIP
        0.74
    """
    return Trainer(config, out_dir, resume=resume, hooks=hooks).run()


class _Batches:
    """A re-iterable of device batches over the first epoch (for regularizers' ``prepare``)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def __iter__(self) -> Iterator[tuple[Any, Tensor]]:
        t = self.trainer
        for batch in train_loader(
            t.setup.train, t.plan, 0, t.plan.per_epoch, collate=t.setup.collate
        ):
            yield t.task.to_device(batch, t.dist.device)


class Trainer:
    """One run: set-up, the step loop, the final evaluation. Use :func:`finetune`; hooks
    receive this object.

    Attributes (available to hooks): ``config`` (resolved), ``run_dir``, ``dist``, ``task``,
    ``setup``, ``plan``, ``model`` (bare), ``regularizer``, ``optimizer``, ``iteration``
    (steps done), ``total`` (steps planned), ``records`` (metrics so far).
    """

    def __init__(
        self,
        config: FinetuneConfig,
        out_dir: str | Path,
        *,
        resume: Resume = "auto",
        hooks: Sequence[TrainingHook] = (),
    ) -> None:
        self.config = config.resolve()
        self.run_dir = RunDir(out_dir)
        self.resume = resume
        self.hooks = list(hooks)
        if self.config.log:  # the trackers of --log; a missing optional package fails here
            from .loggers import build_loggers

            self.hooks += build_loggers(self.config.log)
        self.iteration = 0
        self.total = 0
        self.records: list[dict[str, Any]] = []
        self._stop_reason: str | None = None
        self._in_step = False

    # ---------------------------------------------------------------- control

    def request_stop(self, reason: str = "requested") -> None:
        """Stop after the current step: save the training state, return ``interrupted``."""
        self._stop_reason = reason

    # ---------------------------------------------------------------- entry

    def run(self) -> RunResult:
        mode = self.run_dir.open_mode(self.config, self.resume)
        if mode == "done":
            return load_run(self.run_dir.path)
        self.dist = init_distributed(self.config.device)
        capture: FeatureCapture | None = None
        old_handler = self._install_signal()  # a SIGTERM during set-up stops after step 1
        try:
            self._build()
            capture = FeatureCapture(self.model, self.setup.head, transform=self._transform)
            self._prepare_regularizer()
            state = self._start(mode)
            for hook in self.hooks:
                hook.on_start(self)
            result = self._loop(capture, state)
            for hook in self.hooks:
                hook.on_end(self, result)
            return result
        finally:
            if capture is not None:
                capture.remove()
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            self.dist.close()

    # ---------------------------------------------------------------- set-up

    def _build(self) -> None:
        cfg = self.config
        seed_everything(cfg.seed)
        self.task = get_task(cfg.task)
        self.setup: TaskSetup = self.task.setup(cfg)
        self.plan = BatchPlan(
            len(self.setup.train),
            int(cfg.batch_size),  # type: ignore[arg-type]
            cfg.seed,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        self.total = (
            int(cfg.iterations)  # type: ignore[arg-type]
            if cfg.epochs is None
            else max(1, math.ceil(cfg.epochs * self.plan.per_epoch))
        )
        self.regularizer: RegularizerSet = parse_method(cfg.method, **cfg.hp).build()
        self._check_spectrum_batch()
        device = self.dist.device
        self.amp = amp_dtype(cfg.amp, device)
        self.channels_last = use_channels_last(
            cfg.channels_last, device, self.setup.modality, self.setup.model
        )
        model = self.setup.model
        self.lora = None
        if cfg.lora:  # peft's LoRA layers injected in place; module names unchanged
            from .lora import wrap_lora

            self.lora = wrap_lora(model, cfg.lora, head=self.setup.head)
            model = self.lora.model
        model = model.to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.unfrozen_parameters:  # only these (and the head) train; the rest keep W0
            freeze_except(model, cfg.unfrozen_parameters, head=self.setup.head)
        self.model: nn.Module = model
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _check_spectrum_batch(self) -> None:
        for term, key in (("bss", "k"), ("tsvd", "r")):
            if term in self.regularizer.names:
                reg = self.regularizer[term]
                b = self.plan.batch_size if getattr(reg, "gather", False) else self.plan.local_batch
                if b <= getattr(reg, key):
                    raise ConfigError(
                        f"expected a per-process batch size > {term}.{key}, found {b} "
                        f"(batch size {self.plan.batch_size} over {self.dist.world} processes) and "
                        f"{term}.{key} = {getattr(reg, key)}"
                    )

    def _transform(self, features: Tensor) -> Tensor:
        return self.regularizer.transform_features(features) if self._in_step else features

    def _prepare_regularizer(self) -> None:
        loader: Iterable[Any] | None = None
        if self.regularizer.needs_loader:
            loader = self.task.prepare_loader(self.setup, lambda: _Batches(self))
        self.regularizer.prepare(
            self.model, head=self.setup.head, reference=self.setup.reference, loader=loader
        )
        self.regularizer.to(self.dist.device)
        groups = self.task.param_groups(
            self.model, self.regularizer.param_groups(self.model, head=self.setup.head)
        )
        self.optimizer = build_optimizer(self.config, groups)
        fp16 = self.amp == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16) if fp16 else None
        self.net: nn.Module = self.model
        if self.dist.active:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def _start(self, mode: str) -> dict[str, Any]:
        """Write ``config.json`` (fresh) or load the training state (resume)."""
        rd, cfg = self.run_dir, self.config
        state: dict[str, Any] = {
            "best": None,
            "elapsed": 0.0,
            "units": 0,
            "meters": None,
            "sessions": 1,
        }
        if mode == "fresh":
            if self.dist.is_main:
                rd.path.mkdir(parents=True, exist_ok=True)
                for name in (rd.METRICS, rd.FINAL, rd.STATE):
                    (rd / name).unlink(missing_ok=True)
                rd.write_meta(self._meta())
            self.dist.barrier()
            return state
        saved = load_train_state(rd / rd.STATE)
        if saved.get("config_hash") != cfg.config_hash:
            raise ConfigError(
                f"expected the training state in {rd.path} to belong to its config.json, found "
                "another run's; remove train_state.pt to start over"
            )
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.regularizer.load_state_dict(saved["regularizer"])
        rngs = saved["rng"]
        restore_rng(rngs[self.dist.rank % len(rngs)], self.dist.device)
        self.iteration = int(saved["iteration"])
        self.records = [
            r for r in rd.read_metrics() if int(r.get("iteration", 0)) <= self.iteration
        ]
        state.update(
            best=saved.get("best"),
            elapsed=float(saved.get("elapsed", 0.0)),
            units=int(saved.get("units", 0)),
            meters=saved.get("meters"),
            sessions=int(saved.get("sessions", 1)) + 1,
        )
        return state

    def _meta(self) -> dict[str, Any]:
        import platform

        from .. import __version__

        return {
            "run_id": self.run_dir.path.name,
            "config_hash": self.config.config_hash,
            "config": self.config.to_dict(),
            "task": self.task.name,
            "data": {**self.setup.info, "classes": self.setup.classes},
            "iterations": self.total,
            "trainable_parameters": sum(
                p.numel() for p in self.model.parameters() if p.requires_grad
            ),
            "batches_per_epoch": self.plan.per_epoch,
            "world_size": self.dist.world,
            "device": str(self.dist.device),
            "amp": str(self.amp).replace("torch.", "") if self.amp else "off",
            "versions": {
                "spectral_probe": __version__,
                "torch": str(torch.__version__),
                "python": platform.python_version(),
            },
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _install_signal(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            self.request_stop("SIGTERM")

        return signal.signal(signal.SIGTERM, handler)

    # ---------------------------------------------------------------- loop

    def _loop(self, capture: FeatureCapture, state: dict[str, Any]) -> RunResult:
        """The steps from ``self.iteration`` to ``self.total``: per step the lr from the
        schedule, the batch, forward under autocast (features captured at the head), task loss
        plus the regularizer's terms, backward, step; per log interval a ``metrics.jsonl``
        record; per ``eval_every`` the validation accuracy (and the best weights when
        selecting); per ``checkpoint_every`` and on a stop request the training state; at the
        end :meth:`_finish`."""
        cfg, dist, task, setup = self.config, self.dist, self.task, self.setup
        device, rd = dist.device, self.run_dir
        terms = [t.name for t in self.regularizer if t.has_penalty]
        meters = Meters(terms, device, state.get("meters"))
        check_each_step = device.type == "cpu"  # free on CPU; on GPU at log and checkpoint times
        local_bad = False
        last_good: int | None = self.iteration if self.iteration > 0 else None
        start = self.iteration
        data = iter(
            train_loader(
                setup.train,
                self.plan,
                start,
                self.total,
                num_workers=cfg.num_workers,
                pin_memory=device.type == "cuda",
                collate=setup.collate,
            )
        )
        self.net.train()
        last_factor: float | None = None
        features: torch.Tensor | None = None
        last_flush = self.now()
        seg = self.now()

        def pause() -> None:
            nonlocal seg
            dt = self.now() - seg
            state["elapsed"] += dt
            meters.seconds += dt

        def stop_if_diverged(bad: bool) -> None:
            if dist.max_flag(bad):
                raise self.diverged(self.iteration, last_good)

        for t in range(start, self.total):
            factor = self.lr_factor(t)
            if factor != last_factor:
                for group in self.optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
                last_factor = factor
            x, y = task.to_device(next(data), device, channels_last=self.channels_last)
            self._in_step = True
            try:
                with autocast(device, self.amp):
                    logits = task.forward(self.net, x)
                    features = capture.features
                    task_loss = task.loss(logits, y)
                    reg_total, parts = self.regularizer(self.step_context(x, y, logits, features))
                    loss = task_loss + reg_total
            finally:
                self._in_step = False
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            meters.add(loss, task_loss, parts, logits, y)
            meters.units += task.count(x)
            self.iteration = t + 1
            it = self.iteration
            for hook in self.hooks:
                hook.on_step(self)
            if check_each_step and not math.isfinite(float(loss.detach())):
                local_bad = True
            # one process: every step; DDP: the ranks agree every _SYNC_EVERY steps (no per-step sync)
            stop = False
            if (
                not dist.active
                or it % _SYNC_EVERY == 0
                or it == self.total
                or it % cfg.checkpoint_every == 0
            ):
                stop, bad = dist.max_flags(self._stop_reason is not None, local_bad)
                if bad:
                    raise self.diverged(it, last_good)

            if it % cfg.log_every == 0 or it == self.total:
                pause()
                record = self._log_record(meters, factor, features, state)
                stop_if_diverged(not math.isfinite(record["loss"]))
                for hook in self.hooks:
                    hook.on_log(self, record)
                self.records.append(record)
                meters.reset()
                if dist.is_main and self.now() - last_flush > _FLUSH_SECONDS:
                    rd.write_metrics(self.records)
                    last_flush = self.now()
                seg = self.now()

            if (
                cfg.eval_every
                and it % cfg.eval_every == 0
                and setup.val is not None
                and it < self.total
            ):
                pause()
                self._validate(state)
                seg = self.now()

            if (it % cfg.checkpoint_every == 0 and it < self.total) or stop:
                pause()
                stop_if_diverged(
                    not math.isfinite(float(meters.sums[0])) or not finite_weights(self.model)
                )
                state["meters"] = meters.state()
                self.save_state(state)
                last_good = it
                seg = self.now()
            if stop:
                if dist.is_main:
                    rd.write_metrics(self.records)
                dist.barrier()
                return load_run(rd.path)

        stop_if_diverged(not finite_weights(self.model))
        return self._finish(state)

    def _log_record(
        self,
        meters: Meters,
        factor: float,
        features: torch.Tensor | None,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        totals = torch.cat([meters.sums, meters.sums.new_tensor([meters.count])])
        sums = self.dist.sum(totals).tolist()
        count = max(sums[-1], 1.0)
        steps = max(meters.steps, 1)
        head_lr = max(g["initial_lr"] for g in self.optimizer.param_groups) * factor
        record: dict[str, Any] = {
            "iteration": self.iteration,
            "epoch": round(self.iteration / self.plan.per_epoch, 4),
            "lr": head_lr,
            "loss": sums[0] / steps,
            "loss_task": sums[1] / steps,
        }
        for i, name in enumerate(meters.terms):
            record[f"loss_{name}"] = sums[2 + i] / steps
        for term in self.regularizer:
            if not term.has_penalty and hasattr(term, "value"):
                record[f"loss_{term.name}"] = float(term.value(self.model))
        record["train_acc"] = sums[-2] / count
        unit = self.task.unit
        record[f"{unit}_per_s"] = (
            meters.units * self.dist.world / meters.seconds if meters.seconds else None
        )
        record["seconds"] = round(state["elapsed"], 3)
        state["units"] = state.get("units", 0) + meters.units * self.dist.world
        if self.config.spectrum and features is not None:
            f = features.detach().flatten(1).to(torch.float64)
            sv = singular_values(f, method="svd").tolist()
            record["sv_min"] = sv[-1]
            record["sv"] = sv
        return record

    def _validate(self, state: dict[str, Any]) -> None:
        result = self.evaluate("val", self.setup.val, cap=self.config.eval_max)
        entry = {"val_acc": result["accuracy"], "val_loss": result["loss"]}
        if self.records and self.records[-1]["iteration"] == self.iteration:
            self.records[-1].update(entry)
        else:
            self.records.append({"iteration": self.iteration, **entry})
        best = state.get("best")
        if self.config.select == "best" and (best is None or result["accuracy"] > best["accuracy"]):
            self.save_model(RunDir.BEST)
            state["best"] = {"accuracy": result["accuracy"], "iteration": self.iteration}

    def _finish(self, state: dict[str, Any]) -> RunResult:
        cfg, setup, rd = self.config, self.setup, self.run_dir
        best = state.get("best")
        if cfg.select == "best" and setup.val is not None:
            result = self.evaluate(
                "val", setup.val, cap=cfg.eval_max
            )  # the last iteration competes too
            if best is None or result["accuracy"] > best["accuracy"]:
                best = {"accuracy": result["accuracy"], "iteration": self.iteration}
            else:
                self.load_weights(RunDir.BEST)
        t0 = self.now()
        val = self.evaluate("val", setup.val, cap=cfg.eval_max) if setup.val is not None else None
        evals = {
            name: self.evaluate(name, ds, cap=cfg.eval_max) for name, ds in setup.evals.items()
        }
        eval_seconds = self.now() - t0
        self.save_model(RunDir.MODEL)
        unit = self.task.unit
        final = {
            "status": "finished",
            "iterations": self.total,
            "selected": cfg.select,
            "best_iteration": best["iteration"] if cfg.select == "best" and best else None,
            "val": val,
            "evals": evals,
            "test_accuracy": evals.get("test", {}).get("accuracy"),
            "timings": {
                "train_seconds": round(state["elapsed"], 3),
                "eval_seconds": round(eval_seconds, 3),
                f"{unit}_per_s": state.get("units", 0) / state["elapsed"]
                if state["elapsed"]
                else None,
            },
            "sessions": state.get("sessions", 1),
            "world_size": self.dist.world,
            "device": str(self.dist.device),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if self.dist.is_main:
            rd.write_metrics(self.records)
            rd.write_final(final)
            if not cfg.keep_train_state:
                (rd / RunDir.STATE).unlink(missing_ok=True)
            for name in ("best.safetensors", "best.json"):
                (rd / name).unlink(missing_ok=True)
        self.dist.barrier()
        return load_run(rd.path)

    # ---------------------------------------------------------------- helpers (hooks may call them)

    def save_state(self, state: dict[str, Any]) -> None:
        """Save the training state (every rank's RNG; rank 0 writes)."""
        rngs = self.dist.gather_objects(capture_rng(self.dist.device))
        if self.dist.is_main:
            save_train_state(
                self.run_dir / RunDir.STATE,
                {
                    "iteration": self.iteration,
                    "config_hash": self.config.config_hash,
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                    "regularizer": self.regularizer.state_dict(),
                    "rng": rngs,
                    "best": state.get("best"),
                    "elapsed": state["elapsed"],
                    "units": state.get("units", 0),
                    "meters": state.get("meters"),
                    "sessions": state.get("sessions", 1),
                },
            )
            self.run_dir.write_metrics(self.records)
        self.dist.barrier()
        for hook in self.hooks:
            hook.on_checkpoint(self)

    def save_model(self, name: str) -> Path:
        """Write the current weights as a toolkit checkpoint ``NAME.safetensors`` (rank 0).

        A LoRA run's final ``model.safetensors`` holds the merged weights, and its adapter
        goes to ``adapter/`` (:mod:`~spectral_probe.training.lora`).
        """
        path = self.run_dir / name
        if self.dist.is_main:
            s = self.setup
            model = self.model
            if self.lora is not None and name == RunDir.MODEL:  # the adapter, and merged weights
                from .lora import merged_model, save_lora

                save_lora(self.lora, self.run_dir / "adapter")
                model = merged_model(self.lora)
            save_checkpoint(
                path,
                model,
                base=s.base,
                head=s.head,
                num_classes=len(s.classes),
                classes=s.classes,
                modality=s.modality,
                preprocessing=s.preprocessing,
                config=self.config.to_dict(),
            )
        return path

    def load_weights(self, name: str) -> None:
        """Load ``NAME.safetensors`` from the run directory into the model (every rank)."""
        self.dist.barrier()
        state = read_state_dict(self.run_dir / name)
        self.model.load_state_dict(state)

    def evaluate(self, split: str, dataset: Any, *, cap: int | None) -> dict[str, Any]:
        """Evaluate the bare model on ``dataset``; hooks see the result."""
        cfg = self.config
        result = evaluate(
            self.task,
            self.model,
            dataset,
            dist=self.dist,
            batch_size=int(cfg.eval_batch_size),  # type: ignore[arg-type]
            cap=cap,
            amp=self.amp,
            channels_last=self.channels_last,
            num_workers=cfg.num_workers,
            collate=self.setup.collate,
        )
        for hook in self.hooks:
            hook.on_eval(self, split, result)
        return result

    def lr_factor(self, iteration: int) -> float:
        """The schedule's multiplier at ``iteration`` (0-based)."""
        c = self.config
        warmup = round(c.warmup * self.total) if isinstance(c.warmup, float) else int(c.warmup)  # type: ignore[arg-type]
        return lr_factor(
            str(c.schedule),
            iteration,
            self.total,
            step=int(c.lr_step),  # type: ignore[arg-type]  # resolved: set
            gamma=float(c.lr_gamma),  # type: ignore[arg-type]
            warmup=warmup,
        )

    def step_context(
        self, inputs: Any, targets: Tensor, logits: Tensor, features: Tensor | None
    ) -> StepContext:
        """What the regularizers see this step."""
        return StepContext(self.model, self.setup.head, inputs, targets, logits, features)

    def diverged(self, iteration: int, last_good: int | None) -> TrainingDivergedError:
        """Write ``final.json`` for a divergence and build the error to raise."""
        where = (
            f"kept the last good checkpoint (iteration {last_good}) in {self.run_dir / RunDir.STATE}"
            if last_good is not None
            else "no checkpoint had been saved yet"
        )
        if self.dist.is_main:
            self.run_dir.write_metrics(self.records)
            self.run_dir.write_final(
                {
                    "status": "diverged",
                    "iteration": iteration,
                    "last_checkpoint": last_good,
                    "message": f"loss became NaN or infinite at iteration {iteration}",
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        return TrainingDivergedError(
            f"loss became NaN or infinite at iteration {iteration}; stopped and {where} "
            f"(lower --lr or check the data)"
        )

    @staticmethod
    def now() -> float:
        """Monotonic seconds."""
        return time.perf_counter()
