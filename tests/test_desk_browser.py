"""The clerk's desk in a real headless browser (Debian's chromium through Playwright), as
issue 12 asks: `sealcam desk` runs as its own process on a free port against an archive
with a real recording (tests/test_copies.py builds it: the firmware's muxer fed by the
simulated camera and microphone, offloaded by `sealcam offload`); a clerk signs in,
searches, asks for access, the archive head and the case unit's leader approve it (a
clerk's request is refused a viewing copy until then), the clerk plays the viewing copy
(real FFmpeg, H.264/AAC) in the page, and the register has one more line naming the
request and both approvals.

With SEALCAM_DESK_SCREENSHOT=1 it also saves the register page in Chinese as
docs/desk.png (the README's screenshot).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CASE, UNIT = "FZ-2026-007", "U-1"
PW = {"wang.head": "head pass 2026", "li.na": "clerk pass 2026",
      "zhao.lead": "leader pass 2026"}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="no %s (apt-get install chromium): the desk's "
                                       "browser test needs a real browser" % CHROMIUM)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A real archive with one recording filed into case CASE of unit U-1, and users with
    passwords: wang.head (archive head), li.na (clerk), zhao.lead (U-1's leader)."""
    from test_copies import DEV, _build
    from host_tools.catalogue import cases, users
    from host_tools.catalogue.store import Catalogue
    tmp = tmp_path_factory.mktemp("desk-browser")
    arch, seg = _build(tmp)
    with Catalogue(arch) as cat:
        root = users.bootstrap_user(cat)
        cat.act(root, users.add_event("wang.head", "archive_head", "王档案",
                                      password=PW["wang.head"]))
        head = users.User("wang.head", "archive_head")
        # the requester and the unit leader are set up by another than the archive head
        # who approves (an approval by whoever set up the requester or the other approver
        # does not count: SPEC §14.9)
        cat.act(head, users.add_event("chen.chief", "bureau_chief", "陈局长",
                                      password="chief pass 2026"))
        cat.act(users.User("chen.chief", "bureau_chief"),
                users.add_event("li.na", "clerk", "李娜", password=PW["li.na"]))
        cat.act(users.User("chen.chief", "bureau_chief"),
                users.add_event("zhao.lead", "unit_leader", "赵队长",
                                password=PW["zhao.lead"], unit=UNIT))
        clerk = users.User("li.na", "clerk")
        cat.act(clerk, cases.opened_event(CASE, "违法建设 五一路 12号", unit=UNIT))
        cat.act(clerk, cases.linked_event(CASE, device=DEV, segment=seg))
    return str(arch), DEV, seg, tmp


