"""The HTML of a report: one self-contained page.

Everything is inline: pictures as base64 PNG ``data:`` URLs, the style in one ``<style>``
element, the system's own fonts; no script, nothing fetched (the page's Content Security
Policy refuses anything else, so a browser never even asks the network). It reads on a
phone's width (images and tables never wider than the screen) and prints (no page break
inside a picture or a table row). Every text read from a file goes through :func:`esc`.
"""

from __future__ import annotations

import base64
import html

#: the page's Content Security Policy: images from data: URLs, the inline style, nothing else
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de;
        --band: #f6f8fa; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; -webkit-text-size-adjust: 100%; }
main { max-width: 68rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.5rem; padding-bottom: 0.25rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.25rem 0 0.5rem; overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
.meta, figcaption, .note { color: var(--muted); font-size: 0.9rem; }
.note { border-left: 3px solid var(--line); padding-left: 0.75rem; }
figure { margin: 1rem 0; }
img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: var(--band); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: var(--band); border: 1px solid var(--line); padding: 0.75rem;
      font-size: 0.85rem; white-space: pre-wrap; overflow-wrap: anywhere;
      font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono",
      monospace; }
nav ul { padding-left: 1.2rem; margin: 0.25rem 0; }
a { color: var(--accent); }
footer { margin-top: 2.5rem; color: var(--muted); font-size: 0.8rem; }
@media (max-width: 40rem) {
  main { padding: 0.6rem; }
  h1 { font-size: 1.3rem; }
  table { font-size: 0.8rem; }
  th, td { padding: 0.2rem 0.3rem; }
}
@media print {
  @page { margin: 1.5cm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h2, h3 { break-after: avoid; }
  figure, tr, pre { break-inside: avoid; }
  .scroll { overflow: visible; }
  img { border: none; }
}
"""


def esc(text) -> str:
    """``text`` (anything read from a file: names, config values, classes, generated text)
    as HTML text, quotes included, so it is never taken for markup."""
    return html.escape(str(text), quote=True)


def figure(png: bytes, alt: str, caption: str | None = None) -> str:
    """A PNG inline (a ``data:`` URL), with its alternative text and a caption (plain
    text, escaped here)."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{cap}</figure>'


def table(header: list[str] | None, rows: list[list], numeric: set[int] = frozenset()) -> str:
    """A table of plain-text cells (escaped here), under ``header`` (None: none); the
    columns in ``numeric`` are right aligned. It scrolls sideways inside its box on a
    narrow screen, never the page."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header or [])
    body = "".join("<tr>" + "".join(
        f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    head = f"<thead><tr>{head}</tr></thead>" if header else ""
    return f'<div class="scroll"><table>{head}<tbody>{body}</tbody></table></div>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def document(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """The whole document: ``sections`` are ``(anchor, title, html)``, listed in a table
    of contents at the top (left out when printed)."""
    contents = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t, _ in sections)
    body = "".join(section(a, t, h) for a, t, h in sections)
    return ("<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f'<body><main><header><h1>{esc(title)}</h1><p class="meta">{esc(subtitle)}</p>'
            f"</header><nav><ul>{contents}</ul></nav>\n{body}\n"
            f"<footer>{esc(footer)}</footer></main></body></html>\n")
