"""The screen's words in Arabic and English, from the translation files next to this module.

Every string a person reads lives in ``i18n/ar.json`` and ``i18n/en.json`` (flat keys, the same
set in both; a test checks). ``Words(language)`` looks keys up, fills ``{placeholders}``, turns
digits Eastern Arabic when asked, and keeps typed numbers left to right inside right-to-left
text. No Qt here: the screenshots tool and the tests use it as they are.
"""

import functools
import json
import logging
from pathlib import Path

from kiosk.digits import western_digits

log = logging.getLogger(__name__)

LANGUAGES = ("ar", "en")
RTL = ("ar",)
FILES = Path(__file__).resolve().parent / "i18n"
WESTERN_TO_EASTERN = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
# Unicode isolates: the run inside keeps its own direction and does not reorder the text around it
LRI, RLI, FSI, PDI = "\u2066", "\u2067", "\u2068", "\u2069"


@functools.lru_cache(maxsize=None)
def table(language):
    """The key -> text table of one language (read once)."""
    if language not in LANGUAGES:
        raise ValueError(f"no translation for language {language!r} (known: {', '.join(LANGUAGES)})")
    with open(FILES / f"{language}.json", encoding="utf-8") as f:
        return json.load(f)


class Words:
    """Looks up one language's words; ``eastern_digits`` shows 0-9 as ٠-٩ (Arabic only)."""

    def __init__(self, language, *, eastern_digits=False):
        self.language = language if language in LANGUAGES else LANGUAGES[0]
        self.eastern = bool(eastern_digits) and self.language == "ar"
        self.table = table(self.language)

    @property
    def rtl(self):
        return self.language in RTL

    def has(self, key):
        return key in self.table

    def __call__(self, key, default=None, **fields):
        """The text for ``key`` with ``fields`` filled in (digits localised); a missing key is logged."""
        text = self.table.get(key)
        if text is None:
            if default is None:
                log.warning("no %s text for %s", self.language, key)
                text = key
            else:
                text = default
        if fields:
            try:
                text = text.format(**{k: self.number(v) if isinstance(v, (int, float)) else v
                                      for k, v in fields.items()})
            except (KeyError, IndexError, ValueError):
                log.warning("%s text %s does not take %s", self.language, key, sorted(fields))
        return self.digits(text)

    def first(self, *keys, **fields):
        """The text of the first key that exists (e.g. a reason, then its family, then a generic one)."""
        for key in keys:
            if key in self.table:
                return self(key, **fields)
        return self(keys[-1], **fields)

    def digits(self, text):
        """``text`` with 0-9 as Eastern Arabic digits when that option is on."""
        text = str(text)
        return text.translate(WESTERN_TO_EASTERN) if self.eastern else text

    def number(self, value):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return self.digits(value)

    def ltr(self, text):
        """A number, ID or code typed by a person: left to right even inside Arabic text."""
        return f"{LRI}{self.digits(text)}{PDI}"

    def name(self, text):
        """A person's name inside a sentence: its own direction (Latin or Arabic), not reordering the rest."""
        return f"{FSI}{text}{PDI}"

    def typed(self, text):
        """What the keypad holds, as shown (localised digits, isolated left to right)."""
        return self.ltr(western_digits(text) if text else "")

    def other_language(self):
        return LANGUAGES[(LANGUAGES.index(self.language) + 1) % len(LANGUAGES)]
