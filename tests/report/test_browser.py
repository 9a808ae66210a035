"""The report page in a real headless browser (Debian chromium): figures decode, content shows."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (make test installs it on Debian)"
)


def _dump_dom(url: str, profile) -> str:  # type: ignore[no-untyped-def]
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def test_report_renders_with_all_figures(tiny_report, tmp_path):
    report, paths, out = tiny_report
    dom = _dump_dom(paths["html"].resolve().as_uri(), tmp_path / "profile")
    loaded = re.search(r'data-figures-loaded="(\d+)"', dom)
    total = re.search(r'data-figures-total="(\d+)"', dom)
    assert loaded and total, "the page's load handler did not run"
    written = len(list((out / "figures").glob("*.png")))  # test_build checks their names
    assert written >= 7 and int(total.group(1)) == written and loaded.group(1) == total.group(1)
    rec = re.search(
        r'<div class="rec" id="recommendation">\s*<span class="method">([^<]+)</span>', dom
    )
    assert rec and rec.group(1) == report.headline.method
    assert "confidence: " + report.headline.confidence in dom


def test_screenshot_is_not_blank(tiny_report, tmp_path):
    from PIL import Image

    _, paths, _ = tiny_report
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            paths["html"].resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("L")
    lo, hi = image.getextrema()
    assert image.size == (1200, 1600) and hi - lo > 100  # text and figures, not an empty page
