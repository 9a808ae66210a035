"""The text classifier (spectral_probe.models.text_classifier): names kept, pooling, the head's
input."""

from __future__ import annotations

import pytest
import torch
from training.test_text import _tiny_bert

from spectral_probe.errors import ConfigError
from spectral_probe.models.text_classifier import pooler_is_trained
from spectral_probe.regularizers import FeatureCapture
from spectral_probe.training import TextClassifier

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def minilm():
    from spectral_probe.models import load_model

    return load_model("bundled:minilm-l6")


def test_classifier_keeps_the_encoder_names_and_pools_as_asked():
    enc = _tiny_bert()
    names = set(enc.state_dict()) - {k for k in enc.state_dict() if k.startswith("pooler.")}
    model = TextClassifier(enc, 3, pool="auto")
    assert model.pool == "cls" and not pooler_is_trained(enc)  # zero pooler bias: never trained
    assert set(model.state_dict()) == names | {"classifier.weight", "classifier.bias"}
    ids = torch.randint(1, 60, (4, 7))
    mask = torch.ones(4, 7, dtype=torch.int64)
    mask[0, 5:] = 0
    out = model.eval().encoder_module(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(model.features(ids, mask), out.last_hidden_state[:, 0])
    mean = TextClassifier(_tiny_bert(), 3, pool="mean").eval()
    hidden = mean.encoder_module(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(mean.features(ids, mask)[0], hidden[0, :5].mean(0))
    trained = _tiny_bert(pooler_bias=0.1)
    pooled = TextClassifier(trained, 3, pool="auto").eval()
    assert pooled.pool == "pooler"
    torch.testing.assert_close(
        pooled.features(ids, mask), trained(input_ids=ids, attention_mask=mask).pooler_output
    )
    with pytest.raises(ConfigError, match="expected pool in"):
        TextClassifier(_tiny_bert(), 3, pool="max")


def test_head_input_is_the_feature_itself_while_dropout_acts():
    model = TextClassifier(_tiny_bert(), 2, pool="cls", dropout=0.5).eval()
    model.classifier.train()  # dropout on, the encoder deterministic
    ids = torch.randint(1, 60, (8, 6))
    with FeatureCapture(model, "classifier") as cap:
        logits = model(ids)
    torch.testing.assert_close(cap.features, model.features(ids))
    model.classifier.eval()
    assert not torch.allclose(logits, model(ids))


def test_minilm_auto_pool_is_cls(minilm):
    assert not pooler_is_trained(minilm.model)  # sentence-transformers never trains the pooler
