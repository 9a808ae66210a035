"""``spectral-probe finetune``, ``sweep``, ``sweep-table`` and ``plot-runs``."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    console,
    fail,
    handles_errors,
    long_lived,
    print_frame,
    print_json,
    progress_bar,
    stdout,
)

app = typer.Typer()

_SIGTERM_EXIT = 143


class Scenario(str, Enum):
    image = "image"
    glue = "glue"
    permuted = "permuted"


class Executor(str, Enum):
    local = "local"
    slurm = "slurm"
    inline = "inline"


def _progress_hook(update: Any) -> Any:
    from spectral_probe.training import TrainingHook

    class Progress(TrainingHook):
        def __init__(self) -> None:
            self.text = ""

        def on_start(self, trainer: Any) -> None:
            update(trainer.iteration, trainer.total, "")

        def on_step(self, trainer: Any) -> None:
            update(trainer.iteration, trainer.total, self.text)

        def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
            speed = record.get(f"{trainer.task.unit}_per_s")
            parts = [f"loss {record['loss']:.4f}", f"acc {record['train_acc']:.1%}"]
            if "loss_bss" in record:
                parts.append(f"bss {record['loss_bss']:.2e}")
            if speed:
                parts.append(f"{speed:,.0f} {trainer.task.unit}/s")
            self.text = "  ".join(parts)

    return Progress()


@app.command("finetune")
@handles_errors
def finetune_cmd(
    model: Annotated[
        str | None,
        typer.Option(
            help="Pre-trained model spec [default: the scenario's: torchvision:resnet50:IMAGENET1K_V1, bundled:minilm-l6 (glue), mlp:784-400-400-10 (permuted)].",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Data spec NAME[:ROOT] (class subsets: NAME[CLASS,...], e.g. digits[0,1,2]), e.g. cub200:/data/CUB_200_2011, fashion-mnist.",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help="Regularizers joined by '+': l2, l2-sp, delta, bss, tsvd, ewc (e.g. l2-sp+bss) [default: l2; glue: none; permuted: ewc].",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            help="Per-class sampling rate: 0.15, 15%, or a count per class [default: 100%].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of initialisation, sampling, data order and augmentation [default: 0].",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="paper, released, demo, glue or permuted (see docs/training.md, docs/scenarios.md) [default: the scenario's].",
            show_default=False,
        ),
    ] = None,
    scenario: Annotated[
        Scenario | None,
        typer.Option(
            help="image (the paper's Table 2), glue (text classification, Table 4) or permuted (task A then task B with EWC, Table 3) [default: glue for glue-* data, else image].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder of run directories; this run goes to OUT/<run id>."
        ),
    ] = Path("runs"),
    run_dir: Annotated[
        Path | None, typer.Option(help="Write the run exactly here instead of OUT/<run id>.")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the run in this directory (options given must match its config)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Read the config from a TOML/JSON file (options given override it)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda or cuda:N [default: auto].", show_default=False),
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="Optimisation steps [preset].", show_default=False)
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(
            help="Train for this many epochs instead of --iterations.", show_default=False
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Global batch size, split over DDP processes [preset].", show_default=False
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate of the new head; the backbone gets lr / head-lr-ratio [preset].",
            show_default=False,
        ),
    ] = None,
    head_lr_ratio: Annotated[
        float | None, typer.Option(help="Head lr / backbone lr [preset: 10].", show_default=False)
    ] = None,
    momentum: Annotated[
        float | None, typer.Option(help="SGD momentum [preset].", show_default=False)
    ] = None,
    lr_step: Annotated[
        int | None,
        typer.Option(
            help="Multiply the lr by lr-gamma every this many iterations [preset].",
            show_default=False,
        ),
    ] = None,
    hp: Annotated[
        list[str] | None,
        typer.Option(
            "--hp",
            help="Regularizer hyperparameter NAME=VALUE, repeatable: --hp bss.eta=0.001 --hp bss.k=2.",
            show_default=False,
        ),
    ] = None,
    task_option: Annotated[
        list[str] | None,
        typer.Option(
            "--task-option",
            help="Task option KEY=VALUE, repeatable: glue: max_length, pool (cls, mean, pooler, auto), dropout; permuted: permutation_seed (e.g. --task-option pool=mean).",
            show_default=False,
        ),
    ] = None,
    val: Annotated[
        str | None,
        typer.Option(
            help="Validation share carved from the training split (0.1, 10%, or a count per class) [default: 0].",
            show_default=False,
        ),
    ] = None,
    select: Annotated[
        str | None,
        typer.Option(
            help="last (final weights) or best (best validation accuracy; needs --val and --eval-every).",
            show_default=False,
        ),
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            help="Evaluate on the validation split every N iterations.", show_default=False
        ),
    ] = None,
    eval_max: Annotated[
        int | None,
        typer.Option(
            help="Evaluate on at most N validation/test images (a fixed subset).",
            show_default=False,
        ),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Crop side in pixels [preset].", show_default=False)
    ] = None,
    ten_crop: Annotated[
        bool | None,
        typer.Option(
            "--ten-crop/--single-crop",
            help="Final test on ten crops with summed logits [preset].",
            show_default=False,
        ),
    ] = None,
    amp: Annotated[
        str | None,
        typer.Option(
            help="Mixed precision on CUDA: auto, bf16, fp16, off [default: auto].",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Data-loading worker processes [default: 0].", show_default=False),
    ] = None,
    log_every: Annotated[
        int | None,
        typer.Option(
            help="Iterations between metrics.jsonl lines [default: 50].", show_default=False
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            help="Iterations between training-state checkpoints [default: 1000].",
            show_default=False,
        ),
    ] = None,
    log: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            help="Also log to tensorboard (RUN_DIR/tensorboard), mlflow (MLFLOW_TRACKING_URI) or csv, repeatable: scalars, feature spectra, the config, the checkpoint (mlflow). Needs the extra of the same name.",
            show_default=False,
        ),
    ] = None,
    lora_rank: Annotated[
        int | None,
        typer.Option(
            help="Train a LoRA adapter of this rank (peft) instead of every weight; writes RUN/adapter/ and the merged model.safetensors.",
            show_default=False,
        ),
    ] = None,
    lora_alpha: Annotated[
        float | None,
        typer.Option(help="LoRA alpha (scale alpha/r) [default: rank].", show_default=False),
    ] = None,
    rslora: Annotated[
        bool, typer.Option("--rslora", help="rsLoRA: scale alpha/sqrt(r).", show_default=False)
    ] = False,
    lora_targets: Annotated[
        str | None,
        typer.Option(
            help="Regex of module names LoRA adapts [default: every Linear and ungrouped Conv2d outside the head].",
            show_default=False,
        ),
    ] = None,
    unfrozen_parameters: Annotated[
        Path | None,
        typer.Option(
            "--unfrozen-parameters",
            help="Train only the parameters matched by this axolotl unfrozen_parameters YAML "
            "(as select-layers --out writes it; patterns matched as axolotl does) and the head.",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print final.json on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Fine-tune a pre-trained model with a regularizer (the paper's protocol by default).

    Writes OUT/<run id>/ with config.json, metrics.jsonl (losses per term, lr, accuracy,
    speed, feature singular values), final.json (validation and test accuracy, timings) and
    model.safetensors (readable by compare-weights and feature-spectrum). SIGTERM saves the
    training state and exits with status 143; --resume DIR continues to the same result.
    Under torchrun (--nproc_per_node N) the run is data-parallel.
    """
    with long_lived():
        from spectral_probe.training import (
            FinetuneConfig,
            RunDir,
            apply_scenario,
            finetune,
            get_task,
            parse_hp,
            parse_task_options,
            run_permuted,
        )

    given: dict[str, Any] = {
        "model": model,
        "data": data,
        "method": method,
        "rate": rate,
        "seed": seed,
        "preset": preset,
        "device": device,
        "iterations": iterations,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "head_lr_ratio": head_lr_ratio,
        "momentum": momentum,
        "lr_step": lr_step,
        "val": val,
        "select": select,
        "eval_every": eval_every,
        "eval_max": eval_max,
        "image_size": image_size,
        "ten_crop": ten_crop,
        "amp": amp,
        "num_workers": workers,
        "log_every": log_every,
        "checkpoint_every": checkpoint_every,
        "unfrozen_parameters": None if unfrozen_parameters is None else str(unfrozen_parameters),
    }
    given = {k: v for k, v in given.items() if v is not None}
    if image_size is not None:
        given.setdefault("resize", round(image_size * 256 / 224))
    if hp:
        given["hp"] = parse_hp(hp)
    if log:
        given["log"] = tuple(log)
    lora = {
        "rank": lora_rank,
        "alpha": lora_alpha,
        "targets": lora_targets,
        "rslora": rslora or None,
    }
    if any(v is not None for v in lora.values()):  # checked (rank required) by the config
        given["lora"] = {k: v for k, v in lora.items() if v is not None}
    if resume is not None:
        base = RunDir(resume).read_config()
        target = resume
    else:
        base = FinetuneConfig.from_file(config) if config is not None else FinetuneConfig()
    if task_option:  # merged into the config file's (or the resumed run's) options
        given["task_options"] = {**base.task_options, **parse_task_options(task_option)}
    if resume is None and not (given.get("data") or base.data).strip():
        fail("expected --data (e.g. --data cub200:/data/CUB_200_2011), found none")
    if resume is None:
        given = apply_scenario(base, given, scenario.value if scenario else None)
    cfg = base.with_overrides(**given).resolve() if given else base.resolve()
    get_task(cfg.task).check_options(cfg.task_options)  # before loading data or model
    if resume is None:
        target = run_dir if run_dir is not None else out / cfg.run_id
    main = os.environ.get("RANK", "0") == "0"
    if cfg.task == "permuted" and resume is None:  # two runs: task A, then task B from it
        with progress_bar("task A, then task B", quiet=quiet or not main) as update:
            both = run_permuted(cfg, out, run_dir=run_dir, hooks=[_progress_hook(update)])
        if main:
            _print_permuted(both, json_out)
        return
    with progress_bar("fine-tuning", quiet=quiet or not main) as update:
        result = finetune(cfg, target, resume=resume is not None, hooks=[_progress_hook(update)])
    if not main:
        return
    if result.status == "interrupted":
        done = int(result.metrics["iteration"].max()) if not result.metrics.empty else 0
        console.print(
            f"stopped after iteration {done}: training state saved; continue with "
            f"`spectral-probe finetune --resume {result.run_dir}`"
        )
        raise typer.Exit(_SIGTERM_EXIT)
    if json_out:
        print_json(result.final)
        return
    _print_result(result)


