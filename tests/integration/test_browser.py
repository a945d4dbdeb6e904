"""The smoke run as a reviewer sees it, in a real headless Chromium: the MLflow UI and the eval report.

Chromium is Debian's ``chromium`` package (``scripts/install-browser.sh``, run by setup), driven over
the DevTools protocol on a pipe (``--remote-debugging-pipe``): no driver, no browser download, only
the standard library. The MLflow UI is a React app, so every check polls the rendered page until it
holds what it should (or a deadline passes). Screenshots go to the test artifacts directory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
PAGE_TIMEOUT = 120.0  # seconds for a page to show what it should; generous for a loaded 2-core machine


def chromium_binary() -> str | None:
    """``$ENCORE_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    chosen = os.environ.get("ENCORE_CHROMIUM")
    if chosen:
        return chosen
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((path for path in map(shutil.which, names) if path), None)


class Chromium:
    """A headless Chromium with one page, driven over the DevTools protocol on a pipe.

    Chromium reads commands from fd 3 and writes replies and events to fd 4, each a JSON message
    ended by a NUL byte. One page target is attached in flat mode, so page commands carry its
    ``sessionId``.
    """

    def __init__(self, binary: str, profile: Path, width: int = 1600, height: int = 1000) -> None:
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def onto_fds_3_and_4() -> None:  # runs in the child between fork and exec
            r = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            w = fcntl.fcntl(replies_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespaces for the sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args,
            preexec_fn=onto_fds_3_and_4,
            close_fds=False,  # keep fds 3 and 4; every other fd Python opened is close-on-exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_r)
        os.close(replies_w)
        self._pending = b""
        self._last_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        """Send one command and return its result, skipping the events that arrive before it."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._pending:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium exited (code {self.process.poll()}) during {method}")
                self._pending += chunk
            raw, self._pending = self._pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method: str, **params: Any) -> dict:
        return self.call(method, self._session, **params)

    def open(self, url: str) -> None:
        self.page("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        reply = self.page("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = PAGE_TIMEOUT) -> Any:
        """Poll an expression until it is truthy; returns its last value (falsy on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # the page may be between documents
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        clip = {}
        if full_page:  # the whole document, not only the window
            size = self.page("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}
        shot = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=full_page, **clip)
        path.write_bytes(base64.b64decode(shot["data"]))
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "no chromium on PATH (nor $ENCORE_CHROMIUM): scripts/install-browser.sh installs Debian's "
            "chromium, which needs apt-get and root"
        )
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_ui(smoke: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow ui`` on 127.0.0.1 over the smoke run's store; its URL. Stopped with its whole process group."""
    workdir = tmp_path_factory.mktemp("mlflow-ui")  # the server's own files (none expected) land here
    port = _free_port()
    log = (workdir / "mlflow-ui.log").open("w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job runner
    args = ["ui", "--backend-store-uri", smoke["uri"], "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        # One worker: enough for one browser, and 3 fewer processes than the default on 2 cores.
        [sys.executable, "-m", "mlflow", *args, "--workers", "1"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: uvicorn's workers stop with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                if reply.status == 200:
                    break
            assert server.poll() is None, (workdir / "mlflow-ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow ui did not answer /health in 180 s"
            time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _runs(smoke: dict) -> tuple[str, dict[str, Any]]:
    client = smoke["client"]
    experiment = client.get_experiment_by_name("encore-smoke")
    runs = client.search_runs([experiment.experiment_id])
    return experiment.experiment_id, {r.data.tags["encore.stage"]: r for r in runs}


# MLflow 3's UI opens an assistant side panel over a third of the page: closed for the screenshots.
CLOSE_ASSISTANT = "document.querySelector('button[aria-label=Close]')?.click()"


def test_mlflow_ui_shows_the_runs_and_their_metrics(
    smoke: dict, mlflow_ui: str, browser: Chromium, test_artifacts: Path
) -> None:
    experiment_id, runs = _runs(smoke)
    names = sorted(r.info.run_name for r in runs.values())

    # The runs table: the pipeline's parent run, then, expanded, a child run per stage.
    browser.open(f"{mlflow_ui}/#/experiments/{experiment_id}/runs")
    links = "Array.from(document.querySelectorAll('[role=gridcell] a')).map(a => a.innerText.trim())"
    parent = json.dumps(runs["pipeline"].info.run_name)
    expand = (
        f"(() => {{ const a = Array.from(document.querySelectorAll('[role=gridcell] a'))"
        f".find(a => a.innerText.trim() === {parent}); "
        f"a?.closest('[role=gridcell]').querySelector('button')?.click(); return !!a; }})()"
    )
    assert browser.wait_for(expand), f"the runs page never showed the pipeline run:\n{browser.text()[:2000]}"
    shown = browser.wait_for(f"(l => {json.dumps(names)}.every(n => l.includes(n)) && l)({links})")
    browser.evaluate(CLOSE_ASSISTANT)
    browser.screenshot(test_artifacts / "mlflow-runs.png")
    assert shown, f"runs {names}, shown: {browser.evaluate(links)}"
    assert f"{len(runs)} matching runs" in browser.text()

    # The eval run's page lists every metric it logged, with its value.
    evaluation = runs["eval"]
    browser.open(f"{mlflow_ui}/#/experiments/{experiment_id}/runs/{evaluation.info.run_id}")
    rows = (  # the rows of the table headed "Metric" (the parameters table has two columns too)
        "Array.from(Array.from(document.querySelectorAll('[role=table]'))"
        ".find(t => t.querySelector('[role=columnheader]')?.innerText.trim() === 'Metric')"
        "?.querySelectorAll('[role=row]') ?? [])"
        ".map(r => Array.from(r.querySelectorAll('[role=cell]')).map(c => c.innerText.trim()))"
        ".filter(cells => cells.length === 2)"
    )
    logged = evaluation.data.metrics
    table = browser.wait_for(f"(rows => rows.length >= {len(logged)} && rows)({rows})")
    browser.evaluate(CLOSE_ASSISTANT)
    browser.evaluate(
        "Array.from(document.querySelectorAll('[role=columnheader]'))"
        ".find(h => h.innerText.trim() === 'Metric')?.scrollIntoView()"
    )
    browser.screenshot(test_artifacts / "mlflow-eval-run.png")
    assert table, f"the eval run's page never listed its {len(logged)} metrics:\n{browser.text()[:3000]}"
    shown_metrics = {name: float(value) for name, value in table}
    assert shown_metrics.keys() == logged.keys()
    for name, value in logged.items():
        assert shown_metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_eval_report_shows_its_plots(
    smoke: dict, browser: Chromium, test_artifacts: Path, tmp_path: Path
) -> None:
    _, runs = _runs(smoke)
    # The report as a reviewer downloads it from the eval run, not the stage's local copy.
    report = Path(smoke["client"].download_artifacts(runs["eval"].info.run_id, "report", str(tmp_path)))
    pages = sorted(report.rglob("*.html"))
    plots = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in report.rglob("*.png")}
    assert pages, (
        f"the eval run logged no HTML report under report/: {sorted(p.name for p in report.iterdir())}"
    )
    assert plots, "the eval run logged no plots (PNG) under report/"

    browser.open(pages[0].as_uri())
    images = browser.wait_for(
        "document.readyState === 'complete' && document.images.length > 0 && "
        "Array.from(document.images).every(i => i.complete) && "
        "Array.from(document.images).map(i => ({src: i.src, width: i.naturalWidth, "
        "height: i.naturalHeight, shown: i.getBoundingClientRect().width}))"
    )
    browser.screenshot(test_artifacts / "eval-report.png", full_page=True)
    assert images, "the report shows no images"
    shown = set()
    for image in images:
        head, _, data = image["src"].partition(",")
        assert head == "data:image/png;base64", head[:60]  # self-contained: plots inlined
        assert image["width"] > 0 and image["height"] > 0, "an image did not decode"
        assert image["shown"] > 0, "an image is not laid out"
        shown.add(hashlib.sha256(base64.b64decode(data)).hexdigest())
    # Every plot the eval run logged is on the page, byte for byte.
    assert not set(plots) - shown, f"plots not in the report: {sorted(plots[h] for h in set(plots) - shown)}"
