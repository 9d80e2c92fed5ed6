"""The station's memory while it reads chunk indexes (SPEC §8.5, attack B10): each index
streams to a staging file as it arrives, at most INDEX_RAM bytes of it asked at a time,
the segments a group at a time. Here the bounds are made tiny (one segment a group, one
READ of index a batch) and the recorder answers every index READ short, cut in the middle
of an entry: the offload still checks every chunk against its index, mirrors the card,
resumes after a broken link, and leaves no index file in staging."""
import os

import pytest

from host_tools import offload_pull
from host_tools.offload import offload

from test_offload import DEV, arch, assert_mirrors, dev_factory, shift  # noqa: F401


def short_index(dev, req):
    """Index READs answered with at most 45 bytes (never a whole number of entries)."""
    if req.get(1) != 5 or req[2].get(5) != 1:
        return None
    resp = dev._handle(req)
    b = (resp.get(2) or {}).get(1)
    if isinstance(b, bytes) and len(b) > 45:
        resp[2][1] = b[:45]
    return resp


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(offload_pull, "INDEX_RAM", 96)
    monkeypatch.setattr(offload_pull, "SEG_GROUP", 1)
    monkeypatch.setattr(offload_pull, "GROUP_INDEX", 0)


def _no_index_files(arch):
    left = [f for _, _, fs in os.walk(os.path.join(arch, "staging")) for f in fs
            if ".idx" in f]
    assert not left, left


def test_short_index_answers_tiny_window(tmp_path, arch, dev_factory, tiny):  # noqa: F811
    s = shift(tmp_path / "sd", segments=3, seconds=3, per_s=100_000, chunk=4096)
    sm = offload(dev_factory(s, hook=short_index).port, arch, register=True, timeout=0.5)
    assert sm.exit_code == 0, sm.errors
    assert sm.segments_completed == 3 and sm.chunks_reread == 0
    assert_mirrors(s.root, os.path.join(arch, "devices", DEV))
    _no_index_files(arch)


@pytest.mark.parametrize("cut", [150_000, 600_000])
def test_broken_link_resumes_with_streamed_index(tmp_path, arch, dev_factory, tiny,  # noqa: F811
                                                 cut):
    s = shift(tmp_path / "sd", segments=3, seconds=3, per_s=100_000, chunk=4096)
    sm = offload(dev_factory(s, hook=short_index, break_after=cut).port, arch, register=True,
                 timeout=0.5)
    assert sm.exit_code == 6 and sm.status == "link_broken", sm.errors
    _no_index_files(arch)
    sm2 = offload(dev_factory(s, hook=short_index).port, arch, timeout=0.5)
    assert sm2.exit_code == 0, sm2.errors
    assert sm2.segments_resumed >= 1 and sm.media_bytes > 0
    assert sm.media_bytes + sm2.media_bytes < 1.2 * sum(
        os.path.getsize(s.path("m/" + n)) for n in os.listdir(s.path("m")))
    assert_mirrors(s.root, os.path.join(arch, "devices", DEV))
    _no_index_files(arch)
