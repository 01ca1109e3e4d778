"""Every screen a flow can show has a widget; the translation files agree; every layout passes the checks
(nothing clipped, overlapping, off screen, under 11.6 mm, or closer than 1 mm to another button).

Layouts and the panels assumed for the 11.6 mm touch-target check (``kiosk.ui.theme.LAYOUTS``):
800x480 on a 7" panel (133 dpi: 61 px targets), 1024x600 on 7" (170 dpi: 78 px), 1280x800 on
10.1" (149 dpi: 69 px), 720x1280 portrait on 7" (210 dpi: 96 px).
"""

import ast
import re
import string
from pathlib import Path

import pytest

pytest.importorskip("PyQt5")

from kiosk.clock import FakeClock  # noqa: E402
from kiosk.flows.services.screens import SCREENS as SERVICE_CONTRACT  # noqa: E402
from kiosk.ui import i18n  # noqa: E402
from kiosk.ui.layout_check import problems  # noqa: E402
from kiosk.ui.registry import FLOW_SCREENS, PROVISION_SCREENS, SCREENS, WINDOW_SCREENS  # noqa: E402
from kiosk.ui.samples import SAMPLES  # noqa: E402
from kiosk.ui.screenshots import NoCamera  # noqa: E402
from kiosk.ui.theme import LAYOUTS, Theme  # noqa: E402
from kiosk.ui.window import KioskWindow, Options  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def shown_by_flows():
    """Every literal screen name passed to a show()/_show() call anywhere under kiosk/flows (services too)."""
    names = set()
    for path in (ROOT / "kiosk" / "flows").rglob("*.py"):
        tree = ast.parse(path.read_text())
        # a flow's own ``_show``/``show(screen, ...)`` forwards its argument: its calls are where the names are
        forwarders = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in ("_show", "show")
                      for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("show", "_show") and node.args and id(node) not in forwarders:
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: screen name is not a literal"
                names.add(first.value)
    return names


def test_every_screen_a_flow_shows_has_a_widget():
    names = shown_by_flows()
    assert len(names) >= 20  # the AST walk found the flows' screens
    missing = names - set(SCREENS)
    assert not missing, f"screens shown by flows with no widget in kiosk/ui/registry.py: {sorted(missing)}"


def test_flow_screens_are_exactly_those_the_flows_show():
    assert set(FLOW_SCREENS) == shown_by_flows(), "move a screen between FLOW_SCREENS and WINDOW_SCREENS"
    assert not set(FLOW_SCREENS) & set(WINDOW_SCREENS)


