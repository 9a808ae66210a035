"""``import_torchvision``: torchvision without ``torch._dynamo``, and nothing broken after it.

Each check runs in a fresh interpreter: whether dynamo is loaded depends on the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHECK = """
import json, sys
from spectral_probe._torchvision import import_torchvision
tv = import_torchvision()
after_import = "torch._dynamo" in sys.modules
import torch
model = tv.models.resnet18(num_classes=3).eval()
with torch.no_grad():
    logits = model(torch.randn(1, 3, 32, 32))
from torchvision.ops import roi_align  # the module that asked for torch._dynamo.utils
pooled = roi_align(torch.randn(1, 2, 8, 8), [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], 2)
import torch._dynamo  # the real package loads after the placeholder is gone
compiled = torch.compile(lambda x: x * 2, backend="eager")(torch.ones(2))
print(json.dumps({
    "dynamo_after_import": after_import,
    "placeholder_left": getattr(sys.modules["torch._dynamo"], "__file__", None) is None,
    "logits": list(logits.shape),
    "pooled": list(pooled.shape),
    "compiled": compiled.tolist(),
}))
"""


def _run(env_extra: dict[str, str] | None = None) -> dict[str, object]:
    import os

    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_torchvision_imports_without_dynamo_and_everything_still_works() -> None:
    out = _run()
    assert out["dynamo_after_import"] is False
    assert out["placeholder_left"] is False
    assert out["logits"] == [1, 3]
    assert out["pooled"] == [1, 2, 2, 2]
    assert out["compiled"] == [2.0, 2.0]


def test_the_shortcut_can_be_turned_off() -> None:
    out = _run({"SPECTRAL_PROBE_PLAIN_IMPORTS": "1"})
    assert out["dynamo_after_import"] is True
    assert out["compiled"] == [2.0, 2.0]


_BUILD = """
import json, sys
import torch
from spectral_probe._torchvision import import_torchvision
from spectral_probe.models._empty import build_empty
tv = import_torchvision()
before = torch.nn.init.kaiming_normal_
model = build_empty(lambda: tv.models.resnet18())
print(json.dumps({
    "meta": all(p.is_meta for p in model.parameters()),
    "dynamo": "torch._dynamo" in sys.modules,
    "init_restored": torch.nn.init.kaiming_normal_ is before,
}))
"""


def test_building_on_meta_does_not_import_dynamo() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD], check=False, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"meta": True, "dynamo": False, "init_restored": True}
