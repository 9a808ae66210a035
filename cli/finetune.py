"""``spectral-probe finetune``: one fine-tuning run (or the permuted scenario's two).

The options are the config's fields; :meth:`FinetuneConfig.from_options
<spectral_probe.training.FinetuneConfig.from_options>` turns them into the resolved config
(scenario defaults, presets, the paper's resize, LoRA), so this file only parses, runs and
prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import console, handles_errors, long_lived, print_json, progress_bar, stdout
from ._training import SIGTERM_EXIT, LogOpt, QuietOpt, progress_hook

app = typer.Typer()


Model = Annotated[
    str | None,
    typer.Option(
        help="Pre-trained model spec [default: the scenario's, see docs/scenarios.md], "
        "e.g. torchvision:resnet50:IMAGENET1K_V1.",
        show_default=False,
    ),
]
Data = Annotated[
    str | None,
    typer.Option(
        help="Data spec NAME[:ROOT] (class subsets: NAME[CLASS,...], e.g. digits[0,1,2]), "
        "e.g. cub200:/data/CUB_200_2011, fashion-mnist.",
        show_default=False,
    ),
]
Method = Annotated[
    str | None,
    typer.Option(
        help="Registered regularizers joined by '+', e.g. l2-sp+bss (an unknown name fails listing "
        "them; docs/regularizers.md) [default: the scenario's].",
        show_default=False,
    ),
]
Rate = Annotated[
    str | None,
    typer.Option(
        help="Per-class sampling rate: 0.15, 15%, or a count per class [default: 100%].",
        show_default=False,
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        help="Seed of initialisation, sampling, data order and augmentation [default: 0].",
        show_default=False,
    ),
]
Preset = Annotated[
    str | None,
    typer.Option(
        help="A registered preset of optimisation defaults (docs/training.md) [default: the scenario's].",
        show_default=False,
    ),
]
Scenario = Annotated[
    str | None,
    typer.Option(
        help="A registered scenario: the task, preset, method and model it defaults to "
        "(docs/scenarios.md) [default: the one the data implies].",
        show_default=False,
    ),
]
Device = Annotated[
    str | None, typer.Option(help="auto, cpu, cuda or cuda:N [default: auto].", show_default=False)
]
Iterations = Annotated[
    int | None, typer.Option(help="Optimisation steps [preset].", show_default=False)
]
Epochs = Annotated[
    float | None,
    typer.Option(help="Train for this many epochs instead of --iterations.", show_default=False),
]
BatchSize = Annotated[
    int | None,
    typer.Option(help="Global batch size, split over DDP processes [preset].", show_default=False),
]
Lr = Annotated[
    float | None,
    typer.Option(
        help="Learning rate of the new head; the backbone gets lr / head-lr-ratio [preset].",
        show_default=False,
    ),
]
HeadLrRatio = Annotated[
    float | None, typer.Option(help="Head lr / backbone lr [preset: 10].", show_default=False)
]
Momentum = Annotated[float | None, typer.Option(help="SGD momentum [preset].", show_default=False)]
LrStep = Annotated[
    int | None,
    typer.Option(
        help="Multiply the lr by lr-gamma every this many iterations [preset].", show_default=False
    ),
]
Hp = Annotated[
    list[str] | None,
    typer.Option(
        "--hp",
        help="Regularizer hyperparameter NAME=VALUE, repeatable: --hp bss.eta=0.001 --hp bss.k=2.",
        show_default=False,
    ),
]
TaskOption = Annotated[
    list[str] | None,
    typer.Option(
        "--task-option",
        help="Task option KEY=VALUE, repeatable; the task's options are listed in docs/scenarios.md "
        "(e.g. --task-option pool=mean).",
        show_default=False,
    ),
]
Val = Annotated[
    str | None,
    typer.Option(
        help="Validation share carved from the training split (0.1, 10%, or a count per class) "
        "[default: 0].",
        show_default=False,
    ),
]
Select = Annotated[
    str | None,
    typer.Option(
        help="last (final weights) or best (best validation accuracy; needs --val and --eval-every).",
        show_default=False,
    ),
]
EvalEvery = Annotated[
    int | None,
    typer.Option(help="Evaluate on the validation split every N iterations.", show_default=False),
]
EvalMax = Annotated[
    int | None,
    typer.Option(
        help="Evaluate on at most N validation/test images (a fixed subset).", show_default=False
    ),
]
ImageSize = Annotated[
    int | None,
    typer.Option(
        help="Crop side in pixels [preset]; the resize side follows the paper's ratio.",
        show_default=False,
    ),
]
TenCrop = Annotated[
    bool | None,
    typer.Option(
        "--ten-crop/--single-crop",
        help="Final test on ten crops with summed logits [preset].",
        show_default=False,
    ),
]
Amp = Annotated[
    str | None,
    typer.Option(
        help="Mixed precision on CUDA: auto, bf16, fp16, off [default: auto].", show_default=False
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Data-loading worker processes [default: 0].", show_default=False
    ),
]
LogEvery = Annotated[
    int | None,
    typer.Option(help="Iterations between metrics.jsonl lines [default: 50].", show_default=False),
]
CheckpointEvery = Annotated[
    int | None,
    typer.Option(
        help="Iterations between training-state checkpoints [default: 1000].", show_default=False
    ),
]
LoraRank = Annotated[
    int | None,
    typer.Option(
        help="Train a LoRA adapter of this rank (peft) instead of every weight; writes RUN/adapter/ "
        "and the merged model.safetensors.",
        show_default=False,
    ),
]
LoraAlpha = Annotated[
    float | None,
    typer.Option(help="LoRA alpha (scale alpha/r) [default: rank].", show_default=False),
]
LoraTargets = Annotated[
    str | None,
    typer.Option(
        help="Regex of module names LoRA adapts [default: every Linear and ungrouped Conv2d outside "
        "the head].",
        show_default=False,
    ),
]
Rslora = Annotated[bool, typer.Option("--rslora", help="rsLoRA: scale alpha/sqrt(r).")]
Out = Annotated[
    Path,
    typer.Option("--out", "-o", help="Folder of run directories; this run goes to OUT/<run id>."),
]
RunDirOpt = Annotated[
    Path | None,
    typer.Option(help="Write the run exactly here instead of OUT/<run id>.", show_default=False),
]
Resume = Annotated[
    Path | None,
    typer.Option(
        help="Continue the run in this directory (options given must match its config).",
        show_default=False,
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        help="Read the config from a TOML/JSON file (options given override it).",
        show_default=False,
    ),
]
UnfrozenParameters = Annotated[
    Path | None,
    typer.Option(
        "--unfrozen-parameters",
        help="Train only the parameters matched by this axolotl unfrozen_parameters YAML "
        "(as select-layers --out writes it; patterns matched as axolotl does) and the head.",
        show_default=False,
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print final.json on stdout.")]

#: Options of the command that are not config fields.
_NOT_CONFIG = ("scenario", "out", "run_dir", "resume", "config", "json_out", "quiet")


@app.command("finetune")
@handles_errors
def finetune_cmd(
    model: Model = None,
    data: Data = None,
    method: Method = None,
    rate: Rate = None,
    seed: Seed = None,
    preset: Preset = None,
    scenario: Scenario = None,
    out: Out = Path("runs"),
    run_dir: RunDirOpt = None,
    resume: Resume = None,
    config: ConfigFile = None,
    device: Device = None,
    iterations: Iterations = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    head_lr_ratio: HeadLrRatio = None,
    momentum: Momentum = None,
    lr_step: LrStep = None,
    hp: Hp = None,
    task_options: TaskOption = None,
    val: Val = None,
    select: Select = None,
    eval_every: EvalEvery = None,
    eval_max: EvalMax = None,
    image_size: ImageSize = None,
    ten_crop: TenCrop = None,
    amp: Amp = None,
    num_workers: Workers = None,
    log_every: LogEvery = None,
    checkpoint_every: CheckpointEvery = None,
    log: LogOpt = None,
    lora_rank: LoraRank = None,
    lora_alpha: LoraAlpha = None,
    rslora: Rslora = False,
    lora_targets: LoraTargets = None,
    unfrozen_parameters: UnfrozenParameters = None,
    json_out: JsonOut = False,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a pre-trained model with a regularizer (the paper's protocol by default).

    Writes OUT/<run id>/ with config.json, metrics.jsonl (losses per term, lr, accuracy,
    speed, feature singular values), final.json (validation and test accuracy, timings) and
    model.safetensors (readable by compare-weights and feature-spectrum). SIGTERM saves the
    training state and exits with status 143; --resume DIR continues to the same result.
    Under torchrun (--nproc_per_node N) the run is data-parallel.
    """
    options = {k: v for k, v in locals().items() if k not in _NOT_CONFIG}
    with long_lived():
        from spectral_probe.training import FinetuneConfig, RunDir, finetune, run_permuted

    if resume is not None:
        base: FinetuneConfig | None = RunDir(resume).read_config()
    else:
        base = FinetuneConfig.from_file(config) if config is not None else None
    cfg = FinetuneConfig.from_options(
        options, base=base, scenario=scenario, resumed=resume is not None
    )
    main = os.environ.get("RANK", "0") == "0"
    if cfg.task == "permuted" and resume is None:  # two runs: task A, then task B from it
        with progress_bar("task A, then task B", quiet=quiet or not main) as update:
            both = run_permuted(cfg, out, run_dir=run_dir, hooks=[progress_hook(update)])
        if main:
            _print_permuted(both, json_out)
        return
    target = resume or run_dir or out / cfg.run_id
    with progress_bar("fine-tuning", quiet=quiet or not main) as update:
        result = finetune(cfg, target, resume=resume is not None, hooks=[progress_hook(update)])
    if main:
        _print_result(result, json_out)


def _print_permuted(both: Any, json_out: bool) -> None:
    if both.status == "interrupted":
        run = both.task_b if both.task_b is not None else both.task_a
        console.print(
            f"stopped: training state saved in {run.run_dir}; run the same command again to continue"
        )
        raise typer.Exit(SIGTERM_EXIT)
    if json_out:
        print_json(both.to_dict())
        return
    acc = both.accuracies()
    stdout.print(
        f"task A run: {both.task_a.run_dir}\ntask B run: {both.task_b.run_dir}\n"
        f"task A top-1: {acc['task_a']:.2%} (after task A alone: {acc['task_a_before_b']:.2%})\n"
        f"task B top-1: {acc['task_b']:.2%}\naverage: {acc['average']:.2%}"
    )


def _print_result(result: Any, json_out: bool) -> None:
    if result.status == "interrupted":
        done = int(result.metrics["iteration"].max()) if not result.metrics.empty else 0
        console.print(
            f"stopped after iteration {done}: training state saved; continue with "
            f"`spectral-probe finetune --resume {result.run_dir}`"
        )
        raise typer.Exit(SIGTERM_EXIT)
    if json_out:
        print_json(result.final)
        return
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
