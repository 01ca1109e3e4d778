"""The screen contract of the citizen services: every show() uses a listed screen with exactly its keys."""

import ast
from pathlib import Path

import pytest

from kiosk.flows.services import screens

SOURCES = sorted(Path(screens.__file__).parent.glob("*.py"))
COMMON = set(screens.COMMON)


def show_calls():
    """(file, line, screen, keys) of every ``self.show("screen", k=...)`` in the service flows' source."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "show" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                assert isinstance(node.args[0], ast.Constant), f"{path.name}:{node.lineno}: screen name not literal"
                assert all(k.arg for k in node.keywords), f"{path.name}:{node.lineno}: **data hides the keys"
                found.append((path.name, node.lineno, node.args[0].value, {k.arg for k in node.keywords}))
    return found


def test_every_show_in_the_source_uses_a_listed_screen_with_exactly_its_keys():
    calls = show_calls()
    assert len(calls) > 20
    for name, line, screen, keys in calls:
        assert screen in screens.SCREENS, f"{name}:{line}: {screen} is not in screens.py"
        # ServiceBase.show adds the common keys (service, step, can_back)
        assert keys | COMMON == screens.keys_of(screen), f"{name}:{line}: {screen} keys {sorted(keys)}"
        assert not keys & COMMON, f"{name}:{line}: passes a common key itself"


def test_every_listed_screen_is_shown_by_some_flow():
    shown = {screen for _, _, screen, _ in show_calls()}
    assert shown == set(screens.SCREENS)


def test_a_wrong_key_fails_the_checking_fake():
    """At run time, every flow test's show() goes through this check (tests/service_fakes.py)."""
    from kiosk.clock import FakeClock
    from service_fakes import ServicePortsFake

    with pytest.raises(AssertionError):
        ServicePortsFake(FakeClock()).show("service_id", service="activation", step=[1, 2], can_back=False)
    with pytest.raises(KeyError):
        ServicePortsFake(FakeClock()).show("no_such_screen")
