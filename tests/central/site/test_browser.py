"""The public site as a person uses it, in a real browser: headless Chromium driven by Selenium.

Debian's `chromium` and `chromium-driver` (`make test` installs them when missing; the
test fails, never skips, without them), Selenium pointed at both by path so Selenium
Manager never downloads a browser or a driver.  The site is the real `make_site` over a
real published election (tests/central/site/support.py: real signed station messages),
served by aiohttp on a free loopback port from a thread of its own.  Three walks:

* on a phone (412 x 915): the home page with its numbers, the drill-down region >
  district > territorial commission > station by clicking the links, and the language
  switch (Russian > English > Kyrgyz);
* on a desktop: a live update - a station reports, the publisher publishes a new
  version, and the open page changes without a reload (server-sent events, site.js);
* on a phone: "check a report" with the PNG the station printed, uploaded through the
  form: verified, every line the same as published, then the station's own page.

A screenshot of every page visited goes to `<tmp>/screenshots/` (the path is printed,
and named in a failure's message); with `SHAILOO_SCREENSHOTS=1` also to
`test-output/screenshots/` under the working directory (any other value: that directory).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import random
import re
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from central.db import open_database
from central.evidence import accept_batch
from central.results import publish
from central.site.app import STATE
from central.site.texts import LANGS, Lang, fmt_int, say
from election.tally import ContestTally
from station.printing import render_report_png
from tests.central.fake_stations import items
from tests.central.site.support import (
    MANUAL_AT,
    OPEN_ONLY,
    Election,
    asu_tallies,
    build,
    cert_pem,
    site,
)
from tests.support.provisioned import Provisioned

# Selenium Manager (bundled with Selenium) must never fetch anything: the paths below are
# given explicitly, and it is told to stay offline should anything still call it.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait

    SELENIUM: str | None = None
except ImportError as exc:  # reported by the fixture as a failure, with what to do
    SELENIUM = str(exc)

CHROMIUM = os.environ.get("SHAILOO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SHAILOO_CHROMEDRIVER", "/usr/bin/chromedriver")
PHONE = (412, 915)
DESKTOP = (1366, 900)
WAIT = 15.0  # seconds a step may take before the test fails
MAX_SHOT_HEIGHT = 8000  # CSS pixels of a full-page screenshot
SHOTS_ENV = "SHAILOO_SCREENSHOTS"


def _installed() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver; a failure saying what to do if missing."""
    how = "run `make test` (it installs the Debian packages chromium and chromium-driver)"
    if SELENIUM is not None:
        pytest.fail(f"Selenium is not installed ({SELENIUM}): {how}", pytrace=False)
    found = []
    for path, name in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        exe = path if os.access(path, os.X_OK) else shutil.which(name)
        if exe is None:
            pytest.fail(f"{name} not found (looked at {path} and PATH): {how}", pytrace=False)
        found.append(exe)
    return found[0], found[1]


