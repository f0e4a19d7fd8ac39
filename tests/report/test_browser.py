"""The report in a real browser: headless Chromium over the DevTools protocol (stdlib only).

No Selenium and no browser download: the Debian ``chromium`` package is driven through
``--remote-debugging-port`` with a minimal WebSocket client, which is enough to navigate,
read console errors and exceptions, inspect the DOM and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    for candidate in (os.environ.get("DATAAUDIT_CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol: text frames, client-side masking."""

    def __init__(self, url: str, *, timeout: float):
        parsed = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall(
            (f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode("ascii")
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head[:200]!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("DevTools connection closed")
        self.buffer += chunk

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _send_frame(self, opcode: int, data: bytes) -> None:
        header = bytearray([0x80 | opcode])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 1 << 16:
            header += bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + len(data).to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
        self.sock.sendall(bytes(header) + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(self._read(2), "big")
            elif size == 127:
                size = int.from_bytes(self._read(8), "big")
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(size)
            if mask:
                payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools connection closed")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode("utf-8")

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class DevTools:
    """Calls and events of one page target."""

    def __init__(self, socket_: WebSocket):
        self.socket = socket_
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, *, since: int = 0, timeout: float = 15.0) -> dict[str, Any]:
        """The first ``method`` event at or after index ``since`` of :attr:`events`."""
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if event["method"] == method:
                    return event
            seen = len(self.events)
            message = json.loads(self.socket.receive())
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no {method} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, failed loads, CSP violations and dialogs (alert!)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails', {}).get('exception', {}).get('description') or params}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console.{params['type']}: {[a.get('value', a.get('description')) for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog: {params.get('message')}")
        return found


class Chromium:
    """A headless Chromium process; ``page()`` attaches to its first tab."""

    def __init__(self, *, binary: str, width: int = 1280, height: int = 900, timeout: float = 15.0):
        self.binary = binary
        self.width = width
        self.height = height
        self.timeout = timeout

    def __enter__(self) -> "Chromium":
        self.profile_ = tempfile.mkdtemp(prefix="dataaudit-chromium-")
        self.log_ = open(Path(self.profile_) / "stderr.log", "wb")
        self.process_ = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile_}", f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self.log_,
        )
        port_file = Path(self.profile_) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.process_.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"chromium did not start: {(Path(self.profile_) / 'stderr.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        self.port_ = int(port_file.read_text().splitlines()[0])
        return self

    def page(self) -> DevTools:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port_}/json/list", timeout=self.timeout) as response:
            targets = json.load(response)
        page = next(target for target in targets if target.get("type") == "page")
        self.socket_ = WebSocket(page["webSocketDebuggerUrl"], timeout=self.timeout)
        tools = DevTools(self.socket_)
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        return tools

    def load(self, tools: DevTools, path: Path) -> float:
        """Navigate to ``path``; milliseconds from navigation start to the end of the load event."""
        before = len(tools.events)
        tools.call("Page.navigate", url=Path(path).resolve().as_uri())
        tools.wait_for("Page.loadEventFired", since=before, timeout=self.timeout)
        return float(tools.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; })()"))

    def __exit__(self, *exc) -> None:
        if getattr(self, "socket_", None) is not None:
            self.socket_.close()
        process = getattr(self, "process_", None)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.log_.close()
        shutil.rmtree(self.profile_, ignore_errors=True)


def screenshot(tools: DevTools, path: Path, *, full_page: bool = True) -> Path:
    params: dict[str, Any] = {"format": "png"}
    if full_page:
        metrics = tools.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1})
    data = tools.call("Page.captureScreenshot", **params)["data"]
    path.write_bytes(base64.b64decode(data))
    return path


@pytest.fixture(scope="module")
def chromium_binary() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return binary


