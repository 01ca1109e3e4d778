"""Export attendance events to a folder (a USB stick's mount point) as CSV and as ZKTeco ATTLOG lines.

A USB stick is outside input: it may hold symlinks planted to make the kiosk overwrite its own
files, a file where a folder should be, or too little space. So the export walks the path one
component at a time without following any link (``O_NOFOLLOW`` at every step), writes each file
under a temporary name inside that folder, fsyncs it, renames it into place (a rename replaces
a planted link, never writes through it) and fsyncs the folder. Each file is bounded in size.
"""

import csv
import io
import logging
import os
import stat
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from kiosk.errors import ExportError
from kiosk.storage.events import STATUS_NAMES, iso_utc, row_to_record
from kiosk.sync.adms_codec import RowError, attlog_row, local_time_text, resolve_timezone

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
CSV_COLUMNS = ("seq", "event_id", "person_id", "name", "local_time", "wall_time_utc", "status", "status_name",
               "verify_mode", "score", "clock_synced")
# a cell a spreadsheet would run as a formula (names come from outside)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the two files, how many events, and ATTLOG rows that could not be written."""

    csv_path: Path
    attlog_path: Path
    events: int
    skipped: int
    first_day: date
    last_day: date


def export_events(database, folder, *, tz="UTC", first_day=None, last_day=None, now, device_name="kiosk",
                  max_bytes=MAX_FILE_BYTES):
    """Write the events of ``first_day``..``last_day`` (local days in ``tz``; default today) into ``folder``.

    ``tz``: a tzinfo, a zone name ('Asia/Riyadh') or an offset ('+03:00'). Returns an ExportResult;
    raises ExportError when the folder is unusable or a file would pass ``max_bytes``.
    """
    zone = tz if hasattr(tz, "utcoffset") else resolve_timezone(str(tz), None)
    today = datetime.fromtimestamp(now, tz=zone).date()
    first_day, last_day = first_day or today, last_day or first_day or today
    if last_day < first_day:
        raise ExportError(f"the export range ends ({last_day}) before it starts ({first_day})")
    start = datetime.combine(first_day, time(0), tzinfo=zone).timestamp()
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone).timestamp()
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in device_name)[:40] or "kiosk"
    stem = f"attendance-{safe_name}-{first_day:%Y%m%d}-{last_day:%Y%m%d}-" \
           f"{datetime.fromtimestamp(now, tz=zone):%Y%m%dT%H%M%S}"

    dir_fd = open_folder(folder)
    try:
        csv_count, _ = _write_file(dir_fd, stem + ".csv", _csv_chunks(database, start, end, zone), max_bytes)
        attlog_counts = {}
        _write_file(dir_fd, stem + ".dat", _attlog_chunks(database, start, end, zone, attlog_counts), max_bytes)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    folder = Path(folder)
    result = ExportResult(folder / (stem + ".csv"), folder / (stem + ".dat"), csv_count,
                          attlog_counts.get("skipped", 0), first_day, last_day)
    log.info("exported %d event(s) of %s..%s to %s (%d ATTLOG row(s) skipped)", result.events, first_day,
             last_day, folder, result.skipped)
    return result


def open_folder(folder):
    """A directory fd for ``folder`` (absolute), reached without following any symlink on the way."""
    path = Path(folder)
    if not path.is_absolute():
        raise ExportError(f"{folder}: the export folder must be an absolute path")
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in path.parts[1:]:
            if part in ("..", "."):
                raise ExportError(f"{folder}: '.' and '..' are not allowed in the export folder")
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise ExportError(f"{folder}: no such folder (is the USB stick mounted?)") from None
            except NotADirectoryError:
                raise ExportError(f"{folder}: {part!r} is not a folder") from None
            except OSError as e:
                # ELOOP: a symlink where a folder should be
                raise ExportError(f"{folder}: {part!r} is a link or cannot be opened ({e.strerror}); "
                                  "refusing to export through it") from None
            os.close(fd)
            fd = child
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ExportError(f"{folder}: not a folder")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _write_file(dir_fd, name, chunks, max_bytes):
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     0o644, dir_fd=dir_fd)
    except OSError as e:
        raise ExportError(f"cannot create {name} in the export folder ({e.strerror})") from None
    written = count = 0
    try:
        for data, rows in chunks:
            written += len(data)
            if written > max_bytes:
                raise ExportError(f"{name} would pass {max_bytes} bytes: export a shorter date range")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            count += rows
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as e:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, ExportError):
            raise ExportError(f"cannot write {name} to the export folder ({e.strerror})") from None
        raise
    return count, written


def _event_rows(database, start, end, *, batch=2000):
    cursor = database.execute(
        "SELECT e.*, coalesce(p.name, '') AS person_name FROM attendance_events e "
        "LEFT JOIN people p USING (person_id) WHERE e.wall_time >= ? AND e.wall_time < ? ORDER BY e.seq",
        [iso_utc(start), iso_utc(end)])
    names = [d[0] for d in cursor.description]
    while True:
        rows = cursor.fetchmany(batch)
        if not rows:
            return
        yield [dict(zip(names, row)) for row in rows]


def _csv_chunks(database, start, end, zone):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue().encode("utf-8-sig"), 0  # the BOM lets spreadsheets read Arabic names
    for rows in _event_rows(database, start, end):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        for row in rows:
            writer.writerow([row["seq"], row["uuid"], _cell(row["person_id"]), _cell(row["person_name"]),
                             local_time_text(row["wall_time"], zone), row["wall_time"], row["status_code"],
                             STATUS_NAMES.get(row["status_code"], ""), row["verify_mode"],
                             "" if row["score"] is None else row["score"], int(bool(row["clock_synced"]))])
        yield buffer.getvalue().encode("utf-8"), len(rows)


def _attlog_chunks(database, start, end, zone, counts):
    counts["skipped"] = 0
    for rows in _event_rows(database, start, end):
        lines = []
        for row in rows:
            try:
                lines.append(attlog_row(row_to_record(row), zone) + "\n")
            except RowError as e:
                counts["skipped"] += 1
                log.warning("export: %s", e)
        yield "".join(lines).encode("utf-8"), len(lines)


def _cell(value):
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
