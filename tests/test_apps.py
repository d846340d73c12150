"""MCP Apps: the tools/list links, the ui:// resources, and each app in a real headless Chromium.

The browser tests embed each app the way an MCP Apps host does (tests/apps_host.html: a sandboxed
iframe under the spec's default CSP, JSON-RPC over postMessage), fed by a running `poe-mcp serve
--transport http` against the fake Poe, and check what a person sees. Screenshots go to
tests/artifacts/. Without chromium, chromedriver or selenium they skip and say so.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import struct
import threading
import time
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from conftest import connect
from fakepoe import FakePoe, Reply
from mcp import Client
from mcp.client.extension import advertise
from servers import TOKEN, http_replica

from poe_mcp import apps
from poe_mcp.config import Settings
from poe_mcp.server import build_server

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"
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
async def test_each_app_is_one_self_contained_html_resource(settings: Settings) -> None:
    async with Client(build_server(settings), extensions=[DECLARES_APPS]) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        pages = {uri: (await client.read_resource(uri)).contents[0] for uri in apps.APPS}
    for uri, page in pages.items():
        assert listed[uri].mime_type == page.mime_type == "text/html;profile=mcp-app"
        assert page.text.startswith("<!doctype html>") and "<script>" in page.text
        assert "<!-- inline" not in page.text, "every shared source is inlined"
        # No origin at all: the only URL is SVG's namespace name, which is never fetched.
        assert set(re.findall(r"[a-z]+://[^\s\"'<>)]*", page.text)) <= {
            "http://www.w3.org/2000/svg"
        }
        assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page.text)
        assert "innerHTML" not in page.text and "insertAdjacentHTML" not in page.text


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
    driver.set_script_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


class Relay(BaseHTTPRequestHandler):
    """The test host's own origin: serves the host page and passes its MCP requests to poe-mcp."""

    target = ""
    FORWARDED = ("content-type", "accept", "mcp-protocol-version", "mcp-method", "mcp-name")

    def do_GET(self) -> None:
        self._answer(200, "text/html", (HERE / "apps_host.html").read_bytes())

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
def host(browser: Any, fake: FakePoe, tmp_path: Path) -> Iterator[Any]:
    """The browser on the test host page, in front of a running poe-mcp on the fake Poe."""
    with http_replica(fake, tmp_path) as url:
        handler = type("BoundRelay", (Relay,), {"target": url})
        relay = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        browser.get(f"http://127.0.0.1:{relay.server_port}/")
        browser.get_log("browser")  # start each test with an empty console
        try:
            yield browser
        finally:
            browser.switch_to.default_content()
            relay.shutdown()
            relay.server_close()


def open_app(driver: Any, tool: str, arguments: dict[str, Any], rename: str | None = None) -> None:
    """The host calls `tool`, embeds its app and hands it the result; the driver then looks inside."""
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


def test_the_media_viewer_shows_the_image_as_text_safe_and_generates_again(
    host: Any, fake: FakePoe
) -> None:
    fake.enqueue(
        Reply(text=f"![{HOSTILE}]({fake.cdn_url('first.png', png(64, 48), 'image/png')})"),
        Reply(text=f"![again]({fake.cdn_url('second.png', png(32, 80), 'image/png')})"),
    )
    prompt = f"a cat {HOSTILE}"
    # a chat image bot, so "generate again" shows as a second chat request (GPT-Image-1 uses /v1/images)
    open_app(host, "generate_image", {"prompt": prompt, "model": "Nano-Banana"})

    width = wait_for(
        host, "const i = document.querySelector('figure img'); return i && i.naturalWidth"
    )
    assert width == 64
    shown = text_of(host)
    assert prompt in shown and "nano-banana" in shown.lower()
    assert host.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    screenshot(host, "media-viewer-image")

    host.find_element("id", "again").click()
    assert wait_for(
        host, "const i = document.querySelector('figure img'); return i && i.naturalWidth === 32"
    )
    again = fake.chat_requests()[-1]["json"]
    assert len(fake.chat_requests()) == 2 and prompt in json.dumps(again["messages"])
    assert "tools/call" in host_log(host)["requests"], "the second call went through the host"
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
