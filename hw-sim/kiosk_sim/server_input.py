"""What the server simulator accepts from a request: bounded JSON bodies and query strings, else a 4xx Refusal."""

import json
import logging
import math
import re
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


class _Unbounded(ValueError):
    """A number in a body that the protocol does not carry (raised while parsing)."""


def _checked_float(text):
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses to infinity
        raise _Unbounded("a number is NaN or Infinity (not JSON)")
    return number


def _checked_int(text):
    number = int(text)
    if not -INT64 <= number < INT64:
        raise _Unbounded("an integer does not fit 64 bits")
    return number


def _no_constant(name):
    raise _Unbounded("a number is NaN or Infinity (not JSON)")


# checks every number as it is parsed, so the walk after parsing only looks for containers
_DECODER = json.JSONDecoder(parse_float=_checked_float, parse_int=_checked_int, parse_constant=_no_constant)
# a lone surrogate can only come from an escape in this range, or from raw (non-ASCII) text
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _depth_problem(value):
    """json_problem's nesting rule, looking only at containers (a level at a time)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 1
    while level:
        deeper = []
        for item in level:
            children = item.values() if type(item) is dict else item
            if depth >= MAX_JSON_DEPTH and children:  # its keys and values would be deeper than allowed
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            deeper += [child for child in children if type(child) in _CONTAINERS]
        level = deeper
        depth += 1
    return None


_CONTAINERS = (dict, list)


def body_problem(body, text):
    """json_problem for a body parsed by ``_DECODER`` from ``text``, without visiting every value.

    The decoder has already refused every number json_problem refuses; text with no escape in
    the surrogate range and no raw surrogate cannot hold one; what is left is the nesting depth.
    Text that might hold a surrogate gets the full walk.
    """
    if _SURROGATE_ESCAPE.search(text) or (not text.isascii() and _SURROGATE.search(text)):
        return json_problem(body)
    return _depth_problem(body)


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
        text = protocol.body_text(raw, content_encoding=content_encoding)
        body = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise Refusal(400, protocol.MALFORMED, f"body is not JSON: {e}"[:200]) from None
    except ValueError as e:
        raise Refusal(400, protocol.MALFORMED, str(e)[:200]) from None
    except RecursionError:
        raise Refusal(400, protocol.MALFORMED, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    problem = body_problem(body, text)
    if problem:
        raise Refusal(400, protocol.MALFORMED, problem)
    return body
