"""Pictures of every screen in both languages, from the sample data (``kiosk ui screenshots``).

Each screen is drawn in a real ``KioskWindow`` off screen (Qt's offscreen platform where there is
no display) and saved as ``<screen>[-<n>]-<language>.png`` under the output folder.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class NoCamera:
    """A camera that has no frame: the view shows its dark background."""

    def latest(self):
        return None


def application():
    """The QApplication (made offscreen when there is no display), with the bundled fonts."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt5.QtWidgets import QApplication

    from kiosk.ui.typefaces import load_fonts

    app = QApplication.instance() or QApplication(["kiosk"])
    load_fonts(app)
    return app


def write_all(out_dir, *, size=(1024, 600), languages=("ar", "en"), camera=None, clock=None, options=None,
              only=None, check=False, samples=None, prefix=""):
    """Write one PNG per screen, sample and language; returns (paths written, layout faults found)."""
    from kiosk.clock import FakeClock
    from kiosk.ui.layout_check import problems
    from kiosk.ui.registry import SCREENS
    from kiosk.ui.samples import SAMPLES
    from kiosk.ui.theme import LAYOUTS

    samples = SAMPLES if samples is None else samples
    from kiosk.ui.window import KioskWindow, Options

    app = application()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, faults = [], []
    for language in languages:
        opts = Options(**{"diagonal_in": LAYOUTS.get(tuple(size), 7.0), **(options or {}), "language": language})
        window = KioskWindow(post=lambda *a, **k: None, clock=clock or FakeClock(), options=opts,
                             camera=camera or NoCamera(), size=size)
        window.setFixedSize(*size)
        window.show()
        for name in SCREENS:
            if (only and name not in only) or name not in samples:
                continue
            for n, data in enumerate(samples[name]):
                window.show_screen(name, {**data, "language": language})
                window.tick()
                app.processEvents()
                suffix = f"-{n + 1}" if len(samples[name]) > 1 else ""
                path = out / f"{prefix}{name}{suffix}-{language}.png"
                if not window.grab().save(str(path)):
                    raise OSError(f"could not write {path}")
                written.append(path)
                if check:
                    faults += [f"{path.name}: {kind} {what}" for kind, what in
                               problems(window, target_px=window.theme.target_px)]
        if samples is SAMPLES and not only:
            written += _extras(out, window, language, size, camera or NoCamera())
        window.close()
        window.deleteLater()
    app.processEvents()
    return written, faults


EXTRAS = ("inactivity_warning", "large_text", "high_contrast")


def _extras(out, window, language, size, camera):
    """The inactivity warning over a keypad, and the large-text and high-contrast options."""
    from kiosk.ui.window import KioskWindow, Options

    app = application()
    window.show_screen("id_keypad", {"language": language})
    window.clock.advance(window.options.inactivity_timeout_s - 7.5)
    window.tick()
    app.processEvents()
    paths = [out / f"inactivity_warning-{language}.png"]
    window.grab().save(str(paths[0]))
    window.activity()
    for name, option, screen in (("large_text", {"large_text": True}, "id_keypad"),
                                 ("high_contrast", {"high_contrast": True}, "attendance_idle")):
        other = KioskWindow(post=lambda *a, **k: None, clock=window.clock, camera=camera, size=size,
                            options=Options(**{**window.options.__dict__, **option}))
        other.setFixedSize(*size)
        other.show()
        other.show_screen(screen, {"language": language})
        other.tick()
        app.processEvents()
        path = out / f"{name}-{language}.png"
        other.grab().save(str(path))
        paths.append(path)
        other.close()
        other.deleteLater()
    return paths


def write_demo_screens(out_dir, shown, *, size=(1024, 600)):
    """The demo's set: every screen (sample data) and, as ``run-*``, the last data of each screen ``shown``."""
    last = {}
    for name, data in shown:
        last[name] = {k: v for k, v in data.items() if k != "language"}
    written, faults = write_all(out_dir, size=size, check=True)
    more, more_faults = write_all(out_dir, size=size, check=True, samples={k: [v] for k, v in last.items()},
                                  prefix="run-")
    write_index(out_dir, written)
    return written + more, faults + more_faults


def write_index(out_dir, paths):
    """``README.md`` in the folder: every screen, Arabic beside English, under its registry name."""
    from kiosk.ui.registry import FLOW_SCREENS

    out = Path(out_dir)
    names = sorted({p.name.rsplit("-", 1)[0] for p in paths})
    lines = ["# Screens", "",
             "Every screen of the touchscreen with sample data, Arabic (left) and English (right).",
             "Regenerate with `kiosk ui screenshots` (from the repository root); `--check` also runs the",
             "layout check. Screens marked *window* are the window's own (no flow shows them): the",
             "citizen-service menu, and the screen for a name with no widget.", ""]
    for name in names:
        base = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        mark = "" if base in FLOW_SCREENS or base in EXTRAS else " (*window*)"
        lines += [f"## {name}{mark}", "", f"![{name} ar]({name}-ar.png) ![{name} en]({name}-en.png)", ""]
    (out / "README.md").write_text("\n".join(lines))
