"""The step loop of :class:`~spectral_probe.training.engine.Trainer` (split out for size).

Per step: learning rate from the schedule, the batch of this iteration, forward under
autocast (features captured at the head), task loss + regularizer terms, backward, step.
Per log interval: one ``metrics.jsonl`` record (losses per term, lr, train accuracy,
throughput, the feature matrix's singular values). Per ``eval_every``: validation accuracy
(and the best weights when selecting). Per ``checkpoint_every`` and on a stop request: the
training state. At the end: validation and test evaluation, ``model.safetensors``,
``final.json``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import torch

from ..regularizers import FeatureCapture
from ..spectral import singular_values
from .batches import train_loader
from .evaluate import autocast
from .rundir import RunDir, RunResult, load_run

if TYPE_CHECKING:
    from .engine import Trainer

__all__ = ["run_loop"]

_FLUSH_SECONDS = 10.0
_SYNC_EVERY = 10


class _Meters:
    """Running sums over one log interval, kept on the device (no per-step host sync).

    ``sums`` holds the total loss, the task loss, each penalty and the correct count; the
    sample count and the work units (images/tokens) are host integers.
    """

    def __init__(
        self, terms: list[str], device: torch.device, saved: dict[str, Any] | None
    ) -> None:
        self.terms = terms
        self.device = device
        self.sums = torch.zeros(3 + len(terms), dtype=torch.float64, device=device)
        self.steps = 0
        self.count = 0
        self.units = 0
        self.seconds = 0.0
        if saved and len(saved.get("sums", [])) == self.sums.numel():
            self.sums += torch.tensor(saved["sums"], dtype=torch.float64, device=device)
            self.steps, self.count = int(saved["steps"]), int(saved["count"])
            self.units, self.seconds = int(saved["units"]), float(saved["seconds"])

    def add(
        self,
        loss: torch.Tensor,
        task: torch.Tensor,
        parts: dict[str, torch.Tensor],
        logits: torch.Tensor,
        targets: torch.Tensor,
    ) -> None:
        correct = (logits.detach().argmax(-1) == targets).sum()
        values = [loss.detach(), task.detach(), *(parts[t] for t in self.terms), correct]
        self.sums += torch.stack([v.to(torch.float64).reshape(()) for v in values])
        self.count += int(targets.shape[0])
        self.steps += 1

    def reset(self) -> None:
        self.sums.zero_()
        self.steps, self.count, self.units, self.seconds = 0, 0, 0, 0.0

    def state(self) -> dict[str, Any]:
        return {
            "sums": self.sums.tolist(),
            "steps": self.steps,
            "count": self.count,
            "units": self.units,
            "seconds": self.seconds,
        }


def _finite_weights(model: torch.nn.Module) -> bool:
    params = [p.detach() for p in model.parameters() if p.is_floating_point()]
    return (
        bool(torch.stack([p.float().norm() for p in params]).isfinite().all()) if params else True
    )


def run_loop(tr: Trainer, capture: FeatureCapture, state: dict[str, Any]) -> RunResult:
    cfg, dist, task, setup = tr.config, tr.dist, tr.task, tr.setup
    device, rd = dist.device, tr.run_dir
    terms = [t.name for t in tr.regularizer if t.has_penalty]
    meters = _Meters(terms, device, state.get("meters"))
    check_each_step = device.type == "cpu"  # free on CPU; on GPU at log and checkpoint times
    local_bad = False
    last_good: int | None = tr.iteration if tr.iteration > 0 else None
    start = tr.iteration
    data = iter(
        train_loader(
            setup.train,
            tr.plan,
            start,
            tr.total,
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
            collate=setup.collate,
        )
    )
    tr.net.train()
    last_factor: float | None = None
    features: torch.Tensor | None = None
    last_flush = tr.now()
    seg = tr.now()

    def pause() -> None:
        nonlocal seg
        dt = tr.now() - seg
        state["elapsed"] += dt
        meters.seconds += dt

    def stop_if_diverged(bad: bool) -> None:
        if dist.max_flag(bad):
            raise tr.diverged(tr.iteration, last_good)

    for t in range(start, tr.total):
        factor = tr.lr_factor(t)
        if factor != last_factor:
            for group in tr.optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
            last_factor = factor
        x, y = task.to_device(next(data), device, channels_last=tr.channels_last)
        tr._in_step = True
        try:
            with autocast(device, tr.amp):
                logits = task.forward(tr.net, x)
                features = capture.features
                task_loss = task.loss(logits, y)
                reg_total, parts = tr.regularizer(tr.step_context(x, y, logits, features))
                loss = task_loss + reg_total
        finally:
            tr._in_step = False
        tr.optimizer.zero_grad(set_to_none=True)
        if tr.scaler is not None:
            tr.scaler.scale(loss).backward()
            tr.scaler.step(tr.optimizer)
            tr.scaler.update()
        else:
            loss.backward()
            tr.optimizer.step()
        meters.add(loss, task_loss, parts, logits, y)
        meters.units += task.count(x)
        tr.iteration = t + 1
        it = tr.iteration
        for hook in tr.hooks:
            hook.on_step(tr)
        if check_each_step and not math.isfinite(float(loss.detach())):
            local_bad = True
        # one process: every step; DDP: the ranks agree every _SYNC_EVERY steps (no per-step sync)
        stop = False
        if (
            not dist.active
            or it % _SYNC_EVERY == 0
            or it == tr.total
            or it % cfg.checkpoint_every == 0
        ):
            stop, bad = dist.max_flags(tr._stop_reason is not None, local_bad)
            if bad:
                raise tr.diverged(it, last_good)

        if it % cfg.log_every == 0 or it == tr.total:
            pause()
            record = _log_record(tr, meters, factor, features, state)
            stop_if_diverged(not math.isfinite(record["loss"]))
            for hook in tr.hooks:
                hook.on_log(tr, record)
            tr.records.append(record)
            meters.reset()
            if dist.is_main and tr.now() - last_flush > _FLUSH_SECONDS:
                rd.write_metrics(tr.records)
                last_flush = tr.now()
            seg = tr.now()

        if cfg.eval_every and it % cfg.eval_every == 0 and setup.val is not None and it < tr.total:
            pause()
            _validate(tr, state)
            seg = tr.now()

        if (it % cfg.checkpoint_every == 0 and it < tr.total) or stop:
            pause()
            stop_if_diverged(
                not math.isfinite(float(meters.sums[0])) or not _finite_weights(tr.model)
            )
            state["meters"] = meters.state()
            tr.save_state(state)
            last_good = it
            seg = tr.now()
        if stop:
            if dist.is_main:
                rd.write_metrics(tr.records)
            dist.barrier()
            return load_run(rd.path)

    stop_if_diverged(not _finite_weights(tr.model))
    return _finish(tr, state)


def _log_record(
    tr: Trainer,
    meters: _Meters,
    factor: float,
    features: torch.Tensor | None,
    state: dict[str, Any],
) -> dict[str, Any]:
    totals = torch.cat([meters.sums, meters.sums.new_tensor([meters.count])])
    sums = tr.dist.sum(totals).tolist()
    count = max(sums[-1], 1.0)
    steps = max(meters.steps, 1)
    head_lr = max(g["initial_lr"] for g in tr.optimizer.param_groups) * factor
    record: dict[str, Any] = {
        "iteration": tr.iteration,
        "epoch": round(tr.iteration / tr.plan.per_epoch, 4),
        "lr": head_lr,
        "loss": sums[0] / steps,
        "loss_task": sums[1] / steps,
    }
    for i, name in enumerate(meters.terms):
        record[f"loss_{name}"] = sums[2 + i] / steps
    for term in tr.regularizer:
        if not term.has_penalty and hasattr(term, "value"):
            record[f"loss_{term.name}"] = float(term.value(tr.model))
    record["train_acc"] = sums[-2] / count
    unit = tr.task.unit
    record[f"{unit}_per_s"] = (
        meters.units * tr.dist.world / meters.seconds if meters.seconds else None
    )
    record["seconds"] = round(state["elapsed"], 3)
    state["units"] = state.get("units", 0) + meters.units * tr.dist.world
    if tr.config.spectrum and features is not None:
        f = features.detach().flatten(1).to(torch.float64)
        sv = singular_values(f, method="svd").tolist()
        record["sv_min"] = sv[-1]
        record["sv"] = sv
    return record


def _validate(tr: Trainer, state: dict[str, Any]) -> None:
    result = tr.evaluate("val", tr.setup.val, cap=tr.config.eval_max)
    entry = {"val_acc": result["accuracy"], "val_loss": result["loss"]}
    if tr.records and tr.records[-1]["iteration"] == tr.iteration:
        tr.records[-1].update(entry)
    else:
        tr.records.append({"iteration": tr.iteration, **entry})
    best = state.get("best")
    if tr.config.select == "best" and (best is None or result["accuracy"] > best["accuracy"]):
        tr.save_model(RunDir.BEST)
        state["best"] = {"accuracy": result["accuracy"], "iteration": tr.iteration}


def _finish(tr: Trainer, state: dict[str, Any]) -> RunResult:
    cfg, setup, rd = tr.config, tr.setup, tr.run_dir
    best = state.get("best")
    if cfg.select == "best" and setup.val is not None:
        result = tr.evaluate("val", setup.val, cap=cfg.eval_max)  # the last iteration competes too
        if best is None or result["accuracy"] > best["accuracy"]:
            best = {"accuracy": result["accuracy"], "iteration": tr.iteration}
        else:
            tr.load_weights(RunDir.BEST)
    t0 = tr.now()
    val = tr.evaluate("val", setup.val, cap=cfg.eval_max) if setup.val is not None else None
    evals = {name: tr.evaluate(name, ds, cap=cfg.eval_max) for name, ds in setup.evals.items()}
    eval_seconds = tr.now() - t0
    tr.save_model(RunDir.MODEL)
    unit = tr.task.unit
    final = {
        "status": "finished",
        "iterations": tr.total,
        "selected": cfg.select,
        "best_iteration": best["iteration"] if cfg.select == "best" and best else None,
        "val": val,
        "evals": evals,
        "test_accuracy": evals.get("test", {}).get("accuracy"),
        "timings": {
            "train_seconds": round(state["elapsed"], 3),
            "eval_seconds": round(eval_seconds, 3),
            f"{unit}_per_s": state.get("units", 0) / state["elapsed"] if state["elapsed"] else None,
        },
        "sessions": state.get("sessions", 1),
        "world_size": tr.dist.world,
        "device": str(tr.dist.device),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if tr.dist.is_main:
        rd.write_metrics(tr.records)
        rd.write_final(final)
        if not cfg.keep_train_state:
            (rd / RunDir.STATE).unlink(missing_ok=True)
        for name in ("best.safetensors", "best.json"):
            (rd / name).unlink(missing_ok=True)
    tr.dist.barrier()
    return load_run(rd.path)
