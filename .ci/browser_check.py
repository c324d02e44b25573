#!/usr/bin/env python3
"""Loads twinfeed's pages in a real browser: headless Chromium, driven over the Chrome
DevTools Protocol. For the index and an article page in each language, served by
`twinfeed run`: the page loads with no console error, no uncaught exception and no
failed request; its heading is drawn with real glyphs (for Chinese, from a CJK font,
as Chromium reports the platform fonts it used); and a screenshot is kept.

Usage: browser_check.py TWINFEED_BINARY SITE_FOLDER SCREENSHOT_FOLDER
SITE_FOLDER must hold an inbox/ of articles with both languages (the seeds).
"""

import base64
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import websocket

from served import free_port, twinfeed_serving, wait_http






class Tab:
    """One page target, spoken to over its DevTools websocket."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)


def problems(events):
    """Console errors, exceptions and failed loads among these events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed load: {params.get('errorText')}")
        elif method == "Network.responseReceived":
            status = params.get("response", {}).get("status", 0)
            if status >= 400:
                found.append(f"HTTP {status}: {params['response'].get('url')}")
    return found


def check_page(tab, url, lang, shot):
    tab.events.clear()
    tab.call("Page.navigate", url=url)
    tab.wait_event("Page.loadEventFired")
    time.sleep(0.5)  # late console messages and subresources
    # Drain what arrived meanwhile.
    tab.ws.settimeout(0.2)
    try:
        while True:
            tab.events.append(json.loads(tab.ws.recv()))
    except websocket.WebSocketTimeoutException:
        pass
    tab.ws.settimeout(30)
    found = problems(tab.events)
    if found:
        sys.exit(f"{url}: {found}")
    document = tab.call("DOM.getDocument", depth=-1)
    html_lang = tab.call(
        "Runtime.evaluate", expression="document.documentElement.lang", returnByValue=True
    )["result"]["value"]
    if not html_lang.startswith(lang):
        sys.exit(f"{url}: <html lang={html_lang!r}>, expected {lang}")
    heading = tab.call("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="h1")
    if not heading.get("nodeId"):
        sys.exit(f"{url}: no <h1>")
    text = tab.call(
        "Runtime.evaluate", expression="document.querySelector('h1').textContent", returnByValue=True
    )["result"]["value"]
    fonts = tab.call("CSS.getPlatformFontsForNode", nodeId=heading["nodeId"])["fonts"]
    drawn = sum(font["glyphCount"] for font in fonts)
    if drawn == 0:
        sys.exit(f"{url}: the heading {text!r} drew no glyphs: {fonts}")
    has_han = any("\u3400" <= ch <= "\u9fff" for ch in text)
    if has_han and not any("CJK" in font["familyName"] for font in fonts):
        sys.exit(f"{url}: the Chinese heading {text!r} was not drawn from a CJK font: {fonts}")
    png = base64.b64decode(tab.call("Page.captureScreenshot", format="png")["data"])
    shot.write_bytes(png)
    families = ", ".join(sorted({font["familyName"] for font in fonts}))
    print(f"{url}: no errors; heading {text[:30]!r} drawn with {families}; {shot} ({len(png)} bytes)")
    return has_han


def main():
    binary, site, shots = (pathlib.Path(arg).resolve() for arg in sys.argv[1:4])
    shots.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp()
    browser = None
    try:
        with twinfeed_serving(binary, site) as base:
            debug_port = free_port()
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            browser = subprocess.Popen(
                [
                    chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                    f"--remote-debugging-port={debug_port}", "--window-size=412,915",
                    "about:blank",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            targets = json.loads(wait_http(f"http://127.0.0.1:{debug_port}/json/list"))
            page = next(target for target in targets if target["type"] == "page")
            tab = Tab(page["webSocketDebuggerUrl"])
            for domain in ("Page", "Runtime", "Log", "Network", "DOM", "CSS"):
                tab.call(f"{domain}.enable")
            public = site / "public"
            chinese = 0
            for lang in ("zh", "en"):
                article = next(
                    path.name
                    for path in sorted((public / lang).glob("*.html"))
                    if path.name != "index.html"
                )
                for name, path in (("index", "index.html"), ("article", article)):
                    shot = shots / f"{lang}-{name}.png"
                    chinese += check_page(tab, f"{base}/{lang}/{path}", lang, shot)
            if chinese < 2:
                sys.exit("fewer than two pages had a Chinese heading to check glyphs on")
            print("pages load in Chromium with no errors; Chinese glyphs drawn from a CJK font")
    finally:
        if browser:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
