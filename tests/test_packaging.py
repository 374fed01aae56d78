"""The installed package: its layout mapping, its public surface and its settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import prefect_grok_video
from prefect_grok_video import GrokVideoSettings

REPO = Path(__file__).parents[1]


def test_blocks_and_flows_install_under_the_package_only(tmp_path):
    """`blocks/` and `flows/` are importable as sub-packages, never as top-level names."""
    script = (
        "import importlib.util, prefect_grok_video.blocks as b, prefect_grok_video.flows as f\n"
        "print(b.__file__); print(f.__file__)\n"
        "print(importlib.util.find_spec('flows'), importlib.util.find_spec('blocks'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    blocks_file, flows_file, top_level = done.stdout.splitlines()
    assert Path(blocks_file).parent.name == "blocks"
    assert Path(flows_file).parent.name == "flows"
    assert top_level == "None None"


def test_public_surface():
    expected = {"AsyncGrokVideoClient", "GrokVideoClient", "GrokVideoSettings", "VideoJob",
                "DownloadResult", "PollPolicy", "RetryPolicy", "resolve_video"}  # fmt: skip
    assert expected <= set(prefect_grok_video.__all__)
    for name in prefect_grok_video.__all__:
        assert getattr(prefect_grok_video, name) is not None


def test_core_does_not_import_prefect():
    """The API layer stays usable (and quick to import) without Prefect's machinery."""
    script = (
        "import sys, prefect_grok_video, prefect_grok_video.emulator\n"
        "print(any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_settings_read_the_environment_and_hide_the_key(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_API_KEY", "sk-canary-settings-1")
    monkeypatch.setenv("GROK_VIDEO_READ_TIMEOUT", "12.5")
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", "https://api.x.ai/v1/")
    settings = GrokVideoSettings()
    assert settings.api_key.get_secret_value() == "sk-canary-settings-1"
    assert settings.base_url == "https://api.x.ai/v1"
    assert settings.timeout.read == 12.5
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "sk-canary-settings-1" not in text


def test_settings_defaults_suit_the_real_service(monkeypatch):
    for name in ("API_KEY", "BASE_URL", "MODEL"):
        monkeypatch.delenv(f"GROK_VIDEO_{name}", raising=False)
    settings = GrokVideoSettings()
    assert settings.base_url == "https://platform.dataeyes.ai/grok/v1"
    assert settings.model == "grok-imagine-video"
    assert settings.api_key is None


def test_settings_refuse_a_bad_base_url(monkeypatch):
    monkeypatch.setenv("GROK_VIDEO_BASE_URL", "ftp://example.com")
    with pytest.raises(ValueError, match="base_url must be an http"):
        GrokVideoSettings()


def test_the_old_name_of_make_videos_still_works_with_a_warning():
    """`extend_videos` (0.1) runs every action, so it became `make_videos`: old imports and
    deployments whose entrypoint names it keep working, and say so."""
    entrypoint = f"{REPO / 'flows' / 'extend.py'}:extend_videos"
    script = (
        "import warnings; warnings.simplefilter('always')\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        "from prefect_grok_video.flows import extend_videos, make_videos\n"
        "print(extend_videos is make_videos)\n"
        f"flow = load_flow_from_entrypoint({entrypoint!r})\n"
        "print(flow.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "make-videos"], done.stderr
    assert done.stderr.count("DeprecationWarning: extend_videos is now make_videos") == 2


@pytest.mark.parametrize("package", [
    "prefect_grok_video", "prefect_grok_video.flows", "prefect_grok_video.blocks",
    "prefect_grok_video.manifest", "prefect_grok_video.emulator",
])  # fmt: skip
def test_each_package_lists_its_public_api_and_every_name_is_there(package):
    import importlib

    module = importlib.import_module(package)
    names = module.__all__
    assert names and len(set(names)) == len(names)
    missing = [name for name in names if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"


def test_the_package_says_it_is_typed():
    """PEP 561: `py.typed` is installed with it, so users' type checkers read its hints."""
    from importlib.resources import files

    assert files("prefect_grok_video").joinpath("py.typed").is_file()
