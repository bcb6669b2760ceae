"""Where the browser test saves its screenshots: `--browser-artifacts DIR` (or the
PADDY_BROWSER_ARTIFACTS variable), else the test's tmp_path."""

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--browser-artifacts",
        default=None,
        help="directory for the dashboard browser test's screenshots (default: the test's tmp_path)",
    )


@pytest.fixture
def artifacts_dir(request, tmp_path) -> Path:
    chosen = request.config.getoption("--browser-artifacts", default=None) or os.environ.get("PADDY_BROWSER_ARTIFACTS")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
