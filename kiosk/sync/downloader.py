"""Download people, templates, settings and revocations by cursor and apply them in one transaction."""

import logging

from kiosk.storage import sync_state
from kiosk.storage.db import get_meta, set_meta, transaction

log = logging.getLogger(__name__)

CURSOR_KEY = "sync.delta_cursor"


def pull(database, client, *, data_key, clock, face_model="", finger_sensor="", page_size=500, max_pages=40):
    """Fetch pages until the server has no more (or ``max_pages``); apply them with the new cursor, atomically.

    Returns (ChangeSummary, more) where ``more`` says pages are left for the next call.
    """
    cursor = get_meta(database, CURSOR_KEY, "") or ""
    changes, pages, more = [], 0, True
    new_cursor = cursor
    while more and pages < max_pages:
        page = client.delta(cursor=new_cursor, limit=page_size, face_model=face_model, finger_sensor=finger_sensor)
        changes.extend(page.get("changes") or [])
        asked, new_cursor = new_cursor, str(page.get("cursor", new_cursor))
        more = bool(page.get("more"))
        pages += 1
        if more and new_cursor == asked:
            # asked again, it would give the same page: max_pages times a cycle, and cycle after cycle at once
            log.warning("the server says more changes follow but did not move the cursor; asking again next cycle")
            more = False
    summary = sync_state.ChangeSummary()
    if not changes and new_cursor == cursor:
        return summary, more
    # all of it or none of it: a crash here leaves the old cursor and the old data
    with transaction(database):
        summary = sync_state.apply_changes(database, data_key, changes, now=clock.time())
        set_meta(database, CURSOR_KEY, new_cursor)
    if changes:
        log.info("applied %d change(s): %d people, %d face / %d finger template sets, %d revocations%s",
                 len(changes), len(summary.people), len(summary.faces), len(summary.fingers), len(summary.revoked),
                 ", settings stored (not applied)" if summary.settings else "")
    return summary, more
