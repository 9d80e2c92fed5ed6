"""Viewing copies (SPEC §14.10, R15): an H.264/AAC MP4 derived by FFmpeg from an original
segment that verifies, with a watermark burned into the picture.

    res = derive(archive_dir, device, segment, out, watermark_text(requester, request),
                 work_dir=tmp_dir, progress=None)
    # -> {"sha256", "size", "sources": [...], "derivation": {...}}
    x = extract(archive_dir, device, segment, "out/SC-1-5.mkv", span=None)
    # the verifiable extract (the clip of SPEC §12 and its .prov): the originals' bytes

The original is read as clip.py reads it (clip.ArchiveSource: the records the signed
station log holds, checked against the device's registered key), but through
Archive.open_object (objects may be encrypted at rest, SPEC §9.4): the media object and
the chunk index object are the ones the signed log linked at the segment's view path.
The index must chain to the signed root, and every chunk is checked against its signed
hash before its bytes reach FFmpeg: a changed byte stops the derivation (CopyError, code
1) and nothing is left behind.

FFmpeg runs as /usr/bin/ffmpeg with an argument list (no shell), its input forced to
Matroska from a pipe (no other demuxer, no other protocol), the watermark read from a
file with text expansion off (a requester's name is data, never filter syntax), under a
time limit and an output size limit (RLIMIT_FSIZE: a copy that would be larger is
not cut short, FFmpeg is stopped), with its working files in ``work_dir`` (removed on
failure). The output is H.264 (yuv420p, High profile) and AAC at 48 kHz in an MP4 whose
index is at the front (+faststart): Chromium (Debian's too), Firefox and Safari play it in
a <video> element.
"""
from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from .clip import ArchiveSource
from .clipcut import ClipError, Segment, _read_chunk
from . import records as R
from .i18n import _

__all__ = ["derive", "extract", "watermark_text", "ffmpeg_version", "CopyFailed", "FFMPEG", "FONT",
           "TIME_LIMIT", "MAX_COPY", "MIN_HEIGHT", "WATERMARK_MAX"]

FFMPEG = "/usr/bin/ffmpeg"
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
TIME_LIMIT = 300                # seconds one derivation may take, plus one per MB of original
MAX_COPY = 4 << 30              # bytes of one viewing copy
MIN_HEIGHT = 360                # smaller pictures are scaled up: the watermark stays legible
WATERMARK_MAX = 200             # characters of the watermark's first line
MEMORY_LIMIT = 4 << 30          # address space of the FFmpeg process
_STDERR_MAX = 4000              # characters of FFmpeg's complaint kept in a message
VIEW_LINE = "仅供查看 / viewing copy"


class CopyFailed(Exception):
    """The copy cannot be made (the message says why and what to do); ``code`` 1: the
    archive does not prove the original (run `sealcam verify`), 3: anything else."""

    def __init__(self, message, code=3):
        super().__init__(message)
        self.code = code


def watermark_text(requester, request_id, extra=None):
    """The two lines burned into the picture: "REQUESTER  REQUEST" and the viewing-copy
    line. Control characters (line breaks included) become U+FFFD, so a name cannot add a
    line or hide the second one; the first line is at most WATERMARK_MAX characters."""
    def clean(s):
        from .catalogue.events import bad_char
        return "".join("\ufffd" if bad_char(c) is not None else c for c in str(s))
    first = "  ".join(clean(x) for x in (requester, request_id, extra) if x)
    return first[:WATERMARK_MAX] + "\n" + VIEW_LINE


