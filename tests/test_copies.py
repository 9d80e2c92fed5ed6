"""Viewing copies and extracts (R15 "people work on copies"; SPEC §14.10).

One real archive for the module: a recorder (the reference writer with the firmware's
Matroska muxer, fed by the simulated camera and microphone: MJPEG video and PCM audio, as in
tests/test_clip.py) records 3 s, offloaded by `sealcam offload`. Copies are made by the
real /usr/bin/ffmpeg and probed and decoded with PyAV; one is played by Debian's chromium.
"""
import hashlib
import os
import shutil

import av
import pytest

from host_tools import viewcopy
from test_clip import Media, _checkpointed, offload

DEV = "SC-COPY0001"
REQ = "AR-2026-0001"


def _build(tmp, sealed=False):
    """(archive, segment seq); ``sealed``: objects encrypted at rest (SPEC §14.8), the key
    file beside the archive."""
    import refwriter as rw
    from host_tools import station
    arch = tmp / "arch"
    station.init(arch)
    if sealed:
        from host_tools.archive import atrest
        atrest.new_key_file(tmp / "atrest.key")
        (arch / "station.toml").write_text('[confidentiality]\nkey_file = "%s"\n'
                                           % (tmp / "atrest.key"))
    s = rw.RefStore(tmp / "sd", seed=b"\xc3" * 32, device=DEV, officer="OFC-9", chunk=4096)
    s.boot()
    seg = s.rec_start().seq
    m = Media(s)
    _checkpointed(s, m, 3)
    s.close()
    s.rec_stop()
    offload(s, arch)
    return arch, seg


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("copies")
    arch, seg = _build(tmp)
    return {"tmp": tmp, "arch": arch, "seg": seg}


def _tree_hashes(root):
    """{relative path: sha256} of every file under the archive's objects/ and devices/."""
    out = {}
    for top in ("objects", "devices"):
        for d, _dirs, files in os.walk(os.path.join(root, top)):
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _frame(path, at_s=1.0):
    """The first decoded video frame at or after ``at_s``: its luma rows (lists of 0..255)."""
    with av.open(str(path)) as f:
        for fr in f.decode(video=0):
            if fr.time >= at_s:
                g = fr.reformat(format="gray")
                plane = g.planes[0]
                data = bytes(plane)
                return [list(data[y * plane.line_size:y * plane.line_size + g.width])
                        for y in range(g.height)]
    raise AssertionError("no frame at %s s in %s" % (at_s, path))


def _changed(a, b, y0, y1, x0, x1):
    """The share of pixels in rows y0..y1, columns x0..x1 that differ by more than 40."""
    n = sum(abs(a[y][x] - b[y][x]) > 40 for y in range(y0, y1) for x in range(x0, x1))
    return n / ((y1 - y0) * (x1 - x0))


@pytest.fixture(scope="module")
def derived(world):
    """A watermarked and an unmarked derivation of the same segment (viewcopy directly)."""
    tmp = world["tmp"]
    before = _tree_hashes(world["arch"])
    wm = viewcopy.watermark_text("李娜 (li.na)", REQ)
    marked = viewcopy.derive(world["arch"], DEV, world["seg"], str(tmp / "marked.mp4"), wm,
                             work_dir=str(tmp / "work"))
    plain = viewcopy.derive(world["arch"], DEV, world["seg"], str(tmp / "plain.mp4"), None,
                            work_dir=str(tmp / "work"))
    return {"marked": marked, "plain": plain, "before": before, "wm": wm,
            "marked_path": tmp / "marked.mp4", "plain_path": tmp / "plain.mp4"}


def test_r15_copies_viewcopy_is_h264_aac_mp4(derived):
    p = derived["marked_path"]
    with open(p, "rb") as f:
        head = f.read(64)
    assert head[4:8] == b"ftyp"
    # +faststart: the index (moov) comes before the media (mdat)
    data = p.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    with av.open(str(p)) as f:
        assert f.format.name.startswith("mov,mp4")
        kinds = {s.type: s.codec_context.name for s in f.streams}
        assert kinds == {"video": "h264", "audio": "aac"}
        v = f.streams.video[0]
        assert v.codec_context.pix_fmt == "yuv420p"
        assert v.codec_context.height >= viewcopy.MIN_HEIGHT
        assert float(f.duration / av.time_base) == pytest.approx(3.0, abs=0.5)
    assert derived["marked"]["size"] == os.path.getsize(p)
    assert derived["marked"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o444)


