"""The web console in a real browser: Debian's Chromium, driven by Playwright, against a real
controller process with eight simulated cards.

An engineer's visit, in order: the login page (a wrong token refused on the
page), log in as an installer, see the wall and every card answering, a dead
LED the simulator starts to have appear live on the wall once "Find dead
LEDs" has run, start commissioning and answer its first pattern question,
cancel it, switch to Chinese, log out; then a viewer's session refused an
installer's action by the server, on the page.  Screenshots of each page at
phone (390 × 844) and laptop (1366 × 900) widths go to
``tests/.artifacts/console/`` (git-ignored), with the measurements: the
bytes the browser transferred on first load, and the controller's memory
with ten open consoles.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from controller.service.auth import ROLES, TokenStore
from controller.service.sessions import COOKIE
from hw.sim.faults import FaultPlan
from hw.sim.server import Simulator
from support import browser, controller_process

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts" / "console"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
WAIT_MS = 60_000          # generous: CI is a loaded two-core box; every wait is for a condition
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE          # loopback, the controller's own self-signed certificate


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-browser")
    state = tmp / "state"
    state.mkdir()
    store = TokenStore(state / "tokens.db")
    tokens = {role: store.create(f"{role}-1", role) for role in ROLES}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "measurements.json").unlink(missing_ok=True)       # this run's figures only
    with browser.chromium() as chromium, Simulator(8, pty=True) as sim:
        proc, url = controller_process.start(state, sim.url, "--fps", "10", "--max-refusals", "1000",
                                             "--watch-interval", "1")
        try:
            yield {"browser": chromium, "sim": sim, "url": url, "tokens": tokens, "proc": proc}
        finally:
            controller_process.stop(proc)
        log = proc.stderr.read()
        assert not any(secret in log for secret in tokens.values()), "a token reached the log"
        # opening the login page is not a refused request (no log line, nothing rate-limited)
        assert "refused GET /console/session" not in log and "refused GET /favicon" not in log


def api(rig, role: str, path: str, body: object = None, method: str = "POST") -> object:
    """One API call with a bearer token, as the command line makes it."""
    req = urllib.request.Request(f"{rig['url']}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {rig['tokens'][role]}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=TLS, timeout=60) as resp:
        return json.loads(resp.read())


def calibration_csv(width: int, height: int) -> bytes:
    """A valid matrix calibration for a ``width`` x ``height`` cabinet, every pixel alike."""
    rows = ["x,y,rr,rg,rb,gr,gg,gb,br,bg,bb"]
    rows += [f"{x},{y},0.95,0.01,0,0.01,0.97,0,0,0.02,0.93" for y in range(height) for x in range(width)]
    return ("\n".join(rows) + "\n").encode()


def new_page(rig, viewport=LAPTOP, locale="en-GB"):
    context = rig["browser"].new_context(ignore_https_errors=True, viewport=viewport, locale=locale)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return context, page


def shoot(page, name: str) -> None:
    """The page at phone and laptop widths, as ``NAME-phone.png`` and ``NAME-laptop.png``."""
    for label, size in (("phone", PHONE), ("laptop", LAPTOP)):
        page.set_viewport_size(size)
        # the wall is redrawn for the new width: wait until that picture has loaded
        page.wait_for_function("() => { const w = document.getElementById('wall'); return !w ||"
                               " w.offsetParent === null || (w.complete && w.naturalWidth > 0); }")
        # usable on a phone: nothing wider than the screen (the cards table scrolls in its box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow} px wider than a {label}"
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


def log_in(page, url: str, secret: str) -> None:
    page.goto(f"{url}/console/")
    page.fill("#token", secret)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#console", state="visible")


def eventually(condition, timeout_s: float = 5.0) -> bool:
    """True once ``condition()`` holds, False if it never did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wall_drawn(page) -> None:
    page.wait_for_function("() => { const w = document.getElementById('wall');"
                           " return w.complete && w.naturalWidth > 0; }")