def ffmpeg_version():
    """The version FFmpeg reports (e.g. "5.1.9-0+deb12u1"), or CopyFailed."""
    try:
        p = subprocess.run([FFMPEG, "-hide_banner", "-version"], capture_output=True,
                           timeout=30, text=True, errors="replace")
    except FileNotFoundError:
        raise CopyFailed(_("%(ffmpeg)s is not installed: viewing copies need FFmpeg "
                           "(Debian: apt install ffmpeg)") % {"ffmpeg": FFMPEG}) from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CopyFailed(_("%(ffmpeg)s cannot run (%(why)s)")
                         % {"ffmpeg": FFMPEG, "why": e}) from None
    words = p.stdout.split()
    if p.returncode != 0 or len(words) < 3 or words[:2] != ["ffmpeg", "version"]:
        raise CopyFailed(_("%(ffmpeg)s -version did not say its version: is it FFmpeg?")
                         % {"ffmpeg": FFMPEG})
    return words[2][:64]


def _filter_value(s):
    """``s`` as the value of a filter option inside a filter graph: escaped for the option
    parser (\\ ' :) and then for the graph parser (\\ ' [ ] , ;)."""
    for c in "\\':":
        s = s.replace(c, "\\" + c)
    for c in "\\'[],;":
        s = s.replace(c, "\\" + c)
    return s


def _video_filter(watermark):
    """The -vf graph: scaled to at least MIN_HEIGHT lines (even sizes, for yuv420p), and
    the watermark drawn twice (top right, bottom left: a crop keeps one of them)."""
    graph = ["scale=w=-2:h='max(%d,trunc(ih/2)*2)'" % MIN_HEIGHT, "format=yuv420p"]
    if watermark is not None:
        common = ("fontfile=%s:textfile=wm.txt:expansion=none:fontsize=h/18:"
                  "fontcolor=white@0.9:box=1:boxcolor=black@0.5:boxborderw=6:"
                  "line_spacing=4" % _filter_value(FONT))
        graph.append("drawtext=%s:x=w-text_w-w/40:y=h/40" % common)
        graph.append("drawtext=%s:x=w/40:y=h-text_h-h/40" % common)
    return ",".join(graph)


def _args(watermark):
    """FFmpeg's arguments (relative names: it runs in the work folder)."""
    return ["-hide_banner", "-loglevel", "error", "-nostats", "-threads", "2",
            "-protocol_whitelist", "pipe", "-f", "matroska", "-i", "pipe:0",
            "-map", "0:v:0", "-map", "0:a:0?", "-vf", _video_filter(watermark),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-profile:v", "high",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-ar", "48000",
            "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart",
            "-f", "mp4", "-y", "out.mp4"]


class _Original(ArchiveSource):
    """clip.ArchiveSource whose media and chunk index are read through
    Archive.open_object: the objects the signed station log linked at their view paths."""

    def _object(self, rel):
        sha = self.objects.get(rel)
        if not isinstance(sha, bytes) or len(sha) != 32:
            raise ClipError(_("%(device)s: %(path)s is not in the archive (the media of this "
                              "segment was not offloaded)") % {"device": self.device,
                                                               "path": rel})
        try:
            return sha.hex(), self.a.open_object(sha.hex())
        except FileNotFoundError:
            raise ClipError(_("%(device)s: %(path)s (object %(sha)s) is missing from the "
                              "archive, though its station log records it: run `sealcam "
                              "verify %(archive)s`") % {"device": self.device, "path": rel,
                                                        "sha": sha.hex()[:16],
                                                        "archive": self.root}, 1) from None
        except OSError as e:
            raise ClipError(_("%(device)s: %(path)s cannot be read (%(why)s): run `sealcam "
                              "verify %(archive)s`") % {"device": self.device, "path": rel,
                                                        "why": e, "archive": self.root},
                            1) from None

    def open_media(self, rel):
        from .tlog.replay import segment_of
        if segment_of(rel) in self.disposed:
            return super().open_media(rel)        # raises: the segment was disposed of
        _sha, f = self._object(rel)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        return f, size

    def index(self, rel, n):
        _sha, f = self._object(rel)
        with f:
            data = f.read(32 * n)
        if len(data) != 32 * n:
            raise ClipError(_("%(device)s: %(path)s holds %(have)d chunk hashes, its records "
                              "sign %(n)d: run `sealcam verify %(archive)s`")
                            % {"device": self.device, "path": rel, "have": len(data) // 32,
                               "n": n, "archive": self.root}, 1)
        return data


