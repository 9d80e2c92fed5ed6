"""One reading of a recording's name (host_tools/catalogue/recref.py): DEVICE/SEGMENT, and
DEVICE:SEGMENT read the same, by every verb that takes a recording."""
import argparse

import pytest
from hypothesis import given, strategies as st

from host_tools.catalogue import recref
from host_tools.catalogue.store import CatalogueError

DEVICE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
SEG = st.integers(min_value=0, max_value=10 ** 18 - 1)


@given(DEVICE, SEG)
def test_both_separators_read_the_same(dev, seg):
    assert recref.split("%s/%d" % (dev, seg)) == recref.split("%s:%d" % (dev, seg)) \
        == (dev, seg)
    assert recref.parse(recref.show(dev, seg)) == (dev, seg)


@pytest.mark.parametrize("bad", ["", "SC-1", "SC-1/", "/12", "SC-1/x", "SC-1/-1", "SC-1/１２",
                                 "SC 1/12", "../x/12", "SC-1/12/3", "a" * 65 + "/1",
                                 "SC-1/" + "9" * 19, None, 12, "SC-1/12\n"])
def test_anything_else_is_one_clear_line(bad):
    assert recref.split(bad) is None
    with pytest.raises(CatalogueError) as e:
        recref.parse(bad)
    assert "DEVICE/SEGMENT" in str(e.value) and "\n" not in str(e.value)


def test_spans():
    assert recref.parse_span("SC-1/12:60000-90000") == ("SC-1", 12, 60000, 90000)
    assert recref.parse_span("SC-1:12") == ("SC-1", 12)
    for bad in ("SC-1/12:60000", "SC-1/12:a-b", "SC-1:12:1-2", "SC-1/12:-5"):
        with pytest.raises(argparse.ArgumentTypeError):
            recref.parse_span(bad, error=argparse.ArgumentTypeError)


def test_every_verb_reads_both_forms():
    """The verbs' own parsers are recref's: the same answer for both forms, the same error."""
    from host_tools.catalogue import confidentiality_cli, copies_cli, filing_cli
    from host_tools.catalogue import retention_cli
    from host_tools.catalogue.copies import CopyError
    from host_tools.catalogue.retention_rules import RetentionRefused
    for f, err in ((confidentiality_cli.parse_recording, CatalogueError),
                   (copies_cli.parse_recording, CopyError),
                   (retention_cli._split, RetentionRefused),
                   (filing_cli._recording, argparse.ArgumentTypeError)):
        assert f("SC-0001/12") == f("SC-0001:12") == ("SC-0001", 12), f
        with pytest.raises(err):
            f("SC-0001/twelve")
