"""MCP Apps: the tools/list links, the ui:// resources, and each app in a real headless Chromium.

The browser tests embed each app the way an MCP Apps host does (tests/apps_host.html: a sandboxed
iframe under the spec's default CSP, JSON-RPC over postMessage), fed by a running `poe-mcp serve
--transport http` against the fake Poe, and check what a person sees. The host's side of the bridge
is @modelcontextprotocol/ext-apps' own AppBridge, loaded in the page unbundled from .ci/node (see
tests/ext_apps_importmap.mjs); without that package the page's hand-written bridge stands in, and
the tests say so. Screenshots go to tests/artifacts/. Without chromium, chromedriver or selenium the
browser tests skip and say so.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import struct
import subprocess
import threading
import time
import warnings
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
import uvicorn
from conftest import connect
from fakepoe import FakePoe, Reply
from mcp import Client
from mcp.client.extension import advertise
from servers import TOKEN, free_port, http_replica

from poe_mcp import apps
from poe_mcp.config import Settings
from poe_mcp.http import build_http_app
from poe_mcp.icons import SERVER_SVG
from poe_mcp.server import build_server

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"
NODE_MODULES = HERE.parent / ".ci" / "node" / "node_modules"
EXT_APPS = NODE_MODULES / "@modelcontextprotocol" / "ext-apps"
# What the media viewer's "Variation" adds to the prompt (media.html's VARIATION).
VARIATION = "\n\nVariation {n}: keep the subject and style, change the composition and details."
DECLARES_APPS = advertise(apps.EXTENSION_ID, {"mimeTypes": [apps.APP_MIME_TYPE]})


def wire(tools: Any) -> list[dict[str, Any]]:
    return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools.tools]


# -- the protocol: tools/list and resources/read ------------------------------------------------


@pytest.mark.anyio
async def test_tools_list_links_apps_only_for_clients_that_declare_the_extension(
    settings: Settings, mode: str
) -> None:
    async with Client(build_server(settings), mode=mode, extensions=[DECLARES_APPS]) as client:
        declaring = wire(await client.list_tools())
    async with connect(settings, mode) as client:
        plain = wire(await client.list_tools())
    bare = build_server(settings)
    bare.middleware.remove(apps.link_tools_for_app_hosts)  # the server as it was before apps
    async with Client(bare, mode=mode) as client:
        before = wire(await client.list_tools())

    links = {t["name"]: t["_meta"]["ui"]["resourceUri"] for t in declaring if "_meta" in t}
    assert links == {name: uri for name, uri in apps.TOOL_APPS.items() if name in links}
    assert {"generate_image", "generate_audio", "generate_video", "list_models"} <= set(links)
    assert {"get_model_info", "get_usage"} <= set(links) and "ask_poe" not in links
    assert json.dumps(plain) == json.dumps(before), "a client without the extension sees no change"
    unlinked = [{k: v for k, v in t.items() if k != "_meta"} for t in declaring]
    assert unlinked == plain, "the links are the only difference"


@pytest.mark.anyio
async def test_each_app_is_one_self_contained_html_resource(settings: Settings, mode: str) -> None:
    async with Client(build_server(settings), mode=mode, extensions=[DECLARES_APPS]) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        pages = {uri: (await client.read_resource(uri)).contents for uri in apps.APPS}
    for uri, contents in pages.items():
        [page] = contents
        assert str(page.uri) == uri and isinstance(page.text, str)
        assert listed[uri].mime_type == page.mime_type == "text/html;profile=mcp-app"
        assert page.text.startswith("<!doctype html>") and "<script>" in page.text
        assert "<!-- inline" not in page.text, "every shared source is inlined"
        assert page.text.count(apps.ICON) == 1 and SERVER_SVG[-60:] in apps.ICON, (
            "the server's own icon heads each app"
        )
        # No origin at all: the only URL is SVG's namespace name, which is never fetched.
        assert set(re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>)]*", page.text)) <= {
            "http://www.w3.org/2000/svg"
        }
        assert not re.search(r"""(src|href|action|poster)\s*=\s*["']?//""", page.text), (
            "no protocol-relative URL either"
        )
        assert not re.search(
            r"<(script|link|img|iframe|video|audio|source)[^>]+(src|href)=", page.text
        )
        assert not re.search(r"@import|url\(", page.text), "styles load nothing"
        assert "innerHTML" not in page.text and "insertAdjacentHTML" not in page.text
        assert "eval(" not in page.text and "new Function" not in page.text


