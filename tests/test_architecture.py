"""The dependency direction of the apps (docs/architecture.md), checked on the source.

Layers, bottom up: config and accounts (beneath all), concerts, queueing, reservations,
payments; monitoring (/metrics) on top of them all. A domain module (models, services,
selectors, errors, tasks, inventory, gate, ...) imports only its own layer and those below. The web layer (api.py, admin.py) sits on top of
every domain layer and may use any app's services and selectors, never another app's api.py.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {
    "config": 0,
    "accounts": 0,
    "events": 0,
    "webhooks": 0,
    "notifications": 0,
    "concerts": 1,
    "queueing": 2,
    "reservations": 3,
    "payments": 4,
    # Reads every app's selectors (and the console's) for /metrics: above them all.
    "monitoring": 5,
}
WEB_MODULES = {"api.py", "admin.py", "urls.py"}


def imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    return modules


def source_files():
    for app in LAYER:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


DOMAIN_MODULES = [
    (app, path) for app, path in source_files() if app != "config" and path.name not in WEB_MODULES
]


@pytest.mark.parametrize(
    "app, path", DOMAIN_MODULES, ids=[str(p.relative_to(ROOT)) for _, p in DOMAIN_MODULES]
)
def test_domain_modules_import_only_their_layer_and_those_below(app, path):
    upward = [
        module
        for module in imported_modules(path)
        if module.split(".")[0] in LAYER and LAYER[module.split(".")[0]] > LAYER[app]
    ]

    assert upward == [], f"{path.relative_to(ROOT)} reaches up to {upward}"


def test_no_api_module_imports_another_apps_api():
    offenders = [
        f"{path.relative_to(ROOT)} -> {module}"
        for app, path in source_files()
        for module in imported_modules(path)
        if module.endswith(".api") and module.split(".")[0] not in (app, "rest_framework")
    ]

    assert offenders == []


def test_config_uses_no_domain_app_but_accounts():
    offenders = [
        f"{path.relative_to(ROOT)} -> {module}"
        for app, path in source_files()
        if app == "config" and path.name not in ("urls.py", "settings.py")
        for module in imported_modules(path)
        if module.split(".")[0] in LAYER and module.split(".")[0] not in ("config", "accounts")
    ]

    assert offenders == []


def test_the_operator_console_sits_on_top_and_nothing_imports_it():
    """console/ is web layer only (admin pages): it may use any app's services and
    selectors, and no app depends on it, but monitoring/, the other reader on top, which
    counts seats and money with the console's own selectors (one truth for both)."""
    offenders = [
        f"{path.relative_to(ROOT)} -> {module}"
        for app, path in source_files()
        for module in imported_modules(path)
        if module.split(".")[0] == "console"
        and not (app == "monitoring" and module.startswith("console.selectors"))
    ]

    assert offenders == []
