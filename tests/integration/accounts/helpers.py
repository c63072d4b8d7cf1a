"""Helpers for the login and session tests: logging in, cookies, real web processes."""

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import ROOT, csrf_token_from, free_port, worker_env

SESSION_COOKIE = "session"
REMEMBER_COOKIE = "remember_token"


def log_in(client, email: str, password: str, remember: bool = False, address: str | None = None):
    """Post the login form from ``client`` (a Flask test client); returns the response."""
    environ = {"REMOTE_ADDR": address} if address else {}
    token = csrf_token_from(client.get("/login", environ_base=environ).get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data, environ_base=environ)


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found is not None else None


def client_with(app, **cookies):
    """A new test client that sends only the given cookies, as a copied cookie would be replayed."""
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def is_logged_in(client) -> bool:
    response = client.get("/")
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
        return False
    assert response.status_code == 200
    return True


@contextmanager
def web_processes(count: int, log_dir: Path):
    """``count`` real ``flask run`` processes on the test database and Redis; yields their base URLs."""
    procs, urls = [], []
    try:
        for n in range(count):
            port = free_port()
            log_file = open(log_dir / f"web-{n}.log", "wb")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "run",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-reload",
                ],
                cwd=ROOT,
                env=worker_env(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            proc.log_file = log_file
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_until_up(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.log_file.close()


def _wait_until_up(url: str, proc, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the web process at {url} exited with {proc.returncode}")
        try:
            if requests.get(url + "/login", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the web process at {url} did not answer in {timeout} s")


class Browser:
    """A ``requests`` session on one web process, posting the login form with its CSRF token."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.csrf = csrf_token_from(self.http.get(url + "/login", timeout=10).text)

    def log_in(self, email: str, password: str) -> requests.Response:
        return self.http.post(
            self.url + "/login",
            data={"email": email, "password": password, "csrf_token": self.csrf},
            allow_redirects=False,
            timeout=30,
        )