# The extension declared the way a host does it on each era's wire.
CLIENT_INFO = {"name": "raw-client", "version": "1"}
APPS_CAPABILITY = {"extensions": {apps.EXTENSION_ID: {"mimeTypes": [apps.APP_MIME_TYPE]}}}


def raw_list(url: str, method: str, era: str, declares_apps: bool = False) -> bytes:
    """One list request as a client sends it over streamable HTTP; the answer's bytes as they came."""
    capabilities = APPS_CAPABILITY if declares_apps else {}
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": era,
    }
    if era == "2026-07-28":  # stateless: who the client is travels in every request's _meta
        headers["mcp-method"] = method
        params: dict[str, Any] = {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": era,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": capabilities,
            }
        }
        body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
        return httpx2.post(url, json=body, headers=headers, timeout=30).content
    hello = {"protocolVersion": era, "capabilities": capabilities, "clientInfo": CLIENT_INFO}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
    answer = httpx2.post(url, json=initialize, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    session = answer.headers.get("mcp-session-id")
    if session:
        headers["mcp-session-id"] = session
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    httpx2.post(url, json=initialized, headers=headers, timeout=30)
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {}}
    return httpx2.post(url, json=body, headers=headers, timeout=30).content


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI app on a loopback port in a thread, lifespan and all; yields its /mcp URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
def test_a_client_without_the_extension_gets_the_lists_of_before_byte_for_byte(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, era: str
) -> None:
    product = build_http_app(settings, build_server(settings))
    from mcp.server.apps import Apps

    monkeypatch.setattr(apps, "extension", Apps)  # no ui:// resources: the server before the apps
    before = build_server(settings)
    before.middleware.remove(apps.link_tools_for_app_hosts)
    with serving(product) as now, serving(build_http_app(settings, before)) as then:
        for method in ("tools/list", "resources/list"):
            plain = raw_list(now, method, era)
            assert b'"result"' in plain and plain == raw_list(then, method, era), method
        declaring = raw_list(now, "tools/list", era, declares_apps=True)
        listed = raw_list(now, "resources/list", era, declares_apps=True)
    assert b"ui://" not in plain
    if era == "2026-07-28":  # the legacy era keeps what initialize declared per session
        assert declaring.count(b'"resourceUri"') == sum(
            f'"name":"{name}"'.encode() in declaring for name in apps.TOOL_APPS
        )
        assert all(uri.encode() in listed for uri in apps.APPS)


@pytest.mark.anyio
async def test_the_apps_are_listed_only_to_a_client_that_declares_them(
    settings: Settings, mode: str
) -> None:
    async with Client(build_server(settings), mode=mode, extensions=[DECLARES_APPS]) as client:
        declaring = {str(r.uri): r.mime_type for r in (await client.list_resources()).resources}
        tools = wire(await client.list_tools())
    async with connect(settings, mode) as client:
        plain = [str(r.uri) for r in (await client.list_resources()).resources]
        html = (await client.read_resource(apps.MEDIA_VIEWER)).contents[0]
    assert {uri: declaring[uri] for uri in apps.APPS} == dict.fromkeys(
        apps.APPS, apps.APP_MIME_TYPE
    )
    assert plain == [uri for uri in declaring if uri not in apps.APPS] and plain
    assert html.mime_type == apps.APP_MIME_TYPE, "reading an app still works for anyone"
    size = len(json.dumps(tools, separators=(",", ":")))
    assert size <= 12_000, f"tools/list with the apps linked is {size} bytes"


def test_the_apps_ship_in_the_wheel() -> None:
    pyproject = (HERE.parent / "pyproject.toml").read_text()
    assert '"poe_mcp.apps"' in pyproject.split("[tool.setuptools.package-data]")[1].split("[")[0]


# -- a real browser ------------------------------------------------------------------------------


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (apt-get install chromium chromium-driver)"
    return None


