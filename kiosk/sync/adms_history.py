"""ATTLOG rows from held events, and history re-sent to an ADMS server on request.

A row carries the person's ADMS PIN (``people.adms_pin``), not the kiosk's ``person_id``: HR
servers match employees by a numeric PIN of up to 9 digits, so an event of a person without one
is not sent (it is counted and reported). Servers de-duplicate by (PIN, second) and silently keep
one of two punches in the same second, so the later of two punches of one person in the same
second is not sent either (also counted).

History goes back as far as the kiosk holds attendance events: they are never deleted on the
kiosk (the hash chain keeps them), so a server that lost its database, or asks with
``DATA QUERY ATTLOG``, gets everything since the kiosk's database was created.
"""

import logging
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from kiosk.storage import events, people
from kiosk.sync import adms_codec as codec

log = logging.getLogger(__name__)

SECOND_CHARS = 19  # 'YYYY-MM-DDTHH:MM:SS' of an event's ISO 8601 UTC wall time
MAX_REPORTED = 20


@dataclass
class Rows:
    """ATTLOG rows built from a list of events, and what was left out."""

    rows: list = field(default_factory=list)
    skipped: int = 0             # no row can carry it (bad status, verify mode or time)
    no_pin: list = field(default_factory=list)  # person_ids without an ADMS PIN
    same_second: int = 0         # a second punch of the same person in the same second


def build_rows(database, records, tz):
    """Rows for ``records`` (in seq order) in ``tz``; see the module docstring for what is left out."""
    result = Rows()
    pins = people.adms_pins(database, [r["person_id"] for r in records])
    seen = set()  # (person_id, UTC second) within this list
    for record in records:
        person_id = record["person_id"]
        pin = pins.get(person_id)
        if pin is None:
            result.no_pin.append(person_id)
            continue
        second = record["wall_time"][:SECOND_CHARS]
        if (person_id, second) in seen or _earlier_in_same_second(database, record, second):
            result.same_second += 1
            log.info("ADMS: event seq %s is a second punch of one person in the same second: not sent",
                     record.get("seq"))
            continue
        seen.add((person_id, second))
        try:
            result.rows.append(codec.attlog_row(record, tz, pin=pin))
        except codec.RowError as e:
            log.error("ADMS: skipping an event no ATTLOG row can carry: %s", e)
            result.skipped += 1
    return result


def _earlier_in_same_second(database, record, second):
    # an event of an earlier batch (or one acknowledged long ago) in the same second was sent already
    row = database.execute(
        "SELECT 1 FROM attendance_events WHERE person_id = ? AND seq < ? AND substr(wall_time, 1, ?) = ? LIMIT 1",
        [record["person_id"], record["seq"], SECOND_CHARS, second]).fetchone()
    return row is not None


def report_no_pin(person_ids):
    """Log the people whose punches are held back for want of an ADMS PIN (ids only, never PINs)."""
    distinct = sorted(set(person_ids))
    log.warning("ADMS: %d punch(es) of %d person(s) without an ADMS PIN not sent (set people.adms_pin from the "
                "central server or at enrolment): %s%s", len(person_ids), len(distinct),
                ", ".join(distinct[:MAX_REPORTED]), " ..." if len(distinct) > MAX_REPORTED else "")


def honour_stamp(adapter, stamp):
    """Act on the handshake's ATTLOGStamp: resume after it, ignore it, or send the history after it again."""
    cursor = adapter.cursor
    if stamp is None:
        return
    newest = adapter.newest_seq()
    if stamp > newest:
        log.warning("ADMS server stamp %d is beyond our newest event %d (another device's numbering?): "
                    "ignored", stamp, newest)
        return
    if stamp == cursor:
        if stamp > 0 and not adapter.server_keeps_stamps:
            adapter.set_cursor(cursor, server_keeps_stamps=True)
        return
    if stamp < cursor:
        if not adapter.server_keeps_stamps:
            # a server that never gave back one of our stamps (always None or 0) does not keep
            # them: re-sending everything at each handshake would only flood it
            log.info("ADMS server stamp %d is behind our cursor %d and it has not shown it keeps stamps: "
                     "nothing re-sent", stamp, cursor)
            return
        rewind(adapter, stamp)
        return
    log.info("ADMS server already has events up to seq %d: resuming there", stamp)
    adapter.set_cursor(stamp, server_keeps_stamps=True)


def rewind(adapter, stamp):
    """The server's stamp went behind our cursor (restored database, reset device): send again after it."""
    cursor = adapter.cursor
    log.warning("ADMS server stamp %d is behind our cursor %d (its database was restored or the device reset "
                "there): re-sending the %d held events after it", stamp, cursor, cursor - max(stamp, 0))
    adapter.set_cursor(max(stamp, 0))
    adapter.upload_now()


def resend_range(adapter, start_s, end_s, *, batch_rows=200):
    """Re-send acknowledged events made in [start_s, end_s]; return the number of rows sent.

    Events after the cursor are left to the normal upload (they would otherwise go twice). Each
    batch carries ``Stamp=<cursor>`` so the server's resume point does not move backwards.
    """
    start_text, end_text = events.iso_utc(start_s)[:SECOND_CHARS], events.iso_utc(end_s)[:SECOND_CHARS]
    cursor = adapter.cursor
    sent, after = 0, 0
    while True:
        rows = list(adapter.database.query(
            "SELECT * FROM attendance_events WHERE seq > ? AND seq <= ? AND substr(wall_time, 1, ?) >= ? "
            "AND substr(wall_time, 1, ?) <= ? ORDER BY seq LIMIT ?",
            [after, cursor, SECOND_CHARS, start_text, SECOND_CHARS, end_text, batch_rows]))
        if not rows:
            break
        records = [events.row_to_record(row) for row in rows]
        after = records[-1]["seq"]
        batch = build_rows(adapter.database, records, adapter.tz)
        if batch.rows:
            adapter.post_attlog(batch.rows, cursor)
            sent += len(batch.rows)
    log.info("ADMS: re-sent %d rows from %s to %s on the server's request", sent, start_text, end_text)
    return sent


class SecretRedactor(logging.Filter):
    """Masks secrets in records of the HTTP libraries' loggers (urllib3 logs request URLs at DEBUG)."""

    LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")

    def __init__(self, secrets):
        super().__init__()
        # as given, and as they appear inside a logged URL
        self._secrets = sorted({form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))},
                               key=len, reverse=True)

    def install(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def remove(self):
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record):
        text = record.getMessage()
        if any(secret in text for secret in self._secrets):
            for secret in self._secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True