def _print_permuted(both: Any, json_out: bool) -> None:
    if both.status == "interrupted":
        run = both.task_b if both.task_b is not None else both.task_a
        console.print(
            f"stopped: training state saved in {run.run_dir}; run the same command again to continue"
        )
        raise typer.Exit(_SIGTERM_EXIT)
    if json_out:
        print_json(both.to_dict())
        return
    acc = both.accuracies()
    stdout.print(
        f"task A run: {both.task_a.run_dir}\ntask B run: {both.task_b.run_dir}\n"
        f"task A top-1: {acc['task_a']:.2%} (after task A alone: {acc['task_a_before_b']:.2%})\n"
        f"task B top-1: {acc['task_b']:.2%}\naverage: {acc['average']:.2%}"
    )


def _print_result(result: Any) -> None:
    final = result.final
    lines = [f"run: {result.run_dir}"]
    if result.val_accuracy is not None:
        lines.append(f"validation top-1: {result.val_accuracy:.2%}")
    what = "examples" if result.meta.get("task") == "text-classification" else "images"
    for name, ev in (final.get("evals") or {}).items():
        f1 = f", F1 {ev['f1']:.2%}" if ev.get("f1") is not None else ""
        lines.append(f"{name} top-1: {ev['accuracy']:.2%}{f1} on {ev['n']} {what}")
    if final.get("best_iteration") is not None:
        lines.append(f"selected iteration {final['best_iteration']} on the validation split")
    t = final.get("timings", {})
    speed = next((v for k, v in t.items() if k.endswith("_per_s") and v), None)
    lines.append(
        f"trained {final.get('iterations')} iterations in {t.get('train_seconds', 0):.1f} s"
        + (f" ({speed:,.0f}/s)" if speed else "")
    )
    stdout.print("\n".join(lines))


