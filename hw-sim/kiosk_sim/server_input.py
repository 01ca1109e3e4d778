"""What the server simulator accepts from a request: bounded JSON bodies and query strings, else a 4xx Refusal."""

import logging
import math
from urllib.parse import parse_qs

from kiosk_sim.server_store import Refusal

from kiosk.sync import protocol

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
MAX_QUERY_FIELDS = 20
INT64 = 2 ** 63


def json_problem(value):
    """None if a decoded body is within what the protocol carries, else why not.

    Bounded nesting, finite numbers (JSON has no NaN or Infinity, though Python's parser takes
    them), integers that fit 64 bits, and text that is valid Unicode (no lone surrogates).
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return "a number is NaN or Infinity (not JSON)"
        if isinstance(item, int) and not isinstance(item, bool) and not -INT64 <= item < INT64:
            return "an integer does not fit 64 bits"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text holds a lone surrogate (not valid Unicode)"
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def parse_query(text):
    """A query string as {name: last value}; Refusal for too many fields."""
    try:
        return {k: v[-1] for k, v in parse_qs(text, max_num_fields=MAX_QUERY_FIELDS).items()}
    except ValueError:
        raise Refusal(400, protocol.MALFORMED, f"more than {MAX_QUERY_FIELDS} query parameters") from None


def decode_request_body(raw, *, content_encoding=""):
    """The decoded JSON body (None when empty); Refusal 400 for bad gzip, bad JSON or a problem above."""
    if not raw:
        return None
    try:
        body = protocol.decode_body(raw, content_encoding=content_encoding)
    except ValueError as e:
        raise Refusal(400, protocol.MALFORMED, str(e)[:200]) from None
    except RecursionError:
        raise Refusal(400, protocol.MALFORMED, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    problem = json_problem(body)
    if problem:
        raise Refusal(400, protocol.MALFORMED, problem)
    return body