# --- the site on a real port -------------------------------------------------------------
class LiveServer:
    """An aiohttp application on 127.0.0.1:<free port>, in an event loop on its own thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="site", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()

        async def up() -> web.AppRunner:
            runner = web.AppRunner(self.app, shutdown_timeout=2.0)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            return runner

        try:
            self.runner = asyncio.run_coroutine_threadsafe(up(), self.loop).result(60)
        except BaseException:
            self.__exit__()
            raise
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.runner is not None:
                asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


# --- screenshots ---------------------------------------------------------------------------
def _shots_dirs(tmp: Path) -> list[Path]:
    dirs = [tmp]
    wanted = os.environ.get(SHOTS_ENV, "").strip()
    if wanted and wanted not in ("0", "no", "false"):
        keep = (
            Path.cwd() / "test-output" / "screenshots"
            if wanted.lower() in ("1", "yes", "true")
            else Path(wanted)
        )
        dirs.append(keep)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _page_png(driver: Any) -> bytes:
    """The whole page (not only the window), through the DevTools protocol."""
    try:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": max(1, int(size["width"])),
            "height": max(1, min(int(size["height"]), MAX_SHOT_HEIGHT)),
            "scale": 1,
        }
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        return base64.b64decode(shot["data"])
    except (WebDriverException, KeyError):  # the window as it is, then
        png: bytes = driver.get_screenshot_as_png()
        return png


# --- driving the browser -----------------------------------------------------------------
@dataclass
class Person:
    """A reader at a browser of one window size: opens, clicks, reads, photographs pages."""

    driver: Any
    base: str
    device: str
    shot_dirs: list[Path]
    walk: str = "walk"  # the test, in a few words: names its screenshots
    taken: list[Path] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base)

    def shot(self, name: str) -> Path:
        png = _page_png(self.driver)
        fname = f"{self.walk}-{self.device}-{len(self.taken) + 1:02d}-{name}.png"
        for d in self.shot_dirs:
            (d / fname).write_bytes(png)
        self.taken.append(self.shot_dirs[0] / fname)
        return self.taken[-1]

    def wait(self, what: str, until: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Wait for `until()` to be truthy; on a timeout, photograph the page and fail."""

        def check(_: object) -> Any:
            try:
                return until()
            except WebDriverException:
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(check)
        except TimeoutException:
            failed = self.shot("FAILED")
            pytest.fail(
                f"{self.device}: waited {timeout:.0f} s for {what} at {self.path}; "
                f"the page is in {failed}",
                pytrace=False,
            )

    def by_css(self, selector: str) -> WebElement:
        found: WebElement = self.wait(
            f"element {selector}", lambda: self.driver.find_element(By.CSS_SELECTOR, selector)
        )
        return found

    def testid(self, name: str) -> str:
        """The text of the element with data-testid=name, spaces normalised (read even
        when it sits in a closed <details>)."""
        el = self.by_css(f'[data-testid="{name}"]')
        text = el.get_attribute("textContent") or ""
        return " ".join(text.split())

    def visible_testid(self, name: str) -> str:
        el = self.by_css(f'[data-testid="{name}"]')
        assert el.is_displayed(), f"{name} is not shown on {self.path}"
        return " ".join(el.text.split())

    def h1(self) -> str:
        return " ".join(self.by_css("main h1").text.split())

    def width(self) -> int:
        """The page's width in CSS pixels (the phone's screen, the desktop's window)."""
        return int(self.driver.execute_script("return window.innerWidth;"))

    def lang(self) -> str:
        return str(self.by_css("html").get_attribute("lang"))

    def click_link(self, container: str, href: str) -> None:
        """Click the link to `href` inside `container`, as a reader taps it, and wait for
        the new page."""
        link = self.by_css(f'{container} a[href="{href}"]')
        self.driver.execute_script(
            "window.__shailooLeft = true; arguments[0].scrollIntoView({block: 'center'});", link
        )
        link.click()
        self.wait(
            f"the page {href}",
            lambda: (
                self.path.split("?")[0] == href
                and self.driver.execute_script("return window.__shailooLeft === undefined;")
            ),
        )
        self.by_css("main h1")

    def console_errors(self) -> list[str]:
        """The browser's console errors so far (a missing favicon is not one of ours)."""
        try:
            logs = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [
            str(x.get("message"))
            for x in logs
            if x.get("level") == "SEVERE" and "favicon.ico" not in str(x.get("message"))
        ]


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    return _installed()


@pytest.fixture(scope="module")
def shot_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    dirs = _shots_dirs(tmp_path_factory.mktemp("screenshots"))
    print(f"\nbrowser screenshots: {', '.join(str(d) for d in dirs)}")
    return dirs


@pytest.fixture
def election(provisioned: Provisioned, tmp_path: Path) -> Election:
    """A published election of its own (versions 1 and 2), for a test that may publish more."""
    return build(provisioned, f"sqlite:///{tmp_path / 'central.sqlite'}")