def shown_by_provisioning():
    """(screen, keys) of every ``self._emit("provision_...", key=...)`` call in kiosk/provision_status.py."""
    tree = ast.parse((ROOT / "kiosk" / "provision_status.py").read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_emit":
            first = node.args[0]
            assert isinstance(first, ast.Constant), f"provision_status.py:{node.lineno}: screen name is not a literal"
            found[first.value] = {k.arg for k in node.keywords}
    return found


def test_every_screen_provisioning_shows_has_a_widget_and_samples_with_exactly_its_keys():
    from kiosk.provision_status import SCREENS as PROVISION_STATUS_SCREENS

    shown = shown_by_provisioning()
    assert set(shown) == set(PROVISION_STATUS_SCREENS) and len(shown) == 7
    assert set(PROVISION_SCREENS) == set(shown), "kiosk/ui/registry.py PROVISION_SCREENS"
    assert not set(PROVISION_SCREENS) & (set(FLOW_SCREENS) | set(WINDOW_SCREENS))
    for name, keys in shown.items():
        for data in SAMPLES[name]:
            assert set(data) == keys, name


def test_every_provisioning_reason_and_remedy_is_said_in_both_languages():
    """Each reason the model may carry has words; the English remedy is the code's own line, word for word."""
    from kiosk.provision_code import REMEDIES
    from kiosk.provision_status import RETRY_REASONS

    reasons = {**REMEDIES, **RETRY_REASONS}
    for language in ("ar", "en"):
        table = i18n.table(language)
        assert not {f"provision_reason.{r}" for r in reasons} - set(table), language
        assert not {f"provision_remedy.{r}" for r in reasons} - set(table), language
    en = i18n.table("en")
    assert {r: en[f"provision_remedy.{r}"] for r in reasons} == reasons


def test_every_service_screen_of_the_contract_is_drawn_and_its_samples_have_exactly_its_keys():
    assert set(SERVICE_CONTRACT) <= set(FLOW_SCREENS)
    for name, screen in SERVICE_CONTRACT.items():
        for data in SAMPLES[name]:
            assert set(data) == set(screen.keys), name


def test_every_screen_has_sample_data_for_screenshots():
    assert set(SAMPLES) == set(SCREENS)


def test_both_languages_have_the_same_keys_and_placeholders():
    ar, en = i18n.table("ar"), i18n.table("en")
    assert set(ar) == set(en)
    fields = string.Formatter()
    for key in en:
        assert {f for _, f, _, _ in fields.parse(en[key]) if f} == {f for _, f, _, _ in fields.parse(ar[key]) if f}, key


def test_every_literal_key_the_ui_asks_for_exists():
    keys = set()
    for path in (ROOT / "kiosk" / "ui").glob("*.py"):
        keys.update(re.findall(r'\bw(?:ords)?\("([a-z_]+\.[a-z_.]+)"', path.read_text()))
    assert len(keys) > 40
    assert not keys - set(i18n.table("en"))


def test_words_localise_digits_and_isolate_typed_numbers():
    w = i18n.Words("ar", eastern_digits=True)
    assert w.typed("1000000008") == "\u2066١٠٠٠٠٠٠٠٠٨\u2069"
    assert w("error.wrong_pin", attempts_left=2) == "رمز خاطئ: بقيت ٢ محاولات"
    assert i18n.Words("en", eastern_digits=True).digits("08:02") == "08:02"  # English keeps 0-9


def test_touch_targets_are_at_least_11_6_mm_on_each_layout():
    for (width, height), diagonal in LAYOUTS.items():
        theme = Theme.for_screen(width, height, diagonal_in=diagonal)
        assert theme.target_px * 25.4 / theme.dpi >= 11.6


OPTION_SETS = {"plain": {}, "large-text": {"large_text": True},
               "high-contrast-eastern": {"high_contrast": True, "eastern_digits": True}}


@pytest.mark.parametrize("size", list(LAYOUTS), ids=[f"{w}x{h}" for w, h in LAYOUTS])
@pytest.mark.parametrize("language", ["ar", "en"])
@pytest.mark.parametrize("option_set", list(OPTION_SETS))
def test_no_widget_clipped_overlapping_off_screen_or_too_small(qapp, size, language, option_set):
    width, height = size
    window = KioskWindow(post=lambda *a, **k: None, clock=FakeClock(), camera=NoCamera(), size=size,
                         options=Options(language=language, diagonal_in=LAYOUTS[size], **OPTION_SETS[option_set]))
    window.setFixedSize(width, height)
    window.show()
    found = []
    try:
        for name in SCREENS:
            for n, data in enumerate(SAMPLES[name]):
                window.show_screen(name, {**data, "language": language})
                qapp.processEvents()
                found += [(name, n, *p) for p in problems(window, target_px=window.theme.target_px)]
        window.show_screen("id_keypad", {"language": language})
        window.clock.advance(25.0)
        window.tick()                   # the inactivity warning over a screen
        qapp.processEvents()
        assert window.warning.isVisible()
        overlay = ("more_time", "warning_title", "warning_countdown")
        for kind, what in problems(window, target_px=window.theme.target_px):
            parts = what.split(" / ")  # the overlay covers the screen by design: judge it on its own
            if all(any(o in part for o in overlay) for part in parts) if kind in ("overlap", "crowded") else \
                    any(o in what for o in overlay):
                found.append(("inactivity_warning", 0, kind, what))
    finally:
        window.close()
    assert not found, found


def test_the_layout_check_catches_a_cramped_screen(qapp):
    """The checker itself: a 1280x800 design squeezed into 800x480 must be reported."""
    window = KioskWindow(post=lambda *a, **k: None, clock=FakeClock(), camera=NoCamera(), size=(800, 480),
                         options=Options(language="en", diagonal_in=3.5))  # a tiny panel: 122 px targets
    window.setFixedSize(800, 480)
    window.show()
    window.show_screen("service_credentials", SAMPLES["service_credentials"][0])
    qapp.processEvents()
    kinds = {p[0] for p in problems(window, target_px=window.theme.target_px)}
    window.close()
    assert kinds & {"off screen", "overlap", "clipped", "small target"}


def test_screenshots_are_written_for_each_sample_and_language_with_an_index(qapp, tmp_path):
    from kiosk.ui.screenshots import write_all, write_index

    written, faults = write_all(tmp_path, size=(800, 480), only=["result"], check=True)
    write_index(tmp_path, written)
    assert sorted(p.name for p in written) == ["result-1-ar.png", "result-1-en.png", "result-2-ar.png",
                                               "result-2-en.png"]
    assert not faults
    from PyQt5.QtGui import QImage

    image = QImage(str(tmp_path / "result-2-ar.png"))
    assert (image.width(), image.height()) == (800, 480)
    assert "![result-2 ar](result-2-ar.png)" in (tmp_path / "README.md").read_text()


def test_latin_keyboard_is_qwerty_where_ten_keys_fit_and_alphabetical_on_a_narrow_screen(qapp):
    from kiosk.ui.i18n import Words
    from kiosk.ui.widgets import LatinKeyboard

    wide = LatinKeyboard(Words("en"), Theme.for_screen(800, 480, diagonal_in=7.0))
    narrow = LatinKeyboard(Words("en"), Theme.for_screen(720, 1280, diagonal_in=7.0))
    assert wide.key_rows()[0] == "qwertyuiop"
    rows = narrow.key_rows()
    assert "".join(rows) == "abcdefghijklmnopqrstuvwxyz" and max(len(r) for r in rows) <= 6


def test_every_reason_code_of_the_service_contract_has_words():
    """Each code a service flow may pass (kiosk/flows/services/screens.py) is said in both languages."""
    where = {("service_id", "error"): "error.service_id", ("service_code", "error"): "error.service_code",
             ("service_pin", "error"): "error.service_pin", ("service_mobile", "error"): "error.service_mobile",
             ("service_email", "error"): "error.service_email",
             ("service_credentials", "error"): "error.service_credentials",
             ("service_refused", "reason"): "service_refused", ("service_assisted", "reason"): "service_assisted",
             ("service_assisted", "next_step"): "service_assisted", ("service_offline", "at"): "service_offline",
             ("service_verify", "error"): "service_verify"}
    missing = []
    for (screen, key), prefix in where.items():
        codes = re.findall(r"'([a-z_]+)'", SERVICE_CONTRACT[screen].keys[key])
        assert codes, (screen, key)
        for language in ("ar", "en"):
            missing += [f"{language}: {prefix}.{c}" for c in codes if f"{prefix}.{c}" not in i18n.table(language)]
    assert not missing, missing
