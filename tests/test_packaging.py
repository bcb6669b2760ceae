"""Heavy dependencies stay where they are needed: only the trainer imports torch."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TORCH = (
    "import sys\n"
    "class NoTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
    "            raise ImportError('torch is not installed in this image')\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


@pytest.mark.parametrize(
    "module",
    [
        "services.api.main",
        "services.recorder.__main__",
        "services.recorder.consumer",
        "services.dashboard.api_client",
        "services.trainer.celery_app",
        "infra.cli",
        "shared.onnx_model",
    ],
)
def test_service_imports_without_torch(module):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + f"import {module}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_only_the_trainer_extra_installs_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= set(extras["trainer"])
    others = project["dependencies"] + [d for name, deps in extras.items() if name != "trainer" for d in deps]
    assert not [d for d in others if d.startswith("torch")]


def test_the_model_registries_agree():
    from services.trainer.models import MODEL_BUILDERS
    from shared.models import MODELS

    assert set(MODEL_BUILDERS) == set(MODELS)
