"""What a signed-in user may know exists, for the pages that list requests, register
entries and custody items (R16; the rule of search(viewer=) and cases.show(viewer=)):

- a case above the user's clearance does not exist for it (confidentiality.case_visible),
  nor does a recording above it (confidentiality.require_visible, which counts the
  levels of the cases the recording is in);
- a unit leader decides on the requests of his own unit's cases only, and sees only those
  (and his own requests) on the access pages and the register.

Without the confidentiality module every case and recording is visible."""
from __future__ import annotations

import sqlalchemy as sa

from . import web

__all__ = ["Seen", "UNIT_BOUND"]

UNIT_BOUND = ("unit_leader",)       # the roles that see their own unit's requests only


class Seen:
    """The visibility checks of one page for ``user`` over an open connection; the
    answers are remembered for the page."""

    def __init__(self, conn, user):
        self.conn, self.user = conn, user
        self.conf = web.lazy("catalogue.confidentiality")
        if self.conf is not None and not hasattr(self.conf, "case_visible"):
            self.conf = None
        self._cases, self._recs, self._units = {}, {}, {}

    def case(self, case_no):
        """Whether the case exists for the user (a case number it may see)."""
        if not case_no:
            return True
        if case_no not in self._cases:
            self._cases[case_no] = self.conf is None or bool(
                self.conf.case_visible(self.conn, self.user, case_no))
        return self._cases[case_no]

    def recording(self, device, segment):
        """Whether recording device/segment exists for the user (one the catalogue does
        not know is not shown either)."""
        key = (device, segment)
        if key not in self._recs:
            from ..catalogue import store
            try:
                rid = store.recording_id(self.conn, device, int(segment))
            except (store.CatalogueError, TypeError, ValueError):
                self._recs[key] = False
                return False
            ok = True
            if self.conf is not None:
                try:
                    self.conf.require_visible(self.conn, self.user, rid)
                except store.CatalogueError:
                    ok = False
            self._recs[key] = ok
        return self._recs[key]

    def unit_of(self, case_no):
        from ..catalogue import db
        if case_no not in self._units:
            self._units[case_no] = self.conn.execute(sa.select(db.cases.c.unit).where(
                db.cases.c.case_no == case_no)).scalar()
        return self._units[case_no]

    def unit(self, case_no, requester=None, case_unit=None):
        """Whether the unit rule lets the user see a request on ``case_no`` (by
        ``requester``): always unless it is a unit leader, whose own requests and those
        of his unit's cases it sees."""
        if self.user.role not in UNIT_BOUND or requester == self.user.name:
            return True
        unit = case_unit if case_unit is not None else self.unit_of(case_no)
        return bool(unit) and unit == self.user.unit

    def request(self, st):
        """Whether access request ``st`` (access.state) exists for the user: its case,
        its recording (a request for one) and the recordings it covers at its clearance,
        and the unit rule."""
        if not isinstance(st, dict):
            return False
        if not self.unit(st.get("case_no"), st.get("requester"), st.get("case_unit")):
            return False
        if not self.case(st.get("case_no")):
            return False
        if st.get("target_kind") == "case" and not self.case(st.get("target")):
            return False
        if st.get("target_kind") == "recording":
            dev, _sep, seg = str(st.get("target") or "").rpartition(":")
            if not (dev and seg.isdigit() and self.recording(dev, int(seg))):
                return False
        return True

    def register_row(self, row):
        """Whether an entry of the register (access.register) exists for the user."""
        if not self.unit(row.get("case_no"), row.get("requester")):
            return False
        if not self.case(row.get("case_no")):
            return False
        if row.get("device") is not None and not self.recording(row["device"],
                                                                row.get("segment")):
            return False
        return True
