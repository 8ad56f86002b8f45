"""Open a local page in headless Chromium (Debian's) and report what a person would see go wrong:
console errors, uncaught exceptions, failed loads, and images that did not render.

Talks the DevTools protocol over a websocket; no browser download, no network.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--disable-sync", "--disable-component-update", "--no-first-run",
         "--no-default-browser-check", "--remote-debugging-port=0"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLoad:
    errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # src, complete, naturalWidth


def open_page(path: Path, timeout: float = 30.0) -> PageLoad:
    from websockets.sync.client import connect

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        # Its own process group, so the renderer and zygote children go with it.
        proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            url = _devtools_url(proc, timeout)
            with connect(url, max_size=None, open_timeout=timeout) as ws:
                return _load(ws, path.resolve().as_uri(), timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _devtools_url(proc, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("chromium did not start (no DevTools endpoint)")


def _load(ws, url: str, timeout: float) -> PageLoad:
    ids = itertools.count(1)
    events: list[dict] = []

    def call(method, session=None, **params):
        msg_id = next(ids)
        ws.send(json.dumps({"id": msg_id, "method": method, "params": params,
                            **({"sessionId": session} if session else {})}))
        while True:
            msg = json.loads(ws.recv(timeout=timeout))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            events.append(msg)

    target = call("Target.createTarget", url="about:blank")["targetId"]
    session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        call(f"{domain}.enable", session)
    call("Page.navigate", session, url=url)
    deadline = time.time() + timeout
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        if time.time() > deadline:
            raise TimeoutError(f"{url} did not finish loading")
        events.append(json.loads(ws.recv(timeout=timeout)))
    result = call("Runtime.evaluate", session, returnByValue=True, expression=(
        "JSON.stringify([...document.images].map(i => ({src: i.getAttribute('src'), "
        "complete: i.complete, naturalWidth: i.naturalWidth})))"))
    load = PageLoad(images=json.loads(result["result"]["value"]))
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            load.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            load.errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            load.errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            load.errors.append(f"network: {params.get('errorText')}")
    return load
