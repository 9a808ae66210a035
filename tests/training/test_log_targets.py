"""The --log names (spectral_probe/training/log_targets.py): checked without the trackers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training.log_targets import LOGGERS, check_loggers


def test_names_are_checked_and_deduplicated():
    assert check_loggers(["csv", "mlflow", "csv"]) == ("csv", "mlflow")
    assert check_loggers("tensorboard") == ("tensorboard",)
    assert check_loggers(()) == ()
    with pytest.raises(
        ConfigError, match=r"from \['csv', 'mlflow', 'tensorboard'\], found 'wandb'"
    ):
        check_loggers(["csv", "wandb"])
    assert set(LOGGERS) == {"csv", "mlflow", "tensorboard"}


def test_the_config_checks_them_without_importing_the_trackers():
    code = (
        "import sys\n"
        "from spectral_probe.training.config import FinetuneConfig\n"
        "FinetuneConfig(data='digits', log=('csv',)).resolve()\n"
        "print('spectral_probe.training.loggers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the trackers' module is imported when a run builds them
