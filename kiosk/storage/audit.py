"""The audit log: who did what, when. Never holds biometric data, PINs, codes or keys."""

import json
import logging

log = logging.getLogger(__name__)

FORBIDDEN_KEYS = {"pin", "code", "otp", "token", "key", "template", "image", "embedding", "password"}


def audit(database, *, actor, action, detail=None, now):
    """Append one audit entry (joins the caller's transaction if one is open)."""
    detail = detail or {}
    leaked = FORBIDDEN_KEYS & {k.lower() for k in detail}
    if leaked:
        raise ValueError(f"audit detail must not carry secrets or biometrics: {sorted(leaked)}")
    database.execute("INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                     [now, actor, action, json.dumps(detail, ensure_ascii=False, sort_keys=True)])


def entries(database, *, action=None, limit=100):
    sql, params = "SELECT * FROM audit", []
    if action:
        sql, params = sql + " WHERE action = ?", [action]
    rows = database.query(sql + " ORDER BY id DESC LIMIT ?", params + [limit])
    return [dict(row, detail=json.loads(row["detail"])) for row in rows]
