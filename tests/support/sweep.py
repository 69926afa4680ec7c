"""The browser quality sweep (issues 14 and 16): the checks run on every page, in both
languages and at phone and desktop width, by ``tests/test_sweep_browser.py`` and by
``make screenshots`` (``tests/support/screenshots.py``).

On each page, in its layout as Chromium renders it:

* **accessibility**: axe-core (``tests/browser``, pinned in its ``package-lock.json``,
  installed by ``npm ci``) injected into the page reports no ``serious`` or
  ``critical`` violation;
* **overflow**: no visible text element's content is wider than its box (its
  ``scrollWidth`` beyond its ``clientWidth`` while ``overflow-x`` is not ``scroll`` or
  ``auto``), no visible element reaches beyond the viewport horizontally, the page
  itself does not scroll sideways, and no text field keeps the browser's own look
  (the stylesheet styles every kind of field alike);
* **catalogue** (German pages): every visible text node, and the ``placeholder``,
  ``aria-label``, ``title`` and ``alt`` texts, is a German ``msgstr`` of
  ``idp/translations/de/LC_MESSAGES/messages.po`` (its placeholders standing for any
  data) or a piece of one between markup, once the data in it is taken out: see
  :data:`DATA_PATTERNS` and the test data values a caller passes. An English string
  without a German translation shows up as a finding. Text inside an element whose
  ``lang`` is not the page's (the language switch's "English") is not German by
  design and is left out, and so is text in ``<code>``: machine text such as the
  technical error code and the request id that an error page shows for support.

The crawler follows same-origin GET links (``<a href>``, never a form) under given
prefixes breadth-first, up to a bound, and leaves out links that sign out or change
state (:data:`SKIP_LINK`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
CATALOGUE = ROOT / "idp" / "translations" / "de" / "LC_MESSAGES" / "messages.po"
WIDTHS = (1280, 360)
LANGUAGES = ("de", "en")  # English last: a journey goes on in English
SERIOUS = ("serious", "critical")

# Data in a German page that rightly comes from no catalogue: e-mail addresses, numbers,
# dates, times and zones, codes (one-time codes, TOTP secrets, identifiers), URLs and
# the product's name. Each is taken out of a text before the catalogue is asked.
DATA_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail addresses
    re.compile(r"https?://\S+|otpauth://\S+"),  # URLs
    re.compile(r"\b(?:UTC|GMT|MEZ|MESZ|CET|CEST)(?:[+-]\d{1,2}(?::\d\d)?)?\b"),  # zones
    re.compile(r"\b[A-Z2-7]{4}(?: [A-Z2-7]{4}){3,}\b"),  # TOTP secrets in groups
    re.compile(r"\b[0-9a-f]{8,}\b"),  # identifiers
    re.compile(r"\b[A-Z0-9]{4,}(?:-[A-Z0-9]{4,})+\b"),  # codes with dashes
    re.compile(r"(?<=\d) ?[A-Z]{3}\b|\b[A-Z]{3}(?= ?\d)"),  # ISO 4217 codes by amounts
    re.compile(r"\bUnitgate\b"),  # the product's name
    re.compile("[+\\d][\\d\\s.,:/()%€$\u2013-]*"),  # numbers, dates, times, phone numbers
)

SKIP_LINK = re.compile(
    r"(sign-?out|log-?out|logout|/revoke|/remove|/delete|/withdraw|/end\b|/disable|"
    r"/suspend|/download|/export|\.csv$|/static/|/dev/outbox)",
    re.IGNORECASE,
)

OVERFLOW_JS = """() => {
  const TEXT_ENTRY = 'input:not([type=hidden], [type=checkbox], [type=radio], [type=submit], '
    + '[type=button], [type=reset], [type=image], [type=file], [type=range], [type=color]), '
    + 'select, textarea';
  const out = [];
  const view = document.documentElement.clientWidth;
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (el.classList.length) s += '.' + [...el.classList].join('.');
    const text = (el.innerText || el.value || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    return text ? s + ' "' + text + '"' : s;
  };
  if (document.documentElement.scrollWidth > view + 1)
    out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + view);
  for (const el of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'OPTION'].includes(el.tagName)) continue;
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;  // visually hidden (screen-reader text)
    const cs = getComputedStyle(el);
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const boxed = own || el.matches('input, button, select, textarea, img, svg, table, a');
    if (r.right <= 0) continue;  // wholly off to the left: hidden on purpose (a skip link)
    if (boxed && (r.right > view + 1 || r.left < -1))
      out.push(name(el) + ' reaches beyond the viewport (' + Math.round(r.left) + '..'
               + Math.round(r.right) + ' of ' + view + ')');
    if (own && cs.display !== 'inline' && !['scroll', 'auto'].includes(cs.overflowX)
        && el.scrollWidth > el.clientWidth + 1)
      out.push(name(el) + ' overflows its box (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
    if (el.matches(TEXT_ENTRY) && parseFloat(cs.paddingLeft) < 4)
      out.push(name(el) + " has the browser's own look: the stylesheet does not style it");
  }
  return out;
}"""

TEXTS_JS = """() => {
  const lang = document.documentElement.lang;
  const out = [];
  const shown = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const foreign = (el) => { const l = el.closest('[lang]'); return l && l.lang !== lang; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.replace(/\\s+/g, ' ').trim();
    const el = n.parentElement;
    if (!text || !el || el.closest('script, style, noscript, template, code')) continue;
    if (!shown(el) || foreign(el)) continue;
    out.push(text);
  }
  const labelled = '[placeholder], [aria-label], [title], img[alt]';
  for (const el of document.body.querySelectorAll(labelled)) {
    if (!shown(el) || foreign(el)) continue;
    for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
      const v = (el.getAttribute(a) || '').replace(/\\s+/g, ' ').trim();
      if (v) out.push(v);
    }
  }
  const title = document.title.trim();
  if (title) out.push(title);
  return out;
}"""

LINKS_JS = """() => [...document.querySelectorAll('a[href]')].map(a => a.href)"""

PLACEHOLDER = re.compile(r"%\([^)]*\)[sdif]|%[sdif]|\{[^}]*\}")
TAG = re.compile(r"<[^>]+>")


def _norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u00ad", "").split())


@dataclass(frozen=True)
class Catalogue:
    """The German ``msgstr`` values: each as a pattern (placeholders matching any
    text) and as its literal pieces between placeholders and markup."""

    patterns: tuple[re.Pattern[str], ...]
    pieces: frozenset[str]
    joined: str

    def knows(self, text: str) -> bool:
        if text in self.pieces or any(p.fullmatch(text) for p in self.patterns):
            return True
        # a piece of a translated sentence between markup (a link or <strong> in it)
        return len(text) > 1 and text in self.joined


@cache
def german_catalogue(path: Path = CATALOGUE) -> Catalogue:
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        catalog = read_po(fh, locale="de")
    patterns: list[re.Pattern[str]] = []
    pieces: set[str] = set()
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for raw in strings:
            if not raw:
                continue
            plain = _norm(TAG.sub(" ", raw.replace("%%", "%")))
            parts = [_norm(p) for p in PLACEHOLDER.split(plain)]
            pieces.update(p for p in parts if p)
            patterns.append(re.compile(r"\s*.+?\s*".join(re.escape(p) for p in parts)))
    return Catalogue(tuple(patterns), frozenset(pieces), "\n".join(sorted(pieces)))


@cache
def _babel_words() -> frozenset[str]:
    """Month and day names (all widths) and the like of German dates: data that the
    date formatter (CLDR, through Babel) writes, not the catalogue."""
    from babel import Locale

    de = Locale.parse("de")
    words: set[str] = set()
    for kind in (de.months, de.days):
        for context in kind.values():
            for width in context.values():
                words.update(str(w) for w in width.values())
    words.update(str(p) for p in de.periods.values())
    words.update({"um", "Uhr"})
    return frozenset(_norm(w).strip(".") for w in words)


def untranslated(texts: Iterable[str], data_values: Iterable[str] = ()) -> list[str]:
    """The texts that the German catalogue does not account for (see the module doc)."""
    catalogue = german_catalogue()
    values = sorted({_norm(v) for v in data_values if v.strip()}, key=len, reverse=True)
    words = _babel_words()
    out: list[str] = []
    for raw in texts:
        text = _norm(raw)
        if not text or catalogue.knows(text):
            continue
        rest = text
        for value in values:
            rest = rest.replace(value, " ")
        for pattern in DATA_PATTERNS:
            rest = pattern.sub(" ", rest)
        leftover = [
            w
            for w in re.split("[\\s,;:()\\[\\]»«„“”\"'·\u2013\u2014/|]+", rest)
            if w and w.strip(".!?") not in words
        ]
        if not any(re.search(r"[^\W\d_]", w) for w in leftover):
            continue  # only data
        if catalogue.knows(_norm(rest)) or all(
            catalogue.knows(w) or catalogue.knows(w.strip(".!?"))
            for w in leftover
            if re.search(r"[^\W\d_]", w)
        ):
            continue
        out.append(text)
    return out


def shape(target: str) -> str:
    """A page's kind: its path with ids and numbers as ``*``, without the query."""
    return re.sub(r"[0-9a-f]{32}|\b\d+\b", "*", urlsplit(target).path)