def _sources(src, seg):
    """What the copy is derived from: the media and index objects (SHA-256 of their
    content, the path the signed log linked them at) and the signed records that cover
    the media (REC_START and the record whose root covers it all), each by its hash."""
    last = max(seg.roots, key=lambda r: r.body[R.K.CHUNKS])
    out = [{"kind": "media", "path": seg.media, "sha256": src.objects[seg.media].hex(),
            "length": seg.length, "chunks": seg.chunks,
            "root": last.body[R.K.ROOT].hex()},
           {"kind": "index", "path": R.index_path(seg.media),
            "sha256": src.objects[R.index_path(seg.media)].hex()}]
    for r in (seg.start, last):
        out.append({"kind": "record", "seq": r.seq, "record": r.tname,
                    "hash": bytes(r.hash).hex()})
    return out


def _limits(max_bytes, seconds):
    def apply():                    # in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes,) * 2)   # SIGXFSZ past it
        resource.setrlimit(resource.RLIMIT_CPU, (int(seconds) * 2 + 10,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def derive(archive_dir, device, segment, out, watermark, *, work_dir, progress=None,
           timeout=None, max_bytes=MAX_COPY):
    """Write the viewing copy of ``device``'s segment ``segment`` (the seq of its
    REC_START) of the archive at ``archive_dir`` to ``out`` (a new file, made by rename
    from ``work_dir``, which must be on the same file system). ``watermark``: the text
    burned in (watermark_text(); None only for a comparison in the tests). ``progress``:
    callable(fraction, text). ``timeout``: seconds (default TIME_LIMIT plus one for each MB
    of the original). Returns {"sha256", "size", "sources", "derivation"}; raises
    CopyFailed."""
    version = ffmpeg_version()
    if not os.path.isfile(FONT) and watermark is not None:
        raise CopyFailed(_("the watermark font %(font)s is missing (Debian: apt install "
                           "fonts-wqy-microhei)") % {"font": FONT})
    os.makedirs(work_dir, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="copy-", dir=work_dir)
    try:
        try:
            src = _Original(archive_dir, device)
        except ClipError as e:
            raise CopyFailed(str(e), e.code) from None
        try:
            res = _run(src, segment, tmp, watermark, progress, timeout, max_bytes)
        except ClipError as e:
            raise CopyFailed(str(e), e.code) from None
        finally:
            src.close()
        res["derivation"] = {"tool": "ffmpeg", "version": version,
                             "args": _args_summary(watermark),
                             "watermark": watermark or ""}
        os.chmod(os.path.join(tmp, "out.mp4"), 0o444)
        os.replace(os.path.join(tmp, "out.mp4"), out)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract(archive_dir, device, segment, out, span=None):
    """Write the clip of SPEC §12 of ``device``'s segment ``segment`` (whole, or ``span`` =
    (from s, to s) of its media time) to ``out`` and ``out``.prov, cut from the originals
    read as derive() reads them (the extract is their bytes). Returns {"clip" (the cut's
    summary), "sha256", "size", "sources", "derivation"}; CopyFailed (nothing left
    behind)."""
    from .clipcut import cut
    from .clipfile import FORMAT
    try:
        src = _Original(archive_dir, device)
        try:
            seg = Segment(src, segment)
            if span is None:
                b1, b2, asked = 0, seg.length, (0, int(seg.media_end()))
            else:
                asked = (int(span[0] * 1000), int(span[1] * 1000))
                b1, b2 = seg.bytes_of(*asked)
            subject = {"kind": "range", "seqs": [], "from": int(seg.origin_rtc + asked[0]),
                       "to": int(seg.origin_rtc + asked[1])}
            clip = cut(seg, b1, b2, asked, subject, [], out)
            sources = _sources(src, seg)
        finally:
            src.close()
        sha, size = _hash_file(out)
        sources.append({"kind": "prov", "sha256": _hash_file(out + ".prov")[0]})
    except BaseException as e:
        for p in (out, out + ".prov"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        if isinstance(e, ClipError):
            raise CopyFailed(str(e), e.code) from None
        raise
    return {"clip": clip, "sha256": sha, "size": size, "sources": sources,
            "derivation": {"tool": "sealcam clip", "version": FORMAT,
                           "args": "bytes %d-%d, chunks %d-%d" % (
                               b1, b2, clip["chunks"][0], clip["chunks"][1]),
                           "watermark": ""}}


def _hash_file(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            n += len(block)
    return h.hexdigest(), n


def _args_summary(watermark):
    """The arguments as recorded in the provenance: FFmpeg's own, with the graph."""
    return " ".join(_args(watermark))[:2000]


def _run(src, segment, tmp, watermark, progress, timeout, max_bytes):
    if type(segment) is not int or segment < 0:
        raise ClipError(_("a segment is the seq of its REC_START, a whole number"))
    seg = Segment(src, segment)
    hs = seg.hashes()                       # the index chains to the signed root
    if timeout is None:
        timeout = TIME_LIMIT + seg.length // 10**6
    sources = _sources(src, seg)
    if watermark is not None:
        with open(os.path.join(tmp, "wm.txt"), "w", encoding="utf-8") as f:
            f.write(watermark)
    err = open(os.path.join(tmp, "ffmpeg.err"), "w+b")
    f, _size = src.open_media(seg.media)
    deadline = time.monotonic() + timeout
    with f, err:
        try:
            p = subprocess.Popen([FFMPEG] + _args(watermark), cwd=tmp,
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=err, preexec_fn=_limits(max_bytes, timeout),
                                 close_fds=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise ClipError(_("%(ffmpeg)s cannot run (%(why)s)")
                            % {"ffmpeg": FFMPEG, "why": e}) from None
        timer = threading.Timer(timeout, p.kill)
        timer.daemon = True
        timer.start()
        try:
            try:
                for i in range(seg.chunks):
                    data = _read_chunk(seg, f, hs, i)     # checked before FFmpeg sees it
                    if time.monotonic() > deadline:
                        break
                    p.stdin.write(data)
                    if progress is not None:
                        progress((i + 1) / seg.chunks * 0.9, "%s/%d" % (src.device, segment))
                p.stdin.close()
            except BrokenPipeError:
                pass                        # FFmpeg stopped: its exit says why
            rc = p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        except BaseException:
            p.kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        if rc is None or time.monotonic() > deadline:
            raise ClipError(_("FFmpeg took more than %(s)d s for %(device)s segment "
                              "%(segment)d: no copy was made")
                            % {"s": timeout, "device": src.device, "segment": segment})
        err.seek(0)
        why = err.read(_STDERR_MAX).decode("utf-8", "replace").strip()
    path = os.path.join(tmp, "out.mp4")
    if rc == -signal.SIGXFSZ or (rc == 0 and os.path.getsize(path) >= max_bytes):
        raise ClipError(_("the copy of %(device)s segment %(segment)d would be more than "
                          "%(mb)d MB: no copy was made")
                        % {"device": src.device, "segment": segment,
                           "mb": max_bytes // 10**6})
    if rc != 0 or not os.path.isfile(path):
        raise ClipError(_("FFmpeg could not derive a copy of %(device)s segment "
                          "%(segment)d (exit %(rc)s): %(why)s")
                        % {"device": src.device, "segment": segment, "rc": rc,
                           "why": R.printable(why.splitlines()[-1] if why else "-")})
    sha, size = _hash_file(path)
    if progress is not None:
        progress(1.0, "%s/%d" % (src.device, segment))
    return {"sha256": sha, "size": size, "sources": sources}
