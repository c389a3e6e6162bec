import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAFE = {
    "DJANGO_ENV": "production",
    "DEBUG": "false",
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "tickets.example.com",
}


def load_settings(**overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **SAFE, **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_production_starts_with_safe_settings():
    assert load_settings().returncode == 0


@pytest.mark.parametrize(
    "overrides, complaint",
    [
        ({"DEBUG": "true"}, "DEBUG is on"),
        ({"SECRET_KEY": "dev-only-insecure-secret-key-do-not-use-in-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
    ],
)
def test_production_refuses_unsafe_settings(overrides, complaint):
    result = load_settings(**overrides)

    assert result.returncode != 0
    assert complaint in result.stderr
