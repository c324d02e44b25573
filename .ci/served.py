"""What the CI checks that need a running twinfeed share: a free port, waiting for an
HTTP answer, and `twinfeed run` serving a site folder for the length of a `with`."""

import contextlib
import socket
import subprocess
import time
import urllib.request


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url, seconds=60):
    """The body at `url`, once something answers there."""
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def twinfeed_serving(binary, site):
    """Runs `twinfeed run` on SITE (an inbox/ inside) on a free port; yields its base URL
    once the first build is served, and stops it afterwards."""
    port = free_port()
    (site / "twinfeed.toml").write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\n')
    daemon = subprocess.Popen(
        [str(binary), "run", "--config", str(site / "twinfeed.toml")],
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/")
        yield base
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
