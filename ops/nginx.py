"""The reverse proxy of the production shape, run natively (bin/bench, bin/chaos, tests) from
the same template docker-compose.yml gives the official nginx image: ops/nginx/
concerts.conf.template. It listens where asked, proxies to the given gunicorns and keeps
every file (pid, temporary files, error log) in a folder of its own, so it needs no root and
leaves nothing behind."""

import shutil
import signal
import subprocess
import time
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "concerts.conf.template"

MAIN_CONFIG = """\
daemon off;
worker_processes 1;
pid $folder/nginx.pid;
error_log $folder/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $folder/client_body;
    proxy_temp_path $folder/proxy;
    fastcgi_temp_path $folder/fastcgi;
    uwsgi_temp_path $folder/uwsgi;
    scgi_temp_path $folder/scgi;
    include $folder/concerts.conf;
}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )


def render(
    *, folder: Path, listen: int, upstreams: list[str], read_timeout: str | None = None
) -> Path:
    """Write the proxy's configuration into `folder`; returns the main file. `upstreams`:
    host:port of each gunicorn. `read_timeout` replaces the template's proxy_read_timeout
    (tests of the 504 answer)."""
    folder.mkdir(parents=True, exist_ok=True)
    # One line: the template's comments name the placeholder too, and a line break there
    # would end the comment.
    servers = " ".join(f"server {address} max_fails=0;" for address in upstreams)
    site = TEMPLATE.read_text()
    if read_timeout is not None:
        site = site.replace("proxy_read_timeout 30s;", f"proxy_read_timeout {read_timeout};")
    site = site.replace("${NGINX_LISTEN}", f"127.0.0.1:{listen}")
    site = site.replace("${NGINX_UPSTREAM_SERVERS}", servers)
    (folder / "concerts.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text(Template(MAIN_CONFIG).substitute(folder=folder))
    return main


class Nginx:
    """nginx in the foreground, as a child process: start(), then stop()."""

    def __init__(
        self, *, folder: Path, listen: int, upstreams: list[str], read_timeout: str | None = None
    ):
        self.folder, self.listen, self.upstreams = folder, listen, upstreams
        self.read_timeout = read_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen}"

    def start(self, timeout: float = 10) -> "Nginx":
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        config = render(
            folder=self.folder,
            listen=self.listen,
            upstreams=self.upstreams,
            read_timeout=self.read_timeout,
        )
        self.process = subprocess.Popen(
            [
                binary,
                "-c",
                str(config),
                "-p",
                str(self.folder),
                "-e",
                str(self.folder / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not (self.folder / "nginx.pid").exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx did not start: {self.process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not start in time")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
