"""Screenshots of the Prefect UI and of a terminal, taken by a real headless Chromium (Debian's).

Driven over the DevTools protocol (a websocket on 127.0.0.1): navigate, wait until the page shows what
it must (a JavaScript condition), then capture. The UI is a single-page app: a plain `--screenshot`
captures its loading screen.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from websockets.sync.client import connect


class BrowserError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HeadlessChromium:
    """One headless Chromium for a few screenshots; a context manager that always stops it."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise BrowserError("no chromium on PATH; scripts/bootstrap installs Debian's chromium")
        self.width, self.height = width, height
        self.profile = tempfile.TemporaryDirectory(prefix="flink-runbook-chromium-", ignore_cleanup_errors=True)
        self.port = _free_port()
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--remote-debugging-port={self.port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes (renderers, crash handler) are stopped with it
        )
        self._ids = 0

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        # A helper may still be writing its last file into the profile as it dies: a throwaway directory.
        shutil.rmtree(self.profile.name, ignore_errors=True)

    def _page_socket_url(self, timeout_s: float = 20) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode}")
            try:
                tabs = requests.get(f"http://127.0.0.1:{self.port}/json", timeout=2).json()
                return next(t["webSocketDebuggerUrl"] for t in tabs if t.get("type") == "page")
            except (requests.RequestException, StopIteration, ValueError):
                time.sleep(0.2)
        raise BrowserError(f"chromium's DevTools did not answer on 127.0.0.1:{self.port} within {timeout_s:.0f}s")

    def screenshot(self, url: str, out: Path, ready_js: str, timeout_s: float = 60, full_page: bool = True) -> Path:
        """Open `url`, wait until `ready_js` is true, capture the page (all of it with full_page) as PNG."""
        with connect(self._page_socket_url(), max_size=64 * 2**20, proxy=None, open_timeout=10) as ws:

            def call(method: str, **params: object) -> dict:
                self._ids += 1
                ws.send(json.dumps({"id": self._ids, "method": method, "params": params}))
                while True:  # events of other kinds are not subscribed to, but skip anything that is not ours
                    message = json.loads(ws.recv(timeout=timeout_s))
                    if message.get("id") == self._ids:
                        if "error" in message:
                            raise BrowserError(f"{method}: {message['error']}")
                        return message.get("result", {})

            call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                 mobile=False)
            call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout_s
            while True:
                value = call("Runtime.evaluate", expression=f"Boolean({ready_js})", returnByValue=True)
                if value.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise BrowserError(f"{url} did not show what was waited for within {timeout_s:.0f}s: {ready_js}")
                time.sleep(0.5)
            time.sleep(1.0)  # images decoded, layout settled
            params: dict = {"format": "png"}
            if full_page:
                height = min(call("Page.getLayoutMetrics")["cssContentSize"]["height"], 6000)
                clip = {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}
                params |= {"captureBeyondViewport": True, "clip": clip}
            shot = call("Page.captureScreenshot", **params)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out


ANSI_STYLES = {"1": "font-weight:bold", "2": "opacity:0.6", "31": "color:#f56565", "32": "color:#48bb78",
               "33": "color:#ecc94b"}


def terminal_html(text: str, title: str = "flink-runbook status") -> str:
    """A terminal window showing `text` with its ANSI colours (the few that status_lines uses)."""
    out, open_spans = [], 0
    for part in re.split(r"(\033\[[0-9;]*m)", text):
        match = re.fullmatch(r"\033\[([0-9;]*)m", part)
        if not match:
            out.append(html.escape(part))
        elif match.group(1) in ("0", ""):
            out.append("</span>" * open_spans)
            open_spans = 0
        else:
            out.append(f'<span style="{ANSI_STYLES.get(match.group(1), "")}">')
            open_spans += 1
    body = "".join(out) + "</span>" * open_spans
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        "<body style='margin:0;background:#1a202c'><pre id='terminal' style='margin:16px;padding:16px;"
        "background:#0d1117;color:#e2e8f0;white-space:pre-wrap;font:14px/1.45 DejaVu Sans Mono,monospace;"
        "border-radius:8px'>"
        f"{body}</pre></body></html>"
    )
