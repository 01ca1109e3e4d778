"""Upload the outbox in signed batches; acknowledge only what the server says it holds.

A record leaves the "pending" state only when the server answers ``stored`` or ``duplicate`` for
its id in the batch that carried it; it is deleted later, by the retention purge, and only if it
was acknowledged. The batch size adapts to how long the server takes to answer. Each batch with
events carries a chain checkpoint signed with the device key; the chain head the server confirms
in its answer is stored (kiosk.storage.chain_anchor) for `kiosk db verify-chain`.
"""

import logging
import uuid
import concurrent.futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kiosk.errors import DiskFullError, RejectedError, SyncError
from kiosk.storage import chain_anchor, outbox, sync_state
from kiosk.storage.db import transaction
from kiosk.sync import protocol
from kiosk.sync.client import ServerUnavailableError

log = logging.getLogger(__name__)

MAX_UNRECORDED = 100_000  # answers held in memory while the disk is full (about 10 MB at most)


@dataclass
class UploadReport:
    """What one drain did."""

    batches: int = 0
    sent: int = 0
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    drained: bool = False

    @property
    def acknowledged(self):
        return self.stored + self.duplicate


@dataclass(frozen=True)
class _Batch:
    """A batch read from the outbox and encoded, ready to send."""

    batch_id: str
    records: list
    body: bytes  # the gzipped JSON request body
    limit: int  # the batch size it was read at

    @property
    def last_row_id(self):
        return self.records[-1].id


@dataclass(frozen=True)
class _Answer:
    """A verified answer to one batch, read but not yet committed."""

    acked: list  # record ids stored or duplicate
    refused: list  # (record id, reason)
    stored: int
    acked_rows: list  # the outbox rows of ``acked``
    head: tuple | None  # the chain head the server confirms
    latency_s: float | None
    complete: bool  # it named every record of the batch