def test_r15_copies_watermark_is_burned_in(derived):
    a, b = _frame(derived["marked_path"]), _frame(derived["plain_path"])
    h, w = len(a), len(a[0])
    assert (len(b), len(b[0])) == (h, w)
    # the watermark: top right and bottom left boxes; the middle of the picture is the same
    assert _changed(a, b, 0, h // 4, w // 2, w) > 0.05
    assert _changed(a, b, 3 * h // 4, h, 0, w // 2) > 0.05
    assert _changed(a, b, h // 3, 2 * h // 3, w // 4, 3 * w // 4) < 0.01
    assert derived["marked"]["derivation"]["watermark"] == derived["wm"]
    assert "李娜 (li.na)  %s\n仅供查看 / viewing copy" % REQ == derived["wm"]


def test_r15_copies_provenance_names_the_originals(world, derived):
    from host_tools.archive import Archive
    from host_tools.clip import _signed_state
    srcs = {s["kind"]: s for s in derived["marked"]["sources"] if s["kind"] != "record"}
    recs = [s for s in derived["marked"]["sources"] if s["kind"] == "record"]
    a, _pub, _log, _size, _note, st = _signed_state(str(world["arch"]))
    try:
        for k in ("media", "index"):
            s = srcs[k]
            # the object the signed station log linked at that path, and its bytes
            assert st.objects[DEV][s["path"]].hex() == s["sha256"]
            assert hashlib.sha256(a.read_object(s["sha256"])).hexdigest() == s["sha256"]
        assert srcs["media"]["path"] == "m/%08d.mkv" % world["seg"]
        assert srcs["media"]["length"] == len(a.read_object(srcs["media"]["sha256"]))
        # the signed records covering the media, each by its hash in the signed log
        assert [r["record"] for r in recs] == ["REC_START", "SEGMENT"]
        for r in recs:
            assert st.records[DEV][r["seq"]][0].hex() == r["hash"]
    finally:
        a.close()
    d = derived["marked"]["derivation"]
    assert d["tool"] == "ffmpeg" and d["version"][:1].isdigit()
    assert "libx264" in d["args"] and "expansion=none" in d["args"]


def test_r15_copies_originals_unchanged(world, derived):
    assert _tree_hashes(world["arch"]) == derived["before"]
    assert not os.listdir(world["tmp"] / "work")          # no working files left


def test_r15_copies_hostile_watermark_is_text_not_syntax(world, tmp_path):
    """A requester's name full of filter-graph and drawtext syntax is drawn, not parsed."""
    evil = "x';drawtext=text=PWNED:%{localtime}[out],\\:\n%{pts}"
    wm = viewcopy.watermark_text(evil, REQ)
    assert wm.count("\n") == 1                  # a line break in a name is not a line
    res = viewcopy.derive(world["arch"], DEV, world["seg"], str(tmp_path / "e.mp4"), wm,
                          work_dir=str(tmp_path / "w"))
    assert res["derivation"]["watermark"] == wm
    assert "PWNED" not in res["derivation"]["args"]
    with av.open(str(tmp_path / "e.mp4")) as f:
        assert {s.type for s in f.streams} == {"video", "audio"}


def _tampered(world, tmp_path):
    """A copy of the archive whose media object has one byte changed."""
    from host_tools.clip import _signed_state
    arch = tmp_path / "arch"
    shutil.copytree(world["arch"], arch, symlinks=True)
    a, *_rest, st = _signed_state(str(arch))
    a.close()
    sha = st.objects[DEV]["m/%08d.mkv" % world["seg"]].hex()
    p = arch / "objects" / sha[:2] / sha[2:]
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x40
    p.write_bytes(bytes(data))
    return arch


def test_r15_copies_only_from_originals_that_verify(world, tmp_path):
    arch = _tampered(world, tmp_path)
    with pytest.raises(viewcopy.CopyFailed) as e:
        viewcopy.derive(arch, DEV, world["seg"], str(tmp_path / "t.mp4"),
                        viewcopy.watermark_text("li.na", REQ), work_dir=str(tmp_path / "w"))
    assert e.value.code == 1 and "does not match its signed hash" in str(e.value)
    assert not (tmp_path / "t.mp4").exists() and not os.listdir(tmp_path / "w")


def test_copies_unknown_segment_is_refused(world, tmp_path):
    with pytest.raises(viewcopy.CopyFailed) as e:
        viewcopy.derive(world["arch"], DEV, 999, str(tmp_path / "n.mp4"), "x\ny",
                        work_dir=str(tmp_path / "w"))
    assert "not a segment" in str(e.value)
    with pytest.raises(viewcopy.CopyFailed) as e:
        viewcopy.derive(world["arch"], "SC-NOSUCH01", 1, str(tmp_path / "n.mp4"), "x\ny",
                        work_dir=str(tmp_path / "w"))
    assert "not in the archive" in str(e.value)


def test_copies_time_limit_stops_ffmpeg(world, tmp_path):
    with pytest.raises(viewcopy.CopyFailed) as e:
        viewcopy.derive(world["arch"], DEV, world["seg"], str(tmp_path / "s.mp4"), "x\ny",
                        work_dir=str(tmp_path / "w"), timeout=0.01)
    assert "took more than" in str(e.value)
    assert not (tmp_path / "s.mp4").exists() and not os.listdir(tmp_path / "w")


def test_copies_size_limit(world, tmp_path):
    with pytest.raises(viewcopy.CopyFailed) as e:
        viewcopy.derive(world["arch"], DEV, world["seg"], str(tmp_path / "s.mp4"), "x\ny",
                        work_dir=str(tmp_path / "w"), max_bytes=10_000)
    assert "more than 0 MB" in str(e.value)
    assert not (tmp_path / "s.mp4").exists() and not os.listdir(tmp_path / "w")


def test_r15_copies_plays_in_chromium(derived, tmp_path):
    """Debian's chromium plays the H.264/AAC MP4 in a <video> element (time advances, the
    picture has its size)."""
    pw = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no /usr/bin/chromium")
    import http.server
    import threading
    shutil.copy(derived["marked_path"], tmp_path / "c.mp4")
    (tmp_path / "p.html").write_text('<video id=v src="c.mp4" muted></video>')

    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path), **k)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pw.sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium",
                                  args=["--no-sandbox"])
            try:
                pg = b.new_page()
                pg.goto("http://127.0.0.1:%d/p.html" % srv.server_address[1])
                r = pg.evaluate("""() => new Promise(res => {
                    const v = document.getElementById('v');
                    v.onerror = () => res({err: v.error && v.error.code});
                    v.play().then(() => setTimeout(() => res({t: v.currentTime,
                        w: v.videoWidth, h: v.videoHeight}), 1200))
                     .catch(e => res({err: String(e)})); })""")
            finally:
                b.close()
    finally:
        srv.shutdown()
    assert "err" not in r, r
    assert r["t"] > 0.3 and r["h"] >= viewcopy.MIN_HEIGHT, r


def test_r15_copies_from_objects_sealed_at_rest(tmp_path):
    """With the media encrypted at rest, the copy is derived from the plaintext (read
    through Archive.open_object), and the provenance names the plaintext's hash."""
    from host_tools.archive import Archive, atrest
    arch, seg = _build(tmp_path, sealed=True)
    res = viewcopy.derive(arch, DEV, seg, str(tmp_path / "s.mp4"),
                          viewcopy.watermark_text("li.na", REQ), work_dir=str(tmp_path / "w"))
    media = next(s for s in res["sources"] if s["kind"] == "media")
    with open(arch / "objects" / media["sha256"][:2] / media["sha256"][2:], "rb") as f:
        assert atrest.is_sealed(f.read(64))             # the object on disk is ciphertext
    a = Archive(arch, readonly=True)
    try:
        assert hashlib.sha256(a.read_object(media["sha256"])).hexdigest() == media["sha256"]
    finally:
        a.close()
    with av.open(str(tmp_path / "s.mp4")) as f:
        assert {s.type: s.codec_context.name for s in f.streams} == {"video": "h264",
                                                                      "audio": "aac"}
        assert sum(1 for _ in f.decode(video=0)) >= 10