def _target(url: SplitResult) -> str:
    """Path and query of ``url`` without its ``lang`` parameter."""
    query = urlencode([(k, v) for k, v in parse_qsl(url.query) if k != "lang"])
    return url.path + (f"?{query}" if query else "")


def new_context(browser: Any, **options: Any) -> Any:
    """A browser context for the sweep: English first, and the page's Content Security
    Policy bypassed so that axe-core can be injected (the pages allow no inline script;
    the CSP itself has its own tests)."""
    context = browser.new_context(locale="en-GB", bypass_csp=True, **options)
    context.set_default_timeout(30_000)
    return context


def with_lang(url: str, lang: str) -> str:
    """``url`` with its ``lang`` query parameter set to ``lang``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    query.append(("lang", lang))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class Sweep:
    """The findings of a sweep, per page, language and width; ``data_values`` are the
    test data shown on the pages (names, companies, merchants); ``shoot`` is called
    with (page, name, language, width) at each width."""

    data_values: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    shoot: Callable[[Any, str, str, int], None] | None = None
    checks: bool = True  # False: only ``shoot`` (``make screenshots``)
    axe_source: str | None = None

    def _axe(self, page: Any) -> list[str]:
        if self.axe_source is None:
            self.axe_source = AXE.read_text(encoding="utf-8")
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(content=self.axe_source)
        result = page.evaluate(
            """async () => {
              const r = await axe.run(document, {resultTypes: ['violations']});
              return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': '
                  + (n.failureSummary || '').split('\\n').slice(1, 2).join(' ').trim())}));
            }"""
        )
        return [
            f"axe {v['impact']} {v['id']} ({v['help']}): {'; '.join(v['nodes'])}"
            for v in result
            if v["impact"] in SERIOUS
        ]

    def check(self, page: Any, name: str, lang: str) -> None:
        """Run every check on the page as loaded, at each width in :data:`WIDTHS`."""
        where = f"{name} [{lang}]"
        self.visited.append(where)
        if not self.checks:
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900 if width > 600 else 780})
                if self.shoot is not None:
                    self.shoot(page, name, lang, width)
            return
        html_lang = page.evaluate("() => document.documentElement.lang")
        if html_lang != lang:
            self.findings.append(f"{where}: <html lang> is {html_lang!r}")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900 if width > 600 else 780})
            at = f"{where} @{width}px"
            self.findings.extend(f"{at}: {p}" for p in page.evaluate(OVERFLOW_JS))
            self.findings.extend(f"{at}: {p}" for p in self._axe(page))
            if self.shoot is not None:
                self.shoot(page, name, lang, width)
        if lang == "de":
            texts = page.evaluate(TEXTS_JS)
            self.findings.extend(
                f"{where}: not from the catalogue: {t!r}"
                for t in untranslated(texts, self.data_values)
            )

    def visit(self, page: Any, name: str, url: str | None = None, status: int | None = 200) -> None:
        """Load ``url`` (default: the page's own) in each language and check it."""
        target = url or page.url
        for lang in LANGUAGES:
            response = page.goto(with_lang(target, lang))
            got = response.status if response is not None else None
            if status is not None and got != status:
                self.findings.append(f"{name} [{lang}]: HTTP {got}, expected {status}")
            self.check(page, name, lang)

    def crawl(
        self,
        page: Any,
        base: str,
        starts: Iterable[str],
        prefixes: tuple[str, ...],
        who: str,
        limit: int = 30,
        skip: Iterable[str] = (),
    ) -> list[str]:
        """Breadth-first over the same-origin GET links under ``prefixes`` from the
        paths ``starts``, at most ``limit`` pages; each page is checked in both
        languages. One page per shape (:func:`shape`: the path with its ids and
        numbers as ``*``, the query left out), so that a list of a thousand items
        costs one detail page; ``skip`` are shapes already swept. Returns the paths
        visited (404s are left out: not there yet; a download is no page)."""
        from playwright.sync_api import Error as PlaywrightError

        origin = urlsplit(base)
        queue = deque(starts)
        seen = {shape(p) for p in queue} | set(skip)
        swept: set[str] = set(skip)
        done: list[str] = []
        while queue and len(done) < limit:
            path = queue.popleft()
            try:
                response = page.goto(with_lang(base + path, LANGUAGES[0]))
            except PlaywrightError:  # a download, not a page
                continue
            if response is None or response.status == 404:
                continue
            landed = urlsplit(page.url)
            if not landed.path.startswith(prefixes):  # sent away (to sign in, say)
                self.findings.append(f"{who} {path}: sent to {page.url}")
                continue
            here = _target(landed)
            if here != path:  # redirected to another page under the prefixes
                if shape(here) in swept:
                    continue
                path = here
                seen.add(shape(path))
            swept.add(shape(path))
            done.append(path)
            for href in page.evaluate(LINKS_JS):
                link = urlsplit(urljoin(page.url, href))
                if (link.scheme, link.netloc) != (origin.scheme, origin.netloc):
                    continue
                target = _target(link)
                if (
                    shape(target) in seen
                    or SKIP_LINK.search(link.path)
                    or not link.path.startswith(prefixes)
                ):
                    continue
                seen.add(shape(target))
                queue.append(target)
            self.check(page, f"{who} {path}", LANGUAGES[0])
            for lang in LANGUAGES[1:]:
                page.goto(with_lang(base + path, lang))
                self.check(page, f"{who} {path}", lang)
        return done

    def report(self) -> str:
        return "\n".join(self.findings)