@pytest.mark.slow
def test_report_opens_in_chromium_without_errors(chromium_binary, tmp_path):
    from dataaudit.report.html import write_report
    from tests.report.test_html import HOSTILE, synthetic_result

    evil = " ".join(HOSTILE)
    report = write_report(synthetic_result(3000, n_clusters=12, hostile=True), tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        load_ms = browser.load(tools, report)
        assert 0 < load_ms < 15_000

        # Interact: hover across the map until a tooltip shows, colour by issue, open a cluster.
        box = tools.evaluate("(() => { const c = document.getElementById('map-canvas'); c.scrollIntoView(); "
                             "const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
        tip_shown = False
        for fx, fy in [(fx / 8, fy / 4) for fy in (2, 1, 3) for fx in range(1, 8)]:
            tools.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0] + fx * box[2], y=box[1] + fy * box[3])
            tip_shown = tools.evaluate(
                "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(!document.getElementById('map-tip').hidden))))"
            )
            if tip_shown:
                break
        tools.evaluate("document.querySelector('input[value=issue]').click()")
        tools.evaluate("document.querySelector('#clusters-table tbody tr').click()")
        tools.evaluate("window.scrollTo(0, 0)")
        screenshot(tools, tmp_path / "report.png")
        if os.environ.get("DATAAUDIT_SCREENSHOT_DIR"):
            shutil.copy(tmp_path / "report.png", Path(os.environ["DATAAUDIT_SCREENSHOT_DIR"]) / "report.png")

        dom = tools.evaluate(
            "(() => ({"
            " scripts: document.scripts.length,"
            " imgs: document.getElementsByTagName('img').length,"
            " handlers: Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,"
            " cells: Array.from(document.querySelectorAll('td, .txt, .tip div, h3')).map(e => e.textContent),"
            " clusterRows: document.querySelectorAll('#clusters-table tbody tr').length,"
            " checkTables: document.querySelectorAll('.js-check table').length,"
            " groups: document.querySelectorAll('.group .member').length,"
            " detail: document.getElementById('cluster-detail').textContent.length,"
            "}))()"
        )
        problems = tools.problems()
    assert problems == []
    assert (dom["scripts"], dom["imgs"], dom["handlers"]) == (2, 0, 0)
    assert evil in dom["cells"]  # a prompt cell holds the attack string, as text
    assert dom["clusterRows"] == 13 and dom["checkTables"] == 5 and dom["groups"] > 0 and dom["detail"] > 0
    assert tip_shown
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_overview_works_without_javascript(chromium_binary, tmp_path):
    from dataaudit.report.html import write_report
    from tests.report.test_html import synthetic_result

    report = write_report(synthetic_result(200), tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        tools.call("Emulation.setScriptExecutionDisabled", value=True)
        browser.load(tools, report)
        overview = tools.evaluate("document.getElementById('overview').innerText")
        coverage = tools.evaluate("document.getElementById('coverage').innerText")
        hidden = tools.evaluate("getComputedStyle(document.querySelector('.needs-js')).display")
    assert "records" in overview and "200" in overview and "duplicate" in overview
    assert "refund policy" in coverage
    assert hidden == "none"


@pytest.mark.slow
def test_plugin_section_and_machine_columns_in_chromium(chromium_binary, tmp_path):
    from dataaudit.checks.base import REGISTRY, register_check
    from dataaudit.report.html import write_report
    from tests.report.test_sections import EVIL, LongPrompt, audited_with_plugin

    register_check(LongPrompt)
    try:
        report = write_report(audited_with_plugin(LongPrompt(max_chars=100)), tmp_path / "report.html")
    finally:
        REGISTRY.pop(LongPrompt.name, None)
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        browser.load(tools, report)
        dom = tools.evaluate(
            "(() => { const s = document.getElementById('check-5'); return {"
            " heads: Array.from(s.querySelectorAll('.js-check th')).map(e => e.textContent),"
            " bars: s.querySelectorAll('.check-extra svg rect').length,"
            " marked: Array.from(s.querySelectorAll('.check-extra mark')).map(e => e.textContent),"
            " svgWidth: s.querySelector('.check-extra svg').getBoundingClientRect().width,"
            " scripts: document.scripts.length }; })()"
        )
        problems = tools.problems()
    assert problems == []
    assert {"kind", "suggested value"} <= set(dom["heads"])
    assert dom["bars"] == 8 and dom["marked"] == [EVIL[:100], EVIL[100:] + " and then some more words"]
    assert dom["svgWidth"] > 100 and dom["scripts"] == 2


@pytest.mark.slow
def test_chat_check_sections_in_chromium(chromium_binary, tmp_path):
    """The contamination, turns, length and language sections of a real audit, with hostile text."""
    import json

    from dataaudit.embed import HashingEmbedder
    from dataaudit.io.load import from_records
    from dataaudit.report.html import write_report
    from dataaudit.runner import audit
    from tests.conftest import FixedClusterPipeline

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    leaked = f"Explain in two sentences why the sky looks blue during the day but red at sunset {evil} please."
    def chat(*turns):
        return {"messages": [{"role": role, "content": text} for role, text in turns]}
    records = [chat(("user", f"How do I sort a list of {n} numbers in Python without changing the original list?"),
                    ("assistant", f"Use sorted(values): it returns a new list of the {n} numbers and leaves the original as it was."))
               for n in range(3, 15)]
    records += [
        chat(("user", leaked), ("assistant", "Blue light scatters more in the air; at sunset light crosses more air.")),
        chat(("user", "First question about trains."), ("user", "Second question about trains."),
             ("assistant", "Trains run on rails.")),
        chat(("assistant", "I speak first here."), ("user", "Why?"), ("assistant", "Because the data is broken.")),
        chat(("user", "What is the weather usually like in Paris during the spring months of the year?"),
             ("assistant", "Au printemps, il fait généralement doux à Paris, avec des averses fréquentes et des "
                           "températures qui montent peu à peu au fil des semaines.")),
        chat(("user", "Write a long story."), ("assistant", " ".join(["The story goes on and on."] * 60) + evil)),
    ]
    eval_file = tmp_path / "benchmark.jsonl"
    eval_file.write_text(json.dumps({"prompt": leaked, "completion": ""}) + "\n"
                         + json.dumps({"prompt": "Name three rivers of Africa.", "completion": ""}) + "\n")
    result = audit(from_records(records), checks={"contamination": {}, "turns": {}, "length": {"max_seq_length": 64},
                                                  "language": {}},
                   eval_sets=[eval_file], embedder=HashingEmbedder(dim=64), cluster_pipeline=FixedClusterPipeline())
    flagged = set(result.findings.get_column("check").to_list())
    assert flagged == {"contamination", "turns", "length", "language"}
    report = write_report(result, tmp_path / "report.html")
    with Chromium(binary=chromium_binary) as browser:
        tools = browser.page()
        browser.load(tools, report)
        dom = tools.evaluate(
            "(() => { const ids = Array.from(document.querySelectorAll('section[id^=check-]')).map(s => s.id);"
            " return { sections: ids.length,"
            " extras: document.querySelectorAll('.check-extra').length,"
            " marked: Array.from(document.querySelectorAll('.check-extra mark')).map(e => e.textContent),"
            " bars: document.querySelectorAll('.check-extra svg rect').length,"
            " imgs: document.getElementsByTagName('img').length,"
            " scripts: document.scripts.length }; })()"
        )
        problems = tools.problems()
    assert problems == []
    assert dom["sections"] == 4 and dom["extras"] == 4
    assert any(evil in text for text in dom["marked"])  # the matched span, shown as text
    assert dom["bars"] > 0 and dom["imgs"] == 0 and dom["scripts"] == 2
