"""The HTML report opened in a real browser (headless Chromium): every figure renders."""

from __future__ import annotations

import re
import shutil
import subprocess

from test_analysis_report import tiny_db  # noqa: F401 (the session's tiny-sweep database)

from lstmbench.analysis.paper import FIGURE_KEYS as FIGURES

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Flags that keep a headless browser from waiting on a network this machine may not have.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=10000",
]


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("headless Chromium is needed: apt-get install -y chromium")


def rendered_dom(page, profile) -> str:
    """The page's DOM after load, as the browser serializes it."""
    done = subprocess.run(
        [browser(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_renders_every_figure_in_chromium(tiny_db, tmp_path):  # noqa: F811
    page = tiny_db.parent / "report" / "report.html"  # written by `lstmbench reproduce`
    dom = rendered_dom(page, tmp_path / "profile")
    count = len(FIGURES)
    assert f'data-figures="{count}/{count}"' in dom
    widths = re.findall(r'<img class="figure"[^>]*data-rendered="(\d+)"', dom)
    assert len(widths) == count and all(int(w) > 300 for w in widths)
    for key in FIGURES:
        assert f'id="{key}"' in dom
    assert "our verdict" in dom and "0.73%" in dom


def test_a_broken_figure_is_caught(tiny_db, tmp_path):  # noqa: F811
    html = (tiny_db.parent / "report" / "report.html").read_text()
    broken = re.sub(r"base64,[A-Za-z0-9+/=]{100}", "base64,AAAA", html, count=1)
    page = tmp_path / "broken.html"
    page.write_text(broken)
    dom = rendered_dom(page, tmp_path / "profile")
    assert f'data-figures="{len(FIGURES) - 1}/{len(FIGURES)}"' in dom