def test_without_a_browser_the_browser_tests_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "chromedriver" else name)
    assert _missing_browser() == (
        "chromedriver is not installed (apt-get install chromium chromium-driver)"
    )


def ext_apps_import_map() -> str:
    """The <script type="importmap"> that loads ext-apps' AppBridge from .ci/node, or "" when the
    package is not installed (the page's hand-written bridge then stands in)."""
    if not (EXT_APPS / "package.json").is_file():
        warnings.warn(
            "@modelcontextprotocol/ext-apps is not installed in .ci/node (see .ci/run): the MCP Apps "
            "browser tests use the test host's hand-written bridge instead of ext-apps' AppBridge",
            stacklevel=1,
        )
        return ""
    bundled = NODE_MODULES / ".bin" / "node"
    node = str(bundled) if bundled.exists() else shutil.which("node")
    assert node, "ext-apps is installed but no node can resolve its modules"
    resolved = subprocess.run(
        [
            node,
            "--experimental-import-meta-resolve",
            "--conditions=browser",
            str(HERE / "ext_apps_importmap.mjs"),
            str(NODE_MODULES),
            "/node_modules",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    json.loads(resolved.stdout)  # a map, or fail here rather than in the page
    return f'<script type="importmap">{resolved.stdout}</script>'


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the whole module: starting it per test would cost seconds each."""
    missing = _missing_browser()
    if missing:
        pytest.skip(f"MCP Apps browser tests skipped: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--window-size=800,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_script_timeout(60)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def import_map() -> str:
    return ext_apps_import_map()


class Relay(BaseHTTPRequestHandler):
    """The test host's own origin: serves the host page (with the import map for ext-apps' AppBridge),
    the ES modules it names from .ci/node, and passes the page's MCP requests on to poe-mcp."""

    target = ""
    import_map = ""
    FORWARDED = ("content-type", "accept", "mcp-protocol-version", "mcp-method", "mcp-name")

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            page = (
                (HERE / "apps_host.html")
                .read_text()
                .replace("<!-- import map -->", self.import_map)
            )
            self._answer(200, "text/html", page.encode())
            return
        modules = NODE_MODULES.resolve()
        module = (modules / path.removeprefix("/node_modules/")).resolve()
        if (
            self.import_map
            and path.startswith("/node_modules/")
            and module.is_relative_to(modules)
            and module.suffix in (".js", ".mjs")
            and module.is_file()
        ):
            self._answer(200, "text/javascript", module.read_bytes())
            return
        self._answer(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k: v for k, v in self.headers.items() if k.lower() in self.FORWARDED}
        upstream = httpx2.post(
            self.target,
            content=body,
            headers={**headers, "authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        self._answer(
            upstream.status_code, upstream.headers.get("content-type", ""), upstream.content
        )

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host(browser: Any, import_map: str, fake: FakePoe, tmp_path: Path) -> Iterator[Any]:
    """The browser on the test host page, in front of a running poe-mcp on the fake Poe."""
    with http_replica(fake, tmp_path) as url:
        handler = type("BoundRelay", (Relay,), {"target": url, "import_map": import_map})
        relay = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        bridge = "ext-apps" if import_map else "hand-written"
        browser.get(f"http://127.0.0.1:{relay.server_port}/?bridge={bridge}")
        browser.get_log("browser")  # start each test with an empty console
        try:
            yield browser
        finally:
            browser.switch_to.default_content()
            relay.shutdown()
            relay.server_close()


def open_app(driver: Any, tool: str, arguments: dict[str, Any], rename: str | None = None) -> None:
    """The host calls `tool`, embeds its app and hands it the result; the driver then looks inside."""
    driver.switch_to.default_content()
    opened = driver.execute_async_script(
        "openApp(arguments[0], arguments[1], arguments[2]).then(arguments[3], "
        "(error) => arguments[3]({ failed: String(error) }))",
        tool,
        arguments,
        rename,
    )
    assert "failed" not in opened, opened
    driver.switch_to.frame(driver.find_element("id", "app"))


def wait_for(driver: Any, script: str, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def text_of(driver: Any) -> str:
    return driver.execute_script("return document.body.innerText")


def host_log(driver: Any) -> dict[str, Any]:
    driver.switch_to.default_content()
    log = driver.execute_script("return window.hostLog")
    driver.switch_to.frame(driver.find_element("id", "app"))
    return log


def sent_messages(driver: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """The ui/message requests the host received, once there is at least one."""
    deadline = time.monotonic() + timeout
    while not (messages := host_log(driver)["messages"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return messages


def screenshot(driver: Any, name: str) -> None:
    driver.switch_to.default_content()
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.switch_to.frame(driver.find_element("id", "app"))


def assert_nothing_blocked(driver: Any) -> None:
    """The app needed nothing the default CSP refuses, and raised no error."""
    problems = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []


def png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (93, 92, 222)).save(out, "PNG")
    return out.getvalue()


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        samples = (int(8000 * math.sin(i / 10)) for i in range(int(rate * seconds)))
        audio.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def image_width(driver: Any, width: int) -> bool:
    """Whether the image on screen is `width` pixels wide as decoded (a new result replaced the old)."""
    return wait_for(
        driver,
        f"const i = document.querySelector('figure img'); return i && i.naturalWidth === {width}",
    )


def test_the_media_viewer_shows_the_image_as_text_safe_and_generates_again(
    host: Any, fake: FakePoe
) -> None:
    fake.enqueue(
        Reply(text=f"![{HOSTILE}]({fake.cdn_url('first.png', png(64, 48), 'image/png')})"),
        Reply(text=f"![again]({fake.cdn_url('second.png', png(32, 80), 'image/png')})"),
        Reply(text=f"![variation]({fake.cdn_url('third.png', png(48, 24), 'image/png')})"),
    )
    prompt = f"a cat {HOSTILE}"
    asked = {"prompt": prompt, "model": "Nano-Banana"}
    # a chat image bot, so each generation shows as a chat request (GPT-Image-1 uses /v1/images)
    open_app(host, "generate_image", asked)

    assert image_width(host, 64)
    shown = text_of(host)
    assert prompt in shown and "nano-banana" in shown.lower()
    assert host.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert host.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    screenshot(host, "media-viewer-image")

    # "Generate again": the same tool, model and arguments, through the host's tools/call
    host.find_element("id", "again").click()
    assert image_width(host, 32)
    assert host_log(host)["toolCalls"] == [{"name": "generate_image", "arguments": asked}]
    first, again = (r["json"] for r in fake.chat_requests())
    assert again["model"] == first["model"] and again["messages"] == first["messages"]
    assert "Take\n2" in text_of(host) and prompt in text_of(host)

    # "Variation": the same model, the prompt asking for a different take
    host.find_element("id", "variation").click()
    assert image_width(host, 48)
    varied = prompt + VARIATION.format(n=1)
    assert host_log(host)["toolCalls"][1:] == [
        {"name": "generate_image", "arguments": {**asked, "prompt": varied}}
    ]
    third = fake.chat_requests()[-1]["json"]
    assert third["model"] == first["model"] and third["messages"][-1]["content"] == varied
    shown = text_of(host)
    assert "Take\n3" in shown and "Variation 1: keep the subject" in shown
    assert host.execute_script("return document.querySelectorAll('figure img').length") == 1
    screenshot(host, "media-viewer-variation")
    assert host.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert_nothing_blocked(host)


def test_generate_again_fills_in_the_model_the_first_call_left_to_the_default(
    host: Any, fake: FakePoe
) -> None:
    fake.enqueue(
        Reply(text=fake.cdn_url("one.wav", wav(0.5), "audio/wav")),
        Reply(text=fake.cdn_url("two.wav", wav(1.0), "audio/wav")),
    )
    open_app(host, "generate_audio", {"prompt": "Say hello"})
    wait_for(host, "const a = document.querySelector('figure audio'); return a && a.duration")
    assert host.find_element("id", "variation").get_attribute("disabled"), (
        "audio has no variation: its prompt is what is spoken"
    )
    model = host.execute_script("return model")
    host.find_element("id", "again").click()
    duration = wait_for(
        host,
        "const a = document.querySelector('figure audio'); return a && a.duration > 0.75 && a.duration",
    )
    assert duration == pytest.approx(1.0, abs=0.05)
    assert host_log(host)["toolCalls"] == [
        {"name": "generate_audio", "arguments": {"prompt": "Say hello", "model": model}}
    ]
    first, again = (r["json"] for r in fake.chat_requests())
    assert again["model"] == first["model"] == model and again["messages"] == first["messages"]
    assert_nothing_blocked(host)


def test_a_hostile_file_name_is_shown_as_text(host: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("pic.png", png(20, 20), "image/png")))
    open_app(host, "generate_image", {"prompt": "a dog"}, rename=f"{HOSTILE}.png")
    wait_for(host, "const i = document.querySelector('figure img'); return i && i.naturalWidth")
    assert f"{HOSTILE}.png" in text_of(host)
    assert host.execute_script("return document.querySelectorAll('img').length") == 1
    assert_nothing_blocked(host)


def test_the_media_viewer_plays_the_audio(host: Any, fake: FakePoe) -> None:
    fake.enqueue(Reply(text=fake.cdn_url("hello.wav", wav(1.5), "audio/wav")))
    open_app(host, "generate_audio", {"prompt": "Say hello"})
    duration = wait_for(
        host, "const a = document.querySelector('figure audio'); return a && a.duration"
    )
    assert duration == pytest.approx(1.5, abs=0.05)
    assert "Say hello" in text_of(host)
    screenshot(host, "media-viewer-audio")
    assert_nothing_blocked(host)


def test_the_media_viewer_plays_the_video(host: Any, fake: FakePoe) -> None:
    fake.video_steps = 1  # done at the first poll, 5 s in (poe-mcp's poll interval)
    prompt = f"a wave {HOSTILE}"
    open_app(host, "generate_video", {"prompt": prompt, "seconds": 4})
    loaded = wait_for(
        host,
        "const v = document.querySelector('figure video');"
        "return v && v.readyState >= 1 && [v.duration, v.videoWidth, v.videoHeight, v.readyState]",
    )
    duration, width, height, _ = loaded
    assert duration == pytest.approx(2.0, abs=0.05) and (width, height) == (160, 90)
    host.execute_script(
        "const v = document.querySelector('figure video'); v.muted = true; v.play()"
    )
    assert wait_for(host, "return document.querySelector('figure video').currentTime > 0.5")
    host.execute_script("document.querySelector('figure video').pause()")
    shown = text_of(host)
    assert prompt in shown and "veo-3" in shown.lower() and "Generated video" in shown
    assert host.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert not host.find_element("id", "variation").get_attribute("disabled")
    screenshot(host, "media-viewer-video")
    assert_nothing_blocked(host)


def listed_price(model: dict[str, Any]) -> float:
    """The price the browser sorts by: per token when Poe gives one, else per request or image."""
    pricing = model["pricing"] or {}
    price = next((pricing[k] for k in ("prompt", "request", "image") if pricing.get(k)), None)
    return math.inf if price is None else float(price)


def test_the_model_browser_filters_the_whole_catalog_to_image_models(
    host: Any, fake: FakePoe
) -> None:
    open_app(host, "list_models", {})
    counted = wait_for(
        host,
        "const m = /(\\d+) of (\\d+) models/.exec(document.getElementById('count').textContent);"
        "return m && Number(m[2]) > 50 && [Number(m[1]), Number(m[2])]",
    )
    assert counted[0] == counted[1] == len(fake.models) >= 360, "the app fetched the whole catalog"

    host.execute_script(
        "const s = document.getElementById('modality'); s.value = 'image';"
        "s.dispatchEvent(new Event('input'))"
    )
    rows = host.execute_script(
        "return [...document.querySelectorAll('tr.model')].map(r => r.dataset.id)"
    )
    image_models = [
        m["id"] for m in fake.models if "image" in m["architecture"]["output_modalities"]
    ]
    assert sorted(rows) == sorted(image_models) and 0 < len(rows) < counted[1]
    screenshot(host, "model-browser-image-models")

    host.execute_script(
        "const t = document.getElementById('tools'); t.checked = true; t.dispatchEvent(new Event('input'));"
        "const s = document.getElementById('sort'); s.value = 'cheap'; s.dispatchEvent(new Event('input'));"
        "const m = document.getElementById('modality'); m.value = ''; m.dispatchEvent(new Event('input'))"
    )
    cheapest_first = host.execute_script(
        "return [...document.querySelectorAll('tr.model')].map(r => r.dataset.id)"
    )
    by_id = {m["id"]: m for m in fake.models}
    assert all("tools" in by_id[i]["supported_features"] for i in cheapest_first)
    prices = [listed_price(by_id[i]) for i in cheapest_first]
    assert prices == sorted(prices) and len(cheapest_first) > 10

    host.find_element("css selector", "tr.model").click()
    wait_for(host, "return document.getElementById('use')")
    host.find_element("id", "use").click()
    [message] = sent_messages(host)
    assert f'"{cheapest_first[0]}"' in message["content"][0]["text"]
    assert_nothing_blocked(host)


def test_the_usage_app_charts_the_points_history(host: Any, fake: FakePoe) -> None:
    open_app(host, "get_usage", {"limit": 20})
    bars = wait_for(host, "return document.querySelectorAll('#chart rect.bar').length")
    assert bars == 20
    shown = text_of(host)
    assert "1,500 points" in shown and "GPT-4o" in shown
    screenshot(host, "usage")
    assert_nothing_blocked(host)


EXT_APPS_SCHEMA = (
    HERE.parent
    / ".ci/node/node_modules/@modelcontextprotocol/ext-apps/dist/src/generated/schema.json"
)
# The app-to-host messages the ext-apps schema defines; tools/call and resources/read are MCP's own.
SCHEMA_OF = {
    "ui/initialize": "McpUiInitializeRequest",
    "ui/notifications/initialized": "McpUiInitializedNotification",
    "ui/notifications/size-changed": "McpUiSizeChangedNotification",
    "ui/message": "McpUiMessageRequest",
}


def test_every_app_message_matches_the_ext_apps_schema(host: Any, fake: FakePoe) -> None:
    if not EXT_APPS_SCHEMA.is_file():
        pytest.skip("@modelcontextprotocol/ext-apps is not installed in .ci/node (see .ci/run)")
    import jsonschema

    definitions = json.loads(EXT_APPS_SCHEMA.read_text())["$defs"]
    open_app(host, "list_models", {"limit": 5})
    wait_for(host, "return document.querySelectorAll('tr.model').length > 5")
    host.find_element("css selector", "tr.model").click()
    wait_for(host, "return document.getElementById('use')")
    host.find_element("id", "use").click()
    sent_messages(host)
    received = host_log(host)["received"]

    checked = {message["method"] for message in received if message["method"] in SCHEMA_OF}
    assert checked == set(SCHEMA_OF), "each kind of app message was sent at least once"
    for message in received:
        if message["method"] in SCHEMA_OF:
            jsonschema.validate(
                {k: v for k, v in message.items() if v is not None},
                definitions[SCHEMA_OF[message["method"]]],
            )


def test_the_model_browser_opens_one_model_from_get_model_info(host: Any) -> None:
    open_app(host, "get_model_info", {"model": "test-flat-fee"})
    wait_for(host, "return document.getElementById('use')")
    shown = text_of(host)
    assert "Test bot priced per request." in shown and "$0.002 per request" in shown
    assert "mood" in shown and '"cheerful"' in shown, "its custom parameters with their schema"
    assert_nothing_blocked(host)


def test_hostile_catalog_and_history_text_is_shown_as_text(host: Any, fake: FakePoe) -> None:
    fake.models.append(
        {
            "id": "hostile-bot",
            "object": "model",
            "owned_by": HOSTILE,
            "description": f"Says {HOSTILE}",
            "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
            "supported_features": [],
            "pricing": None,
            "metadata": {"display_name": HOSTILE},
            "parameters": [{"name": "style", "schema": {"type": "string", "description": HOSTILE}}],
        }
    )
    fake.history[0]["bot_name"] = HOSTILE
    open_app(host, "list_models", {})
    wait_for(
        host,
        "const m = /of (\\d+) models/.exec(document.getElementById('count').textContent);"
        f"return m && Number(m[1]) === {len(fake.models)}",
    )
    host.execute_script(
        "const s = document.getElementById('search'); s.value = 'hostile-bot';"
        "s.dispatchEvent(new Event('input'))"
    )
    rows = host.execute_script(
        "return [...document.querySelectorAll('tr.model')].map(r => r.dataset.id)"
    )
    assert rows == ["hostile-bot"] and text_of(host).count(HOSTILE) == 2, "owner and name"
    host.find_element("css selector", "tr.model").click()
    wait_for(host, "return document.getElementById('use')")
    assert f"Says {HOSTILE}" in text_of(host) and json.dumps(HOSTILE) in text_of(host)
    assert host.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
    screenshot(host, "model-browser-hostile")
    assert_nothing_blocked(host)

    open_app(host, "get_usage", {"limit": 5})
    wait_for(host, "return document.querySelectorAll('#chart rect.bar').length === 5")
    assert HOSTILE in text_of(host), "the per-model totals name the bot as text"
    titles = host.execute_script(
        "return [...document.querySelectorAll('#chart rect.bar title')].map(t => t.textContent)"
    )
    assert any(HOSTILE in title for title in titles)
    assert host.execute_script("return document.querySelectorAll('img, [onerror]').length") == 0
    assert_nothing_blocked(host)


def test_the_host_side_is_ext_apps_own_app_bridge(host: Any, import_map: str) -> None:
    if not import_map:
        pytest.skip("@modelcontextprotocol/ext-apps is not installed in .ci/node (see .ci/run)")
    open_app(host, "get_usage", {"limit": 3})
    wait_for(host, "return document.querySelectorAll('#chart rect.bar').length === 3")
    host.switch_to.default_content()
    bridge = host.execute_script(
        "const b = window.hostBridge; return b && { name: b.constructor.name,"
        " app: b.getAppVersion(), capabilities: b.getAppCapabilities(), log: window.hostLog }"
    )
    assert bridge["log"]["bridge"] == "ext-apps AppBridge"
    # AppBridge itself answered ui/initialize and kept what the view declared
    assert bridge["app"] == {"name": "poe-mcp usage", "version": "1"}
    assert bridge["capabilities"] == {}
    assert bridge["log"]["sizes"], "size-changed reached the host through AppBridge"


def test_the_hand_written_bridge_still_carries_an_app(host: Any) -> None:
    """The page's own bridge, for a machine without ext-apps: it must not rot while AppBridge runs."""
    host.get(re.sub(r"bridge=[\w-]+", "bridge=hand-written", host.current_url))
    open_app(host, "get_usage", {"limit": 4})
    assert wait_for(host, "return document.querySelectorAll('#chart rect.bar').length === 4")
    assert host_log(host)["bridge"] == "hand-written"
    assert_nothing_blocked(host)


def test_every_icon_draws_a_purple_tile_with_a_white_glyph_in_a_browser(browser: Any) -> None:
    """What a client's UI shows from each icon's data: URI (the server's, and each tool kind's)."""
    from poe_mcp.icons import SERVER_ICONS, TOOL_ICONS

    sources = {"server": SERVER_ICONS[0].src} | {k: i[0].src for k, i in TOOL_ICONS.items()}
    browser.get("about:blank")
    drawn = browser.execute_async_script(
        """const [sources, done] = arguments;
        const out = {};
        for (const [name, src] of Object.entries(sources)) {
          const img = new Image(); img.src = src;
          try { await img.decode(); } catch (e) { out[name] = String(e); continue; }
          const canvas = Object.assign(document.createElement('canvas'), {width: 32, height: 32});
          const g = canvas.getContext('2d'); g.drawImage(img, 0, 0, 32, 32);
          const px = g.getImageData(0, 0, 32, 32).data;
          let white = 0;
          for (let i = 0; i < px.length; i += 4) white += px[i] > 240 && px[i + 1] > 240 && px[i + 2] > 240;
          out[name] = {edge: Array.from(g.getImageData(16, 1, 1, 1).data), white};
        }
        done(out);""",
        sources,
    )
    assert drawn.keys() == sources.keys()
    for name, pixels in drawn.items():
        assert isinstance(pixels, dict), f"{name}: {pixels}"
        assert pixels["edge"] == [93, 92, 222, 255], name  # the tile, #5d5cde
        assert 30 < pixels["white"] < 700, f"{name}: a glyph, not a blank or white tile"
