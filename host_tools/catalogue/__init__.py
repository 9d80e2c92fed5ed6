"""The archive's catalogue (issue 11; SPEC §14): what clerks keep about the recordings.

The station log (host_tools.tlog) is the truth: every clerk action is one signed log event
naming its user. The catalogue is an SQL index projected from those events and from the
archive's verified records, on SQLite (ARCHIVE/catalogue.sqlite, the default) or PostgreSQL
(a URL), through SQLAlchemy Core; it can be rebuilt from the log at any time.

    db          the tables and the engine (SQLite or PostgreSQL), schema migrations
    events      the clerk event types and the checks on their fields
    store       Catalogue: open, act (append a signed event, then apply it), sync, reindex
    users       named users, roles, what each role may do, passwords (argon2), OS accounts
    recordings  the facts of each archived segment, from its verified records
    search      filters over the catalogue; table, JSON and CSV output
    tags        metadata of a recording or a span (party, place, event type, ...)
    numbers     archive numbers (the agency's pattern), assigned once
    cases       case files (卷宗): recordings of several officers and devices, documents
    documents   written records and written explanations (PDF, images) as archive objects
    retention   retention classes, holds, what is due, disposal with approval
"""