@pytest.fixture
def server(election: Election) -> Iterator[LiveServer]:
    app = site(election, kit_dir=election.p.central_dir, sse_keepalive_seconds=1.0)
    with LiveServer(app) as s:
        yield s


def _person(
    paths: tuple[str, str],
    server: LiveServer,
    shot_dirs: list[Path],
    device: str,
    walk: str,
    *,
    session: pytest.Session | None = None,
) -> Generator[Person, None, None]:
    chromium, chromedriver = paths
    width, height = PHONE if device == "phone" else DESKTOP
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    if device == "phone":  # headless windows are at least 500 px wide: emulate the phone
        options.add_experimental_option(
            "mobileEmulation",
            {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}},
        )
    # The reader's browser asks for Russian: "/" must send them to /ru/.
    options.add_experimental_option("prefs", {"intl.accept_languages": "ru-RU,ru"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver)
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        pytest.fail(
            f"could not start headless Chromium ({chromium} with {chromedriver}): {exc.msg}; "
            "run `make test` to install the Debian packages chromium and chromium-driver",
            pytrace=False,
        )
    driver.set_page_load_timeout(30)
    person = Person(driver, server.url, device, shot_dirs, walk)
    failed_before = session.testsfailed if session is not None else 0
    try:
        yield person
    finally:
        try:
            if session is not None and session.testsfailed > failed_before:
                print(f"\nthe page when the test failed: {person.shot('FAILED-here')}")
        except WebDriverException:
            pass
        finally:
            driver.quit()


def _walk(request: pytest.FixtureRequest) -> str:
    """A test's name in three words: home-drill-down, a-live-update, ..."""
    return "-".join(request.node.originalname.removeprefix("test_").split("_")[:3])


@pytest.fixture
def phone(
    browser_paths: tuple[str, str],
    server: LiveServer,
    shot_dirs: list[Path],
    request: pytest.FixtureRequest,
) -> Iterator[Person]:
    yield from _person(
        browser_paths, server, shot_dirs, "phone", _walk(request), session=request.session
    )


@pytest.fixture
def desktop(
    browser_paths: tuple[str, str],
    server: LiveServer,
    shot_dirs: list[Path],
    request: pytest.FixtureRequest,
) -> Iterator[Person]:
    yield from _person(
        browser_paths, server, shot_dirs, "desktop", _walk(request), session=request.session
    )


# --- what the pages should say -------------------------------------------------------------
def _n_of(n: int, of: int, lang: Lang) -> str:
    return " ".join(say("n_of", lang, n=fmt_int(n, lang), of=fmt_int(of, lang)).split())


def _num(n: int, lang: Lang) -> str:
    return " ".join(fmt_int(n, lang).split())


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _signed_votes(tallies: dict[str, ContestTally]) -> dict[str, int]:
    """data-testid -> count, of a station's signed ASU report, as its page names them."""
    out = {}
    for cid, t in tallies.items():
        out[f"ballots-{cid}-asu"] = t.ballots
        out[f"invalid-{cid}-asu"] = t.invalid
        for option, votes in t.votes.items():
            out[f"votes-{cid}-asu-{option}"] = votes
    return out


# --- the walks -------------------------------------------------------------------------------
def test_home_drill_down_to_a_station_and_switch_language_on_a_phone(
    election: Election, phone: Person
) -> None:
    d = election.definition
    station = d.station_by_number(1001)
    commission = d.commission(station.commission_id)
    district = next(x for x in d.districts if x.id == commission.district_id)
    region = next(x for x in d.regions if x.id == district.region_id)
    reported = len(election.asu)

    phone.open("/")  # the browser asks for Russian
    phone.wait("the Russian home page", lambda: phone.path == "/ru/")
    assert phone.width() == PHONE[0]
    assert phone.lang() == "ru"
    assert phone.h1() == say("home_title", "ru")
    assert phone.visible_testid("stations-reported") == _n_of(reported, len(d.stations), "ru")
    assert phone.testid("version") == str(election.versions[-1])
    turnout = _json(phone.base + "/api/v1/nation.json")["turnout"]  # what was published
    assert phone.visible_testid("turnout-voted") == _num(turnout["voted"], "ru")
    assert phone.visible_testid("turnout-percent").endswith("%")
    contest = d.contests[0].id
    assert phone.testid(f"counted-{contest}-asu") == _n_of(reported, len(d.stations), "ru")
    # the page fits the phone: nothing wider than the screen outside its own scroll region
    overflow = phone.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert overflow <= 1, f"the home page is {overflow} px wider than a {PHONE[0]} px phone"
    phone.shot("home-ru")

    phone.click_link("#regions", f"/ru/region/{region.id}")
    assert region.name.ru in phone.h1()
    phone.shot("region-ru")
    phone.click_link("#children", f"/ru/district/{district.id}")
    assert district.name.ru in phone.h1()
    phone.shot("district-ru")
    phone.click_link("#children", f"/ru/commission/{commission.id}")
    assert commission.name.ru in phone.h1()
    phone.shot("commission-ru")
    phone.click_link("#children", f"/ru/station/{station.id}")
    assert phone.h1() == say("station_title", "ru", number=station.number)
    assert phone.testid("station-registered") == _num(station.registered_voters, "ru")
    signed = _signed_votes(asu_tallies(election.asu[1001]))
    shown = {k: int(re.sub(r"\D", "", phone.testid(k))) for k in signed}
    assert shown == signed, "the station page's ASU numbers are not the ones it signed"
    for section in ("#zero-report", "#asu-reports", "#manual-count", "#reconciliation"):
        phone.by_css(section)
    phone.shot("station-ru")

    for lang in ("en", "ky"):
        phone.click_link("nav.langs", f"/{lang}/station/{station.id}")
        assert phone.lang() == lang
        assert phone.h1() == say("station_title", lang, number=station.number)
        current = phone.by_css("nav.langs a[aria-current='page']")
        assert current.get_attribute("hreflang") == lang
        assert phone.testid("station-registered") == _num(station.registered_voters, lang)
        phone.shot(f"station-{lang}")
    # back home in Kyrgyz by the site's own title link
    phone.click_link("header .brand", "/ky/")
    assert phone.h1() == say("home_title", "ky")
    assert phone.visible_testid("stations-reported") == _n_of(reported, len(d.stations), "ky")
    phone.shot("home-ky")
    assert phone.console_errors() == []


def _close_the_last_station(e: Election) -> int:
    """Station 7001 closes and reports; the publisher publishes the next version."""
    fs = e.stations[OPEN_ONLY]
    envs = [
        fs.at(20).ident_report("final", {"09": 6, "16": 9}),
        fs.at(20, 3).final_report(fs.tallies(random.Random(7), 15)),
    ]
    with open_database(e.db_url) as db:
        assert [x.status for x in accept_batch(db, e.definition, items(*envs))] == ["accepted"] * 2
        done = publish(db, e.definition, at=MANUAL_AT + dt.timedelta(minutes=30))
        assert done.new and done.version is not None, done.problems
        return done.version


def test_a_live_update_arrives_without_a_reload_on_a_desktop(
    election: Election, desktop: Person
) -> None:
    d = election.definition
    before = election.versions[-1]
    desktop.open("/en/")
    assert desktop.width() == DESKTOP[0]
    assert desktop.visible_testid("stations-reported") == _n_of(3, len(d.stations), "en")
    assert desktop.by_css("html").get_attribute("data-version") == str(before)
    assert desktop.by_css("#main").get_attribute("data-live") == "1"
    # a mark on this very document: a reload would lose it
    desktop.driver.execute_script("window.__shailooSamePage = 'yes';")
    desktop.shot("home-en-before")

    version = _close_the_last_station(election)
    assert version == before + 1
    desktop.wait(
        "the new version on the open page",
        lambda: desktop.by_css("html").get_attribute("data-version") == str(version),
    )
    assert desktop.visible_testid("stations-reported") == _n_of(4, len(d.stations), "en")
    assert desktop.testid("version") == str(version)
    assert desktop.driver.execute_script("return window.__shailooSamePage;") == "yes", (
        "the page was reloaded instead of updated in place"
    )
    status = desktop.wait(
        "the status line", lambda: desktop.by_css("#live-status").text.strip() or None
    )
    assert status.startswith(say("live_updated", "en", time="").strip()), status
    assert desktop.path == "/en/"
    desktop.shot("home-en-after-live-update")
    assert desktop.console_errors() == []


def test_check_a_printed_report_with_its_photo_on_a_phone(
    election: Election, phone: Person, tmp_path: Path
) -> None:
    number = 1001
    env = election.asu[number]
    [png] = render_report_png(
        env, cert_pem(election.p, number), election.definition, layout="thermal80",
        out=tmp_path / "report-1001.png",
    )  # fmt: skip
    station = election.definition.station_by_number(number)

    phone.open("/en/")
    phone.click_link("nav.sections", "/en/check")
    assert phone.h1() == say("check_title", "en")
    phone.shot("check-form")
    phone.by_css("#check-photo").send_keys(str(png.resolve()))
    phone.by_css("#check-form button[type=submit]").click()
    report = phone.by_css("#report-0")
    assert report.get_attribute("data-verified") == "true"
    assert say("check_ok_title", "en") in report.text
    assert phone.visible_testid("check-received") == say("check_received_same", "en")
    rows = phone.driver.find_elements(By.CSS_SELECTOR, "#report-0-lines tbody tr")
    tallies = asu_tallies(env)
    assert len(rows) == sum(2 + len(t.votes) for t in tallies.values())
    for row in rows:
        cells = [c.get_attribute("textContent") or "" for c in row.find_elements(By.XPATH, "*")]
        signed, published, same = cells[2].strip(), cells[3].strip(), cells[4].strip()
        assert signed == published and same == say("same", "en"), cells
    phone.shot("check-verified")

    phone.click_link("#report-0", f"/en/station/{station.id}")
    assert phone.h1() == say("station_title", "en", number=number)
    signed_votes = _signed_votes(tallies)
    shown = {k: int(re.sub(r"\D", "", phone.testid(k))) for k in signed_votes}
    assert shown == signed_votes
    phone.shot("check-station")
    assert phone.console_errors() == []


def test_every_language_has_its_home_page(election: Election, desktop: Person) -> None:
    """The same home page in each language, by the language links, as a desktop reader."""
    d = election.definition
    desktop.open("/ru/")
    for lang in LANGS:
        desktop.click_link("nav.langs", f"/{lang}/")
        assert desktop.lang() == lang and desktop.h1() == say("home_title", lang)
        assert desktop.visible_testid("stations-reported") == _n_of(3, len(d.stations), lang)
        desktop.shot(f"home-{lang}")


def test_pages_left_behind_close_their_event_streams(
    browser_paths: tuple[str, str], election: Election, server: LiveServer, shot_dirs: list[Path]
) -> None:
    """A reader walking from page to page holds one event stream, not one per page visited
    (a browser has six connections per host: more, and the next page never loads)."""
    subscribers = server.app[STATE].subscribers
    walk = _person(browser_paths, server, shot_dirs, "phone", "bfcache")
    person = next(walk)
    try:
        for path in ("/ru/", "/en/", "/ky/", f"/ru/station/{election.station_id(1001)}"):
            person.open(path)
            person.by_css("main h1")
        deadline = time.monotonic() + 3
        while len(subscribers) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(subscribers) <= 1, f"{len(subscribers)} event streams open after 4 pages"
    finally:
        walk.close()
