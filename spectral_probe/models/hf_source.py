"""``hf:PATH_OR_ID``: transformers encoders (BERT family and friends).

A directory (or hub id) with a ``config.json``. Sequence-classification checkpoints load with
their classifier (head ``classifier``); anything else loads as a bare encoder
(``AutoModel``, head ``None``), whose pooled/[CLS] output is the feature vector; transformers'
load report (the task head it leaves out, "UNEXPECTED ... can be ignored") stays off the
screen. The weight analyses never come here: they read ``hf:`` as tensors
(:mod:`spectral_probe.sources`), task heads and ``lm_head`` included. A name that looks like
a local path and does not exist fails at once, without a hub lookup.
Needs the ``nlp`` extra (``pip install spectral-probe[nlp]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelSpecError
from ._registry import register_source
from .heads import find_head, head_out_features
from .loaded import LoadedModel

__all__ = ["load_hf"]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelSpecError(
            "hf: models need the transformers package: pip install 'spectral-probe[nlp]'"
        ) from None
    return transformers


def load_hf_from(path: str, spec: str, arch: str, pretrained: bool = True) -> LoadedModel:
    """Load a transformers model from ``path``; ``spec``/``arch`` are recorded as given."""
    tr = _transformers()
    tr.utils.logging.disable_progress_bar()
    from ..sources.directory import looks_local

    local = Path(path).expanduser()
    if not local.exists() and looks_local(path):
        raise ModelSpecError(f"expected a transformers model directory, found no such path: {path}")
    if local.exists() and not (local / "config.json").is_file():
        raise ModelSpecError(
            f"expected a transformers model directory with config.json, found none in {path}"
        )
    try:
        config = tr.AutoConfig.from_pretrained(path)
        is_cls = any("ForSequenceClassification" in a for a in (config.architectures or []))
        cls = tr.AutoModelForSequenceClassification if is_cls else tr.AutoModel
        verbosity = tr.logging.get_verbosity()
        tr.logging.set_verbosity_error()  # the load report of a head left out is not news
        try:
            model = cls.from_pretrained(path) if pretrained else cls.from_config(config)
        finally:
            tr.logging.set_verbosity(verbosity)
    except OSError as exc:
        raise ModelSpecError(
            f"cannot load transformers model {path!r}: {str(exc).splitlines()[0]}"
        ) from None
    model.eval()
    tokenizer = None
    meta: dict[str, object] = {"model_type": config.model_type}
    try:
        tokenizer = tr.AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        meta["tokenizer_error"] = str(exc).splitlines()[0]
    if tokenizer is not None and len(tokenizer) <= len(
        set(getattr(tokenizer, "all_special_tokens", []) or [])
    ):
        # transformers 5 builds a tokenizer of special tokens only from a folder without vocabulary files
        meta["tokenizer_error"] = "no vocabulary files in the model directory"
        tokenizer = None
    head = find_head(model) if is_cls else None
    return LoadedModel(
        model=model,
        spec=spec,
        arch=arch,
        head=head,
        modality="text",
        tokenizer=tokenizer,
        num_classes=head_out_features(model, head) if head else None,
        metadata=meta,
    )


@register_source(
    "hf",
    help="transformers encoders: a local directory or hub id (needs the nlp extra)",
    example="hf:/models/bert-base-uncased",
)
def load_hf(rest: str, pretrained: bool = True) -> LoadedModel:
    """Load ``hf:PATH_OR_ID``."""
    return load_hf_from(rest, f"hf:{rest}", f"hf:{rest}", pretrained)