@pytest.fixture(scope="module")
def desk(archive):
    arch, _dev, _seg, tmp = archive
    port = _free_port()
    env = dict(os.environ, LANGUAGE="en", SEALCAM_ARGON2="cheapest")
    log = open(tmp / "desk.log", "w+")
    p = subprocess.Popen([sys.executable, "-m", "host_tools.cli", "desk", "--archive", arch,
                          "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail("sealcam desk did not start: %s" % log.read()[-2000:])
            time.sleep(0.1)
    yield url
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
    log.seek(0)
    out = log.read()
    assert "Traceback" not in out, out[-3000:]


@pytest.fixture(scope="module")
def page(desk, tmp_path_factory):
    pw = pytest.importorskip("playwright.sync_api")
    with pw.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, viewport={"width": 1360, "height": 860})
        try:
            pg = ctx.new_page()
            pg.set_default_timeout(15_000)
            yield pg
        finally:
            ctx.close()


def sign_in(pg, url, name):
    pg.goto(url + "/login")
    if pg.locator("form[action$='/logout'] button").count():
        pg.click("form[action$='/logout'] button")
    assert pg.locator("#password").count() == 1       # the first page is the sign-in
    pg.fill("#name", name)
    pg.fill("#password", PW[name])
    pg.click("#signin")
    pg.wait_for_url(re.compile(r".*/search$"))
    assert name in pg.inner_text("header")


def register_rows(pg, url):
    pg.goto(url + "/register")
    return int(re.search(r"\d+", pg.inner_text("#count")).group(0))


def test_desk_in_a_real_browser(archive, desk, page):
    arch, dev, seg, _tmp = archive
    pg, url = page, desk
    t0 = time.monotonic()
    pg.goto(url + "/search")
    assert pg.url.endswith("/login")                   # nothing without signing in
    # the clerk searches by device and asks for access to the recording it finds
    sign_in(pg, url, "li.na")
    before = register_rows(pg, url)
    pg.goto(url + "/search")
    pg.fill("input[name=device]", dev)
    pg.click("#search")
    row = pg.locator("table.results tbody tr", has_text=dev)
    assert row.count() == 1 and CASE in row.inner_text()
    row.locator("a.button").click()
    pg.wait_for_url(re.compile(r".*/access\?.*"))
    assert pg.input_value("input[name=target]") == "%s:%d" % (dev, seg)
    assert pg.input_value("input[name=case_no]") == CASE
    pg.fill("textarea[name=purpose]", "court hearing 庭审")
    pg.click("#request")
    pg.wait_for_url(re.compile(r".*/request/AR-.*"))
    rid = pg.url.rsplit("/request/", 1)[1]
    assert pg.inner_text("#state") == "requested"
    assert pg.locator("button.view").count() == 0      # no copy before approval
    tok = pg.get_attribute("form[action$='/logout'] input[name=csrf_token]", "value")
    r = pg.request.post(url + "/view/%s/%s/%d" % (rid, dev, seg),   # asked anyway
                        form={"csrf_token": tok})
    assert r.status == 403 and "not approved" in r.text()
    # a clerk is offered no approval; the archive head and the unit's leader approve
    for approver in ("wang.head", "zhao.lead"):
        sign_in(pg, url, approver)
        pg.goto(url + "/access")
        pg.locator("table.requests a", has_text=rid).first.click()
        pg.wait_for_url(re.compile(r".*/request/AR-.*"))
        pg.click("#approve")
        pg.wait_for_url(re.compile(r".*/request/AR-.*"))
    assert pg.inner_text("#state") == "approved"
    # the clerk plays the viewing copy in the page
    sign_in(pg, url, "li.na")
    pg.goto(url + "/request/" + rid)
    pg.click("button.view")
    pg.wait_for_url(re.compile(r".*/player/[0-9a-f]{64}$"))
    r = pg.evaluate("""() => new Promise(res => {
        const v = document.getElementById('player');
        v.muted = true;
        const fail = () => res({err: v.error ? v.error.code : 'error'});
        v.onerror = fail;
        const go = () => {
            const t0 = v.currentTime;
            v.play().then(() => setTimeout(() => res({ready: v.readyState, t0: t0,
                t: v.currentTime, w: v.videoWidth, h: v.videoHeight}), 1500))
             .catch(e => res({err: String(e)}));
        };
        if (v.readyState >= 2) go(); else v.addEventListener('loadeddata', go, {once: true});
        setTimeout(() => res({timeout: true, ready: v.readyState}), 12000);
    })""")
    assert "err" not in r and "timeout" not in r, r
    assert r["ready"] >= 2 and r["t"] > r["t0"] and r["h"] > 0, r
    # seeking asks for a range of the copy: the browser plays from there
    r2 = pg.evaluate("""() => new Promise(res => {
        const v = document.getElementById('player');
        v.onseeked = () => res({t: v.currentTime, ready: v.readyState});
        v.currentTime = 0.5;
        setTimeout(() => res({timeout: true}), 5000);
    })""")
    assert "timeout" not in r2 and r2["t"] >= 0.4, r2
    # the register grew by the hand-out, with the request and both approvals
    assert register_rows(pg, url) == before + 1
    line = pg.locator("#register tbody tr", has_text=rid)
    assert line.count() == 1
    text = line.inner_text()
    assert "wang.head (archive_head)" in text and "zhao.lead (unit_leader)" in text
    assert "view" in text and "li.na" in text
    if os.environ.get("SEALCAM_DESK_SCREENSHOT") == "1":
        pg.goto(url + "/register?lang=zh_CN")
        pg.screenshot(path=os.path.join(ROOT, "docs", "desk.png"))
        pg.goto(url + "/register?lang=en")
    assert time.monotonic() - t0 < 60