@app.command("sweep")
@handles_errors
def sweep_cmd(
    spec: Annotated[
        Path, typer.Argument(help="Sweep TOML file (see sweeps/table2.toml).", show_default=False)
    ],
    executor: Annotated[
        Executor | None,
        typer.Option(
            help="local (processes), slurm, or inline (this process) [default: the file's, else local].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder of run directories [default: the file's sweep.out, else runs].",
            show_default=False,
        ),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            help="Runs at once (local) or the SLURM array's parallelism [default: the file's, else 1].",
            show_default=False,
        ),
    ] = None,
    slurm: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm",
            help="SLURM parameter KEY=VALUE, repeatable: --slurm partition=gpu --slurm timeout_min=720.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the cells and whether they are done; run nothing."),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for SLURM jobs to end.")] = True,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the cells' status as JSON.")
    ] = False,
    log: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            help="Log every cell to tensorboard, mlflow or csv, repeatable (as finetune --log).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a grid of fine-tuning runs (models x datasets x methods x rates x seeds x hyperparameters).

    Finished runs (final.json present) are skipped, interrupted ones continue from their
    training state, so a sweep can be restarted at any time until every cell is done.
    """
    with long_lived():
        from spectral_probe.training import load_sweep, parse_hp, run_sweep

    parsed = load_sweep(spec)
    options = parse_hp(slurm or [])
    with progress_bar("sweep", quiet=quiet or dry_run) as update:
        report = run_sweep(
            parsed,
            out,
            executor=executor.value if executor else None,
            max_parallel=max_parallel,
            slurm=options,
            dry_run=dry_run,
            wait=wait,
            progress=update,
            log=log or None,
        )
    cells = report.cells.copy()
    if json_out:
        print_json(cells.to_dict(orient="records"))
    else:
        for col in ("test_accuracy", "error"):
            if col not in cells:
                cells[col] = None
        print_frame(
            cells,
            ["run_id", "status", "test_accuracy", "error"],
            title=f"{parsed.name}: {report.out}",
        )
        counts = ", ".join(f"{n} {s}" for s, n in report.counts().items())
        console.print(f"{len(cells)} cells: {counts}")
    if (cells["status"] == "failed").any():
        raise typer.Exit(1)


@app.command("sweep-table")
@handles_errors
def sweep_table_cmd(
    runs: Annotated[
        Path, typer.Argument(help="Folder holding run directories (any depth).", show_default=False)
    ],
    paper: Annotated[
        bool, typer.Option("--paper", help="Put the paper's Table 2 numbers beside each cell.")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Markdown table, rates as columns (the default output)."),
    ] = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV of the cells (mean, std, n per cell) on stdout.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="The cells as JSON on stdout.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write runs.csv, cells.csv and table.md here."),
    ] = None,
    table3: Annotated[
        bool,
        typer.Option(
            "--table3",
            help="The permuted-pixel runs as the paper's Table 3: task A / task B / average per method, beside the paper's numbers.",
        ),
    ] = False,
    table4: Annotated[
        bool,
        typer.Option(
            "--table4",
            help="The GLUE (text-classification) runs as the paper's Table 4: dev accuracy per task and their average per model and method, beside the paper's BERT-base numbers.",
        ),
    ] = False,
) -> None:
    """Aggregate finished runs to mean ± std of test top-1 (%) per cell, Table-2 style.

    A cell is everything but the seed: dataset, method, rate and any field or
    hyperparameter that varies across the runs. --paper adds the paper's numbers;
    --table3 and --table4 lay out the scenario runs as the paper's Tables 3 and 4.
    """
    from spectral_probe._io import atomic_write_text, staged_dir
    from spectral_probe.training import sweep_table
    from spectral_probe.training import table3 as make_table3
    from spectral_probe.training import table4 as make_table4

    if table3 and table4:
        fail("expected one of --table3 and --table4, found both")
    if table3:
        table: Any = make_table3(runs)
    elif table4:
        table = make_table4(runs)
    else:
        table = sweep_table(runs, paper=paper)
    if out is not None:
        with staged_dir(out) as tmp:
            table.to_csv(tmp)
            atomic_write_text(tmp / "table.md", table.to_markdown())
    if csv_out:
        stdout.file.write(table.cells.to_csv(index=False))
    elif json_out:
        print_json({"keys": list(table.keys), "cells": table.cells.to_dict(orient="records")})
    else:
        stdout.file.write(table.to_markdown())
    if table.cells.empty:
        console.print(f"no finished runs under {runs}")


@app.command("plot-runs")
@handles_errors
def plot_runs_cmd(
    runs: Annotated[
        Path, typer.Argument(help="Folder holding run directories (any depth).", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the figures here.")] = Path(
        "figures"
    ),
    spectra: Annotated[
        bool,
        typer.Option(
            help="Figure 3(b,c): feature spectra of each method with and without BSS, from the runs' checkpoints on the test split."
        ),
    ] = True,
    max_batches: Annotated[
        int, typer.Option(help="Batches of the test split per model for the spectra.")
    ] = 10,
    over_time: Annotated[
        bool,
        typer.Option(
            help="Also one figure per run of its logged singular values over the iterations."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (for the spectra).")] = "auto",
) -> None:
    """Paper figures from runs: error vs rate (1a), TSVD r (3a), BSS k (3d), spectra with/without BSS (3b,c)."""
    from spectral_probe._io import staged_dir
    from spectral_probe.plotting import save_figure
    from spectral_probe.training import figures as plots
    from spectral_probe.training import load_run, runs_feature_spectra, sweep_table

    table = sweep_table(runs)
    if table.cells.empty:
        fail(f"expected finished runs under {runs}, found none")
    written: list[str] = []
    with staged_dir(out) as tmp:
        for dataset in table.cells["dataset"].unique():
            save_figure(
                plots.plot_error_vs_rate(table, dataset=dataset),
                tmp / f"error_vs_rate_{dataset}.png",
            )
            written.append(f"error_vs_rate_{dataset}.png")
            if "hp.tsvd.r" in table.cells:
                save_figure(
                    plots.plot_tsvd_sweep(table, dataset=dataset), tmp / f"tsvd_r_{dataset}.png"
                )
                written.append(f"tsvd_r_{dataset}.png")
            if "hp.bss.k" in table.cells:
                save_figure(
                    plots.plot_bss_k_sweep(table, dataset=dataset), tmp / f"bss_k_{dataset}.png"
                )
                written.append(f"bss_k_{dataset}.png")
        if spectra:
            res = runs_feature_spectra(table.runs, max_batches=max_batches, device=device)
            if res is not None:
                save_figure(plots.plot_spectra_with_without_bss(res), tmp / "spectra_bss.png")
                written.append("spectra_bss.png")
        if over_time:
            for path in table.runs["path"]:
                run = load_run(path)
                if not run.spectra.empty:
                    save_figure(
                        plots.plot_spectrum_over_time(run), tmp / f"spectrum_time_{run.run_id}.png"
                    )
                    written.append(f"spectrum_time_{run.run_id}.png")
    console.print(f"wrote {len(written)} figure(s) to [bold]{out}[/]: {', '.join(written)}")
