"""The production shape (docker-compose.yml and Dockerfile) read as data.

No Docker engine is needed: these tests check that the compose file wires the services the
way docs/deployment.md describes and that every command points at code that exists.
"""

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING_APP_SERVICES = ("web", "worker", "beat")


def _compose():
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _service(name):
    return _compose()["services"][name]


def _words(command):
    """A compose command or healthcheck test (string or list) as a list of words."""
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def _environment(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _interpolate(value):
    """Resolve ${VAR}, ${VAR:-default} and ${VAR:?error} as compose would with nothing set."""

    def resolve(match):
        op = match["op"] or ""
        if op.endswith("-"):
            return match["arg"]
        if op.endswith("?"):
            return f"<required {match['name']}>"
        return ""

    return _VARIABLE.sub(resolve, value)


def test_the_seven_services_exist():
    services = _compose()["services"]
    assert {name for name, service in services.items() if not service.get("profiles")} == {
        "mysql",
        "redis",
        "migrate",
        "web",
        "proxy",
        "worker",
        "beat",
    }


def test_clients_reach_gunicorn_only_through_the_proxy():
    web, proxy = _service("web"), _service("proxy")
    template = next(v for v in proxy["volumes"] if "templates" in v).split(":")[0]
    env = _environment(proxy)

    assert "ports" not in web
    assert proxy["ports"] == ["8000:80"]
    assert (REPO_ROOT / template).is_file()
    assert "web:8000" in env["NGINX_UPSTREAM_SERVERS"]
    assert _environment(web)["NUM_PROXIES"] == 1
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"


def test_redis_keeps_an_append_only_file():
    words = _words(_service("redis")["command"])

    assert words[words.index("--appendonly") + 1] == "yes"
    assert words[words.index("--appendfsync") + 1] == "everysec"


def test_app_services_run_one_image_built_from_the_repo():
    services = _compose()["services"]
    builds = {name: services[name].get("build") for name in APP_SERVICES}
    images = {name: services[name].get("image") for name in APP_SERVICES}

    assert len({repr(build) for build in builds.values()}) == 1, builds
    assert len(set(images.values())) == 1 and None not in images.values(), images

    build = builds["web"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (REPO_ROOT / context).resolve() == REPO_ROOT
    assert (REPO_ROOT / context / dockerfile).is_file()


def test_web_runs_gunicorn_on_the_project_wsgi_app_and_config():
    words = _words(_service("web")["command"])

    assert words[0] == "gunicorn"
    wsgi_module = next(w for w in words if w.endswith(":application")).split(":")[0]
    assert (REPO_ROOT / (wsgi_module.replace(".", "/") + ".py")).is_file()
    config_file = words[words.index("--config") + 1]
    assert (REPO_ROOT / config_file).is_file()


def test_worker_and_beat_run_the_project_celery_app():
    for name, subcommand in (("worker", "worker"), ("beat", "beat")):
        words = _words(_service(name)["command"])

        assert words[0] == "celery", name
        assert subcommand in words, name
        app_package = words[words.index("-A") + 1]
        # `celery -A config` finds the app in config/celery.py.
        assert (REPO_ROOT / app_package / "celery.py").is_file(), name


def test_migrate_is_a_one_shot_manage_py_migrate():
    migrate = _service("migrate")
    words = _words(migrate["command"])

    assert words[:3] == ["python", "manage.py", "migrate"]
    assert "--noinput" in words
    assert (REPO_ROOT / "manage.py").is_file()
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"


def test_app_processes_wait_for_migrations_and_redis():
    for name in LONG_RUNNING_APP_SERVICES:
        depends_on = _service(name)["depends_on"]

        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_mysql_and_redis_have_healthchecks():
    mysql_check = _words(_service("mysql")["healthcheck"]["test"])
    redis_check = _words(_service("redis")["healthcheck"]["test"])

    assert "mysqladmin" in mysql_check and "ping" in mysql_check
    assert "redis-cli" in redis_check and "ping" in redis_check


def test_web_healthcheck_calls_healthz_without_curl():
    check = " ".join(_words(_service("web")["healthcheck"]["test"]))

    assert "/healthz" in check
    assert "urllib" in check
    assert "curl" not in check


def test_app_services_run_in_production_against_mysql():
    mysql_env = {k: _interpolate(str(v)) for k, v in _environment(_service("mysql")).items()}

    for name in APP_SERVICES:
        env = _environment(_service(name))
        database_url = urlsplit(_interpolate(env["DATABASE_URL"]))

        assert env["DJANGO_ENV"] == "production", name
        assert database_url.scheme == "mysql", name
        assert database_url.hostname == "mysql", name
        # The app logs in with the very account the mysql service creates.
        assert database_url.username == mysql_env["MYSQL_USER"], name
        assert database_url.password == mysql_env["MYSQL_PASSWORD"], name
        assert database_url.path.lstrip("/") == mysql_env["MYSQL_DATABASE"], name
        assert urlsplit(env["REDIS_URL"]).hostname == "redis", name
        assert "${SECRET_KEY:?" in env["SECRET_KEY"], name


def test_dockerfile_installs_the_mysql_extra_and_runs_as_non_root():
    dockerfile = REPO_ROOT / "Dockerfile"
    assert dockerfile.is_file()
    text = dockerfile.read_text()

    assert re.search(r"pip install [^\n]*\.\[mysql\]", text)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}


# --- The optional monitoring profile (docs/metrics.md) --------------------------------------

MONITORING = ("prometheus", "grafana")


def test_prometheus_and_grafana_start_only_with_the_monitoring_profile():
    services = _compose()["services"]

    assert {name for name, s in services.items() if s.get("profiles")} == set(MONITORING)
    for name in MONITORING:
        assert services[name]["profiles"] == ["monitoring"], name


def _mounted(service, target):
    """The repository file or folder a service mounts at `target`."""
    source = next(v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target)
    return REPO_ROOT / source


def test_prometheus_scrapes_the_web_and_the_worker_with_the_token_from_a_secret():
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    config = yaml.safe_load(_mounted(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_env = _environment(compose["services"]["worker"])

    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    assert prometheus["secrets"] == ["metrics_token"]
    assert "METRICS_TOKEN" in _environment(compose["services"]["web"])
    targets = {
        target for job in jobs.values() for c in job["static_configs"] for target in c["targets"]
    }
    assert targets == {"web:8000", f"worker:{worker_env['METRICS_WORKER_PORT']}"}
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"] == {
            "type": "Bearer",
            "credentials_file": "/run/secrets/metrics_token",
        }
    assert worker_env["PROMETHEUS_MULTIPROC_DIR"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    grafana = _compose()["services"]["grafana"]
    provisioning = _mounted(grafana, "/etc/grafana/provisioning")
    dashboards = _mounted(grafana, "/var/lib/grafana/dashboards")
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    providers = yaml.safe_load((provisioning / "dashboards" / "concerts.yml").read_text())

    (source,) = datasources["datasources"]
    assert (source["type"], source["url"], source["uid"]) == (
        "prometheus",
        "http://prometheus:9090",
        "prometheus",
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert list(dashboards.glob("*.json")), "no dashboard to load"