class Uploader:
    """Moves outbox records to the server, one batch at a time."""

    def __init__(self, database, client, *, clock, batch_size=500, min_batch_size=10, max_batch_size=5000,
                 target_request_s=2.0, on_acknowledged=None, batch_id_factory=None):
        self._db = database
        self._client = client
        self._clock = clock
        self.batch_size = int(batch_size)
        self.min_batch_size = max(1, min(int(min_batch_size), self.batch_size))
        self.max_batch_size = max(int(max_batch_size), self.batch_size)
        self.target_request_s = float(target_request_s)
        self._on_acknowledged = on_acknowledged
        self._new_batch_id = batch_id_factory or (lambda: str(uuid.uuid4()))
        self.last_latency_s = None
        # answers the server gave that the full disk could not record: {record_id: None (acked) or
        # reason (refused)}. Kept in memory so those records are not sent again every cycle.
        self.unrecorded = {}

    def _record_answers(self, acked, refused, *, head=None, acked_rows=None):
        """Write acknowledgements, refusals and the confirmed chain head; on a full disk keep the
        answers in memory and raise DiskFullError (the head comes again with the next answer).

        ``acked_rows``: the outbox rows of the ``acked`` record ids, when the caller has them
        (acknowledged by row id, a range at a time); otherwise the record ids are looked up."""
        try:
            with transaction(self._db):
                if acked_rows is not None:
                    outbox.acknowledge_rows(self._db, acked_rows, now=self._clock.time())
                elif acked:
                    outbox.acknowledge(self._db, acked, now=self._clock.time())
                if refused:
                    sync_state.mark_rejected(self._db, refused, now=self._clock.time())
                if head is not None:
                    chain_anchor.record_confirmed_head(self._db, *head, now=self._clock.time())
        except DiskFullError:
            self._keep_unrecorded(acked, refused)
            raise

    def _keep_unrecorded(self, acked, refused):
        """Hold answers the full disk could not take, up to ``MAX_UNRECORDED`` (written by the next batch)."""
        if len(self.unrecorded) < MAX_UNRECORDED:
            self.unrecorded.update(dict.fromkeys(acked))
            self.unrecorded.update(refused)

    def _flush_unrecorded(self):
        """Write answers held in memory since the disk was full; quietly keep them while it still is."""
        if not self.unrecorded:
            return []
        acked = [rid for rid, reason in self.unrecorded.items() if reason is None]
        refused = [(rid, reason) for rid, reason in self.unrecorded.items() if reason is not None]
        held, self.unrecorded = self.unrecorded, {}
        try:
            self._record_answers(acked, refused)
        except DiskFullError:
            self.unrecorded = held
            return []
        log.info("recorded %d answer(s) held since the disk was full", len(held))
        return acked

    def _mark_attempted(self, records):
        try:
            outbox.mark_attempted(self._db, [r.record_id for r in records])
        except DiskFullError as e:  # bookkeeping only: the upload error is what the caller must hear
            log.warning("could not count the upload attempt: %s", e)

    def upload_batch(self, report=None):
        """Send one batch of pending records; returns the number sent (0 = nothing pending)."""
        report = report if report is not None else UploadReport()
        batch = self._prepare(report)
        if batch is None:
            return 0
        self._record(batch, self._answer(batch, self._send(batch)), report)
        return len(batch.records)

    def drain(self, *, max_batches=None):
        """Upload batches until nothing is pending (or ``max_batches``); errors propagate after progress is kept.

        One request is in flight at a time, in outbox order. While batch N is in flight the next
        one is read, encoded and signed; it is sent as soon as N's answer is verified and names
        every record of N, and N's acknowledgements are committed while it is in flight, so the
        device's work overlaps the server's. When N fails (no answer, refused, untrusted), the
        prepared batch is dropped unsent: its records are still pending. A crash before N's
        acknowledgements are committed re-sends N and N+1 later; the server answers "duplicate".
        """
        report = UploadReport()
        batch = self._prepare(report)
        if batch is None:
            return report
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-upload") as sender:
            in_flight = sender.submit(self._send, batch)
            while batch is not None:
                upcoming = after = None
                try:
                    if max_batches is None or report.batches + 1 < max_batches:
                        upcoming = self._prepare(report, after_id=batch.last_row_id)
                except BaseException:
                    # the batch in flight is still recorded when preparing the next one failed
                    self._record(batch, self._answer(batch, in_flight), report)
                    raise
                answer = self._answer(batch, in_flight)  # raises: the prepared batch is dropped unsent
                if upcoming is not None and answer.complete:
                    after = sender.submit(self._send, upcoming)
                try:
                    self._record(batch, answer, report)
                except DiskFullError:
                    if after is not None:
                        self._hold(upcoming, after, report)
                    raise
                except BaseException:
                    if after is not None:
                        concurrent.futures.wait([after])  # its records stay pending: sent again, answered duplicate
                    raise
                if after is None:
                    # nothing sent ahead: the answer left records out (they go first again, as the server's
                    # chain continues from the last event it stored), or the cursor found nothing more
                    upcoming = None
                    if max_batches is None or report.batches < max_batches:
                        upcoming = self._prepare(report)
                    if upcoming is not None:
                        after = sender.submit(self._send, upcoming)
                batch, in_flight = upcoming, after
        return report

    def _prepare(self, report, *, after_id=0):
        """The next batch of pending records after outbox row ``after_id``, encoded and signed; None if there is none.

        From the start of the outbox (``after_id`` 0) answers held since the disk was full are
        written first, and finding nothing means the outbox is drained.
        """
        if not after_id:
            flushed = self._flush_unrecorded()
            if flushed and self._on_acknowledged is not None:
                self._on_acknowledged(flushed)
        limit = self.batch_size
        records = sync_state.pending_for_upload(self._db, limit=limit + len(self.unrecorded), after_id=after_id)
        records = [r for r in records if r.record_id not in self.unrecorded][:limit]
        if not records:
            report.drained = report.drained or not after_id
            return None
        batch_id = self._new_batch_id()
        body = protocol.batch_json(batch_id, self._client.device_id, records,
                                   created_at=self._client.server_now(), device_key=self._client.device_key)
        return _Batch(batch_id, records, protocol.GzippedBody(protocol.encode_body(body)), limit)

    def _send(self, batch):
        """The server's verified answer to ``batch`` and how long it took (runs on the sender thread)."""
        answer = self._client.upload_batch(batch.body)
        return answer, self._client.last_latency_s

    def _answer(self, batch, sent):
        """Read the verified answer to a sent batch (``sent``: (answer, latency) or a future of it); raise its error."""
        try:
            answer, latency = sent.result() if isinstance(sent, Future) else sent
        except ServerUnavailableError as e:
            if e.http_status is None:
                # no answer at all (timeout, reset): a smaller batch is likelier to get through
                self._shrink()
            self._mark_attempted(batch.records)
            raise
        except RejectedError:
            self._mark_attempted(batch.records)
            raise
        sent_ids = {r.record_id: r for r in batch.records}
        acked, refused, stored = self._read_answer(batch.batch_id, answer, sent_ids)
        return _Answer(acked, refused, stored, [sent_ids[record_id] for record_id in acked],
                       self._confirmed_head(answer), latency, len(acked) + len(refused) == len(batch.records))

    def _record(self, batch, answer, report):
        """Commit what an answer says, count it, adapt the batch size."""
        self.last_latency_s = answer.latency_s
        self._record_answers(answer.acked, answer.refused, head=answer.head, acked_rows=answer.acked_rows)
        if answer.acked and self._on_acknowledged is not None:
            self._on_acknowledged(answer.acked)
        for record_id, reason in answer.refused[:5]:
            log.error("server refused record %s: %s (kept on the device, not re-sent)", record_id, reason)
        self._count(batch, answer, report)
        self._adapt(len(batch.records), asked=batch.limit)

    def _hold(self, batch, sent, report):
        """The disk filled while ``batch`` was in flight: keep its answer in memory like the one before it."""
        try:
            answer = self._answer(batch, sent)
        except Exception as e:  # noqa: BLE001 - the full disk is what the caller must hear
            log.warning("batch sent while the disk filled got no usable answer: %s", e)
            return
        self._keep_unrecorded(answer.acked, answer.refused)
        self._count(batch, answer, report)

    @staticmethod
    def _count(batch, answer, report):
        report.batches += 1
        report.sent += len(batch.records)
        report.stored += answer.stored
        report.duplicate += len(answer.acked) - answer.stored
        report.rejected += len(answer.refused)

    def _read_answer(self, batch_id, answer, sent_ids):
        if answer.get("batch_id") not in (None, batch_id):
            raise SyncError(f"answer names batch {answer.get('batch_id')}, we sent {batch_id}")
        acked, refused, seen = [], [], set()
        foreign = stored = 0
        results = answer.get("results")
        for result in results if isinstance(results, list) else []:
            record_id = result.get("id") if isinstance(result, dict) else None
            if not isinstance(record_id, str) or record_id not in sent_ids:
                # only what this batch carried can be acknowledged by its answer
                foreign += 1
                continue
            if record_id in seen:
                continue
            seen.add(record_id)
            status = result.get("status")
            if status in protocol.ACKED:
                acked.append(record_id)
                stored += status == protocol.STORED
            elif status == protocol.REJECTED:
                refused.append((record_id, str(result.get("reason") or "no reason given")))
        if foreign:
            log.warning("ignored %d acknowledgement(s) for records not in batch %s", foreign, batch_id)
        missing = len(sent_ids) - len(seen)
        if missing:
            log.warning("server answered for %d of %d records of batch %s; the rest stay pending",
                        len(seen), len(sent_ids), batch_id)
        return acked, refused, stored

    def _confirmed_head(self, answer):
        # the head the server holds for this device's chain, (seq, hash); None if absent or malformed
        value = answer.get("confirmed_head")
        if value is None:
            return None
        try:
            return protocol.parse_head(value)
        except ValueError as e:
            log.warning("ignored the server's confirmed chain head: %s", e)
            return None

    def _adapt(self, sent, *, asked):
        # ``asked``: the size the batch was read at (the next batch is read before this one's answer)
        latency = self.last_latency_s
        if latency is None:
            return
        if latency > self.target_request_s:
            self._shrink()
        elif latency < self.target_request_s / 2 and sent >= asked:
            grown = min(self.max_batch_size, int(self.batch_size * 1.5) + 1)
            if grown != self.batch_size:
                log.debug("batch size %d -> %d (answer took %.3f s)", self.batch_size, grown, latency)
            self.batch_size = grown

    def _shrink(self):
        smaller = max(self.min_batch_size, self.batch_size // 2)
        if smaller != self.batch_size:
            log.info("batch size %d -> %d", self.batch_size, smaller)
        self.batch_size = smaller
