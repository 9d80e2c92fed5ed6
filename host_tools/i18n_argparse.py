"""argparse's own words ("usage:", "options", "the following arguments are required") in the
user's language: argparse looks its messages up through its module's ``_`` and
``ngettext`` (gettext's, with no catalog for them); host_tools.i18n.setup points them at
the sealcam catalog while a language other than English is chosen, and puts gettext's
back for English. The msgids below are argparse's own (Python 3.11 - 3.13), marked here so
that `pybabel extract` puts them in the catalog.
"""
from __future__ import annotations

import argparse
import gettext

from .i18n import N_

__all__ = ["install", "MESSAGES"]

MESSAGES = [
    N_("usage: "), N_("positional arguments"), N_("options"),
    N_("show this help message and exit"), N_("show program's version number and exit"),
    N_("%(prog)s: error: %(message)s\n"), N_("argument %(argument_name)s: %(message)s"),
    N_("unrecognized arguments: %s"), N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"), N_("not allowed with argument %s"),
    N_("expected one argument"), N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"), N_("ignored explicit argument %r"),
    N_("unexpected option string: %s"),
]

def _plural_marks(ngettext):        # for `pybabel extract` only
    ngettext("expected %s argument", "expected %s arguments", 1)


def install(gettext_fn=None, ngettext_fn=None):
    """argparse's messages through ``gettext_fn`` / ``ngettext_fn``; None: gettext's own."""
    argparse._ = gettext_fn or gettext.gettext
    argparse.ngettext = ngettext_fn or gettext.ngettext