def test_an_engineers_visit(rig):
    url, sim = rig["url"], rig["sim"]
    context, page = new_page(rig)
    fetched = []
    page.on("requestfinished", lambda request: fetched.append(request))
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))

    # The login page, and a wrong token refused on it.
    page.goto(f"{url}/console/")
    page.wait_for_selector("#login", state="visible")
    assert page.text_content("h1") == "ledwarden console"
    shoot(page, "login")
    page.fill("#token", "lw_not-a-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#message:not([hidden])")
    assert "Refused (401)" in page.text_content("#message")
    assert page.is_visible("#login") and not page.is_visible("#console")

    # Log in as an installer: the wall, every card answering the watch.
    page.fill("#token", rig["tokens"]["installer"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#console", state="visible")
    assert page.text_content("#who") == "installer-1 (installer)"
    wall_drawn(page)
    first_load = sum(r.sizes()["responseBodySize"] for r in fetched)
    first_load_files = sorted({re.sub(r"\?.*", "", r.url.replace(url, "")) for r in fetched})
    page.wait_for_function("() => document.getElementById('wall').dataset.missing === '0'")
    assert page.text_content("#wall-summary").startswith("8 cabinets · 0 not answering · 0 dead LEDs")
    assert page.locator("#cards tbody tr").count() == 8
    # the token never went into a URL, and the page's scripts cannot read the session cookie
    assert all(rig["tokens"]["installer"] not in r.url for r in fetched)
    assert page.evaluate("document.cookie") == ""
    shoot(page, "wall")

    # A dead LED appears live: the simulator's card 3 loses a green LED, the installer runs
    # the detection from the console, and the wall redraws by itself when the job is done.
    sim.set_plan(FaultPlan().with_card(3, dead_leds=frozenset({(1, 7, 9, 1)})))
    page.click("#detect")
    page.wait_for_function("() => document.getElementById('wall').dataset.dead === '1'")
    wall_drawn(page)
    assert "1 dead LEDs" in page.text_content("#wall-summary")
    row = page.locator("#cards tbody tr", has_text="0x03")
    assert row.locator("td").nth(5).text_content() == "1"
    assert re.fullmatch(r"[0-9.]+ % answered · [0-9]+ retries · p99 [0-9.]+ ms",
                        row.locator("td").nth(7).text_content())
    shoot(page, "wall-dead-led")

    # Faults: the watch files card 3's LED fault (its status flag, once detection has run);
    # the installer clears it from the list.
    fault = page.locator("#faults tr.fault.active", has_text="card.pixel_faults")
    fault.locator("button.clear").click()
    page.wait_for_function("() => /^Fault [0-9]+ cleared\\.$/.test("
                           "document.getElementById('message').textContent)")
    page.click("#fault-mode")
    page.wait_for_selector("#faults tr.fault.cleared >> text=card.pixel_faults")
    assert "cleared by installer-1" in page.text_content("#faults tr.fault.cleared")
    shoot(page, "faults-history")
    page.click("#fault-mode")

    # Commissioning asks whether the wall shows each pattern: answer the first, then cancel.
    page.click("#commission")
    question = page.wait_for_selector("#jobs li.job.waiting .question")
    first = question.text_content()
    assert first.startswith("Does every cabinet show the")
    shoot(page, "commission-question")
    # A second engineer's browser shows the same question; the first answers, the second's
    # Yes (on what it showed) is refused, not taken for the next question.
    other_context, other = new_page(rig)
    log_in(other, url, rig["tokens"]["installer"])
    other.wait_for_selector(f"#jobs li.job.waiting .question >> text={first}")
    stale_yes = other.query_selector("#jobs li.job.waiting .answer-yes")
    page.click("#jobs li.job.waiting .answer-yes")
    page.wait_for_function("(first) => { const q = document.querySelector('#jobs li.job.waiting "
                           ".question'); return q && q.textContent !== first; }", arg=first)
    stale_yes.evaluate("button => button.click()")
    other.wait_for_selector("#message >> text=Refused (409)")
    assert "no longer asks question 1 (it was answered already)" in other.text_content("#message")
    shoot(other, "question-answered-twice")
    other_context.close()
    page.click("#jobs li.job.waiting .cancel")
    page.wait_for_selector("#jobs li.job.cancelled")
    assert "Job" in page.text_content("#message") and "cancelled" in page.text_content("#message")

    # The picture: brightness and a test pattern set from the console reach the cards.
    page.wait_for_selector("#picture-state dd >> text=pattern:bars")
    # a schedule set through the API (the command line's way) shows its next entry here
    api(rig, "installer", "/api/v1/brightness/schedule",
        {"entries": [{"time": "00:00", "percent": 30}, {"time": "12:00", "percent": 30}]})
    page.fill("#brightness-percent", "50")
    page.click("#set-brightness")
    page.wait_for_selector("#message >> text=Brightness set to 50 %.")
    # a broadcast has no answer: the cards take it as their UART delivers it, so give them a moment
    assert eventually(lambda: [k.card.brightness for k in sim.cards] == [32768] * 8), \
        [k.card.brightness for k in sim.cards]
    page.wait_for_selector("#picture-state dd >> text=50 %")
    assert re.search(r"next: 30 % at (00|12):00", page.text_content("#picture-state"))
    api(rig, "installer", "/api/v1/brightness/schedule", method="DELETE")
    page.select_option("#pattern", "grid")
    page.click("#show-pattern")
    page.wait_for_selector("#message >> text=The wall shows the grid pattern.")
    assert eventually(lambda: {k.platform.pattern for k in sim.cards} == {5}), \
        [k.platform.pattern for k in sim.cards]
    shoot(page, "picture")
    page.select_option("#pattern", "normal")
    page.click("#show-pattern")
    page.wait_for_selector("#message >> text=The wall shows the normal pattern.")
    assert eventually(lambda: {k.platform.pattern for k in sim.cards} == {0}), \
        [k.platform.pattern for k in sim.cards]

    page.fill("#source-spec", "pattern:gradient")
    page.click("#set-source")
    page.wait_for_selector("#picture-state dd >> text=pattern:gradient")
    page.fill("#source-spec", "nonsense:thing")
    page.click("#set-source")
    page.wait_for_selector("#message >> text=Refused (400)")
    page.wait_for_selector("#picture-state dd >> text=pattern:gradient")   # the last good source

    # A calibration file for cabinet 3, imported from the console and put in use; a file that
    # is not one refused; then rolled back.
    page.select_option("#cal-cabinet", "3")
    page.set_input_files("#cal-file", files=[{"name": "cab3.csv", "mimeType": "text/csv",
                                              "buffer": calibration_csv(256, 128)}])
    page.click("#cal-import")
    page.wait_for_selector("#message >> text=Cabinet 3 uses calibration version 1.")
    page.wait_for_selector("#picture-state dd >> text=1 of 8 cabinets calibrated · 3: v1")
    page.set_input_files("#cal-file", files=[{"name": "notes.csv", "mimeType": "text/csv",
                                              "buffer": b"x,y\n"}])
    page.click("#cal-import")
    page.wait_for_selector("#message >> text=Refused (400)")
    assert "header" in page.text_content("#message")
    page.wait_for_selector("#picture-state dd >> text=3: v1")            # still in use
    page.click("#cal-rollback")
    page.wait_for_selector("#message >> text=Cabinet 3's calibration rolled back.")
    page.wait_for_selector("#picture-state dd >> text=0 of 8 cabinets calibrated")

    # The cards identified: their firmware versions in the table.
    page.click("#discover")
    page.wait_for_function("() => [...document.querySelectorAll('#cards tbody tr')].every("
                           "row => row.lastElementChild.textContent === '1.0.0')")

    # Upgrades need the service role: the installer's upload is refused before a byte is kept.
    page.wait_for_selector("#upgrade-state dd >> text=0.1.0")
    page.set_input_files("#package", files=[{"name": "firmware.lwfw", "mimeType":
                                             "application/octet-stream", "buffer": b"x" * 1000}])
    page.click("#start-upgrade")
    page.wait_for_selector("#message >> text=Refused (403)")
    assert "needs the 'service' role" in page.text_content("#message")

    # A quick self-test, run from the console, followed in the jobs, its report opened.
    page.select_option("#profile", "quick")
    page.click("#run-selftest")
    page.wait_for_selector("#runs li.run >> text=quick")
    with page.expect_popup() as opened:
        page.click("#runs li.run a")
    report = opened.value
    report.wait_for_load_state()
    assert report.url.startswith(f"{url}/api/v1/selftest/runs/") and "format=html" in report.url
    # the report's own style element applies under the report pages' policy (by its hash)
    assert report.evaluate("getComputedStyle(document.documentElement).backgroundColor") == \
        "rgb(232, 235, 240)"
    assert report.locator("svg.wall").count() == 1
    report.screenshot(path=str(ARTIFACTS / "selftest-report-laptop.png"), full_page=True)
    report.close()

    # A second run, then the two compared: the newer's report against the older.
    page.click("#run-selftest")
    page.wait_for_function("() => document.querySelectorAll('#runs li.run').length === 2")
    page.wait_for_selector("#compare", state="visible")
    newer, older = (page.eval_on_selector(f"#compare-{x}", "s => s.value") for x in "ab")
    assert int(newer) == int(older) + 1
    page.select_option("#compare-a", older)
    page.select_option("#compare-b", newer)        # either way round: any two runs
    with page.expect_popup() as opened:
        page.click("#compare-open")
    comparison = opened.value
    comparison.wait_for_load_state()
    assert f"against={newer}" in comparison.url and f"/runs/{older}?" in comparison.url
    assert f"Previous inspection: run {newer}," in comparison.text_content("body")
    comparison.close()

    # 中文, then log out: the session is gone, on the page and at the server.
    page.click("#lang")
    assert page.text_content("h1") == "ledwarden 控制台"
    # what the page drew from the API's answers is redrawn in Chinese too, not only its labels
    assert "信号源" in page.text_content("#picture-state")
    assert "运行版本" in page.text_content("#upgrade-state")
    page.wait_for_function("() => document.getElementById('wall').src.includes('lang=zh')")
    wall_drawn(page)
    shoot(page, "wall-zh")
    page.click("#lang")
    page.click("#logout")
    page.wait_for_selector("#login", state="visible")
    assert page.text_content("#message") == "Logged out."
    assert page.evaluate("fetch('/api/v1/jobs').then(r => r.status)") == 401
    page.reload()
    page.wait_for_selector("#login", state="visible")
    context.close()
    # the page never needed anything the policy forbids
    assert not [m for m in said if "Content Security Policy" in m], said

    record({"first_load_bytes": first_load, "first_load_files": first_load_files})


def test_a_viewer_is_refused_an_installers_action_by_the_server(rig):
    context, page = new_page(rig)
    log_in(page, rig["url"], rig["tokens"]["viewer"])
    wall_drawn(page)
    page.reload()                           # the session outlives a reload: no new login
    page.wait_for_selector("#console", state="visible")
    assert page.text_content("#who") == "viewer-1 (viewer)"
    wall_drawn(page)
    jobs_before = page.locator("#jobs li.job").count()
    page.click("#detect")                   # shown to everyone: the server decides
    page.wait_for_selector("#message:not([hidden])")
    assert page.text_content("#message") == ("Refused (403): this needs the 'installer' role; "
                                             "your token 'viewer-1' has 'viewer'")
    shoot(page, "viewer-refused")
    assert page.locator("#jobs li.job").count() == jobs_before
    page.click("#logout")
    page.wait_for_selector("#login", state="visible")
    context.close()


def test_an_upload_that_is_not_a_package_is_refused_on_the_page(rig):
    context, page = new_page(rig)
    log_in(page, rig["url"], rig["tokens"]["service"])
    page.wait_for_selector("#upgrade-state dd >> text=0.1.0")
    jobs_before = page.locator("#jobs li.job").count()
    page.select_option("#upgrade-target", "cards")
    page.set_input_files("#package", files=[{"name": "holiday.jpg", "mimeType": "image/jpeg",
                                             "buffer": b"\xff\xd8\xff\xe0" + b"JFIF" * 300}])
    page.click("#start-upgrade")
    page.wait_for_selector("#message >> text=Refused (400)")
    shoot(page, "upgrade-refused")
    message = page.text_content("#message")
    assert "firmware" in message.lower() or "package" in message.lower(), message
    time.sleep(0.5)
    assert page.locator("#jobs li.job").count() == jobs_before
    assert "#" not in page.text_content("#upgrade-state")      # no card upgrade job started
    context.close()


def test_the_browsers_language_chooses_chinese(rig):
    context, page = new_page(rig, locale="zh-CN")
    page.goto(f"{rig['url']}/console/")
    page.wait_for_selector("#login", state="visible")
    assert page.text_content("h1") == "ledwarden 控制台"
    assert page.text_content("#login-form button[type=submit]") == "登录"
    shoot(page, "login-zh")
    context.close()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_the_controllers_memory_with_ten_open_consoles(rig):
    url, proc = rig["url"], rig["proc"]

    def login() -> str:
        req = urllib.request.Request(f"{url}/console/login", method="POST",
                                     data=json.dumps({"token": rig["tokens"]["viewer"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=TLS, timeout=60) as resp:
            return re.search(rf"{COOKIE}=([^;]+)", resp.headers["Set-Cookie"]).group(1)

    first_snapshot = [threading.Event() for _ in range(11)]
    stop = threading.Event()
    errors: list[str] = []

    def console(session_id: str, got: threading.Event) -> None:
        try:
            headers = {"Cookie": f"{COOKIE}={session_id}"}
            with urllib.request.urlopen(urllib.request.Request(f"{url}/console/wall.svg",
                                                               headers=headers),
                                        context=TLS, timeout=60) as resp:
                resp.read()
            with urllib.request.urlopen(urllib.request.Request(f"{url}/console/events",
                                                               headers=headers),
                                        context=TLS, timeout=60) as resp:
                while not stop.is_set():
                    line = resp.readline()
                    if not line:
                        return
                    if line.startswith(b"data: "):
                        got.set()
        except OSError as exc:
            errors.append(str(exc))
            got.set()

    # One console first, so what is measured is the consoles, not the controller's first
    # drawing of the wall (the report modules it loads once).
    warm = threading.Thread(target=console, args=(login(), first_snapshot[0]), daemon=True)
    warm.start()
    assert first_snapshot[0].wait(60)
    sessions = [login() for _ in range(10)]
    before = rss_kib(proc.pid)
    threads = [threading.Thread(target=console, args=(s, e), daemon=True)
               for s, e in zip(sessions, first_snapshot[1:])]
    for thread in threads:
        thread.start()
    for got in first_snapshot:
        assert got.wait(60), "a console got no snapshot within a minute"
    assert errors == []
    with_ten = rss_kib(proc.pid)
    stop.set()
    record({"rss_kib_one_console": before, "rss_kib_eleven_consoles": with_ten,
            "rss_kib_ten_more_consoles": with_ten - before})
    # a budget, not a timing: ten consoles must not cost the board more than a few MiB
    assert with_ten - before < 16 * 1024, (before, with_ten)


def record(figures: dict) -> None:
    """Merge figures into ``measurements.json`` beside the screenshots (docs/console.md quotes it)."""
    path = ARTIFACTS / "measurements.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(old | figures, indent=1) + "\n")
    print(json.dumps(figures))
