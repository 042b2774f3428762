"""The report's markdown as one self-contained HTML page: every image inlined as base64, CSS inline.

The page loads nothing from anywhere (no fonts, scripts or style sheets), so it opens offline and can be
mailed or archived as a single file. The converter is a small hand-written subset of GitHub markdown,
enough for the reports nnlab writes:

- headings ``#`` to ``######`` (each gets an ``id`` for links), paragraphs, ``---`` rules, ``>`` quotes;
- fenced code blocks (```), pipe tables (with ``:--``/``--:`` alignment and ``\\|`` in cells);
- bullet lists (``-``, ``*``, ``+``) and numbered lists (``1.``), nested by indentation;
- inline: ``code``, ``**bold**``, ``*italic*``/``_italic_``, ``[links](url)``, ``![alt](path.png "title")``,
  backslash escapes.

Raw HTML in the markdown is escaped and shown as text (a report cannot inject markup or scripts); math such
as ``$W_2$`` is left as text.

Images are read relative to ``base_dir`` (absolute paths are used as they are). A missing, unreadable or
external (``http://...``) image raises ``DataError`` naming it by default (``on_missing="error"``): a report
without its figures is usually a bug worth stopping for. ``on_missing="placeholder"`` instead puts a
visible red box "missing image: path" in its place and carries on.
"""

from __future__ import annotations

import base64
import html as _html
import os
import re
from pathlib import Path
from urllib.parse import unquote

from .._io import atomic_write_text
from ..errors import DataError

ON_MISSING = ("error", "placeholder")
#: Image types that can be embedded, by file suffix.
IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".svg": "image/svg+xml", ".webp": "image/webp"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CSS = """
body { margin: 0; background: #fff; color: #1f2328;
  font: 16px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin: 1.6em 0 0.6em; }
h1 { font-size: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.3em; }
h2 { font-size: 1.5em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.3em; }
code { font: 0.88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #f3f4f6; padding: 0.1em 0.35em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 0.9em 1em; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.35em 0.75em; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; height: auto; }
blockquote { margin: 1em 0; padding: 0 1em; color: #57606a; border-left: 0.25em solid #d0d7de; }
hr { border: 0; border-top: 1px solid #d0d7de; margin: 2em 0; }
.missing-image { display: inline-block; padding: 1em; border: 2px dashed #cf222e; color: #cf222e;
  background: #fff5f5; font-weight: 600; }
""".strip()

# ----------------------------------------------------------------------------------------- inline
_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])")
# ![alt](path "title") and [text](url "title"); a path with spaces may be written <like this.png>.
_TARGET = r"\(\s*(?:<([^>]*)>|([^)\s]+))(?:\s+\"([^\"]*)\")?\s*\)"
_IMAGE = re.compile(r"!\[([^\]]*)\]" + _TARGET)
_LINK = re.compile(r"\[([^\]]+)\]" + _TARGET)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
_SAFE_HREF = re.compile(r"^(?:https?://|mailto:|#|(?![a-zA-Z][a-zA-Z0-9+.-]*:))")
_PH = re.compile("\x00(\\d+)\x00")


def _esc(text: str) -> str:
    return _html.escape(text, quote=True)


class _Renderer:
    def __init__(self, base_dir: Path, on_missing: str):
        self.base_dir = base_dir
        self.on_missing = on_missing
        self.slots: list[str] = []  # finished HTML fragments, referenced from text by \x00<index>\x00
        self.cache: dict[Path, str] = {}
        self.ids: dict[str, int] = {}

    def _slot(self, fragment: str) -> str:
        self.slots.append(fragment)
        return f"\x00{len(self.slots) - 1}\x00"

    # -- images
    def _missing(self, src: str, why: str) -> str:
        if self.on_missing == "error":
            raise DataError(f"cannot embed image {src!r}: {why}")
        return f'<span class="missing-image" role="img" aria-label="missing image">missing image: {_esc(src)}</span>'

    def image(self, src: str, alt: str, title: str | None) -> str:
        extra = f' title="{_esc(title)}"' if title else ""
        if src.startswith("data:image/"):
            return f'<img src="{_esc(src)}" alt="{_esc(alt)}"{extra}>'
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", src):
            return self._missing(src, "only local image files can be embedded (the page must open offline)")
        path = Path(unquote(src))
        path = path if path.is_absolute() else self.base_dir / path
        mime = IMAGE_MIME.get(path.suffix.lower())
        if mime is None:
            return self._missing(src, f"unsupported image type {path.suffix!r}; valid: {', '.join(IMAGE_MIME)}")
        if path not in self.cache:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return self._missing(src, f"file not found: {path}")
            except OSError as exc:
                return self._missing(src, f"cannot read {path}: {exc}")
            if mime == "image/png" and not data.startswith(_PNG_MAGIC):
                return self._missing(src, f"{path} is not a PNG file (empty or truncated?)")
            self.cache[path] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return f'<img src="{self.cache[path]}" alt="{_esc(alt)}"{extra}>'

    # -- inline spans
    def inline(self, text: str) -> str:
        text = _CODE.sub(lambda m: self._slot(f"<code>{_esc(m.group(2).strip())}</code>"), text)
        text = _ESCAPE.sub(lambda m: self._slot(_esc(m.group(1))), text)
        text = _IMAGE.sub(lambda m: self._slot(self.image(m.group(2) or m.group(3) or "", m.group(1), m.group(4))), text)

        def link(m: re.Match) -> str:
            href = m.group(2) or m.group(3) or ""
            inner = self.inline(m.group(1))
            if not _SAFE_HREF.match(href):  # e.g. javascript: — keep the text, drop the link
                return self._slot(inner)
            extra = f' title="{_esc(m.group(4))}"' if m.group(4) else ""
            return self._slot(f'<a href="{_esc(href)}"{extra}>{inner}</a>')

        text = _LINK.sub(link, text)
        text = _esc(text)
        text = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", text)
        text = _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", text)
        while _PH.search(text):  # slots may hold slots (a link around an image)
            text = _PH.sub(lambda m: self.slots[int(m.group(1))], text)
        return text

    def heading_id(self, text: str) -> str:
        plain = re.sub(r"<[^>]+>", "", self.inline(text))
        slug = re.sub(r"[^\w\- ]", "", _html.unescape(plain).lower()).strip().replace(" ", "-") or "section"
        n = self.ids.get(slug, 0)
        self.ids[slug] = n + 1
        return slug if n == 0 else f"{slug}-{n + 1}"


# ------------------------------------------------------------------------------------------ blocks
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)\s*([\w+-]*)\s*$")
_LIST = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")


def _split_row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def _align_attr(align: str | None) -> str:
    return f' style="text-align:{align}"' if align else ""


def _indent(s: str) -> int:
    return len(s.expandtabs(4)) - len(s.expandtabs(4).lstrip(" "))


def _is_table_start(lines: list[str], i: int) -> bool:
    return "|" in lines[i] and i + 1 < len(lines) and "-" in lines[i + 1] and bool(_TABLE_SEP.match(lines[i + 1]))


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(_HEADING.match(line) or _FENCE.match(line) or _RULE.match(line) or _LIST.match(line)
                or _QUOTE.match(line) or _is_table_start(lines, i))


def _render_blocks(r: _Renderer, lines: list[str]) -> list[str]:
    out: list[str] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            marker, lang = fence.group(1), fence.group(2)
            body = []
            i += 1
            while i < n and not lines[i].strip().startswith(marker[:3]):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of the text)
            cls = f' class="language-{_esc(lang)}"' if lang else ""
            out.append(f"<pre><code{cls}>{_esc(chr(10).join(body))}</code></pre>")
            continue
        heading = _HEADING.match(line)
        if heading:
            level, text = len(heading.group(1)), heading.group(2)
            out.append(f'<h{level} id="{r.heading_id(text)}">{r.inline(text)}</h{level}>')
            i += 1
            continue
        if _RULE.match(line):
            out.append("<hr>")
            i += 1
            continue
        if _is_table_start(lines, i):
            head = _split_row(line)
            aligns = []
            for cell in _split_row(lines[i + 1]):
                left, right = cell.startswith(":"), cell.endswith(":")
                aligns.append("center" if left and right else "right" if right else "left" if left else None)
            aligns = (aligns + [None] * len(head))[: len(head)]

            def row_html(cells, tag):
                cells = (cells + [""] * len(head))[: len(head)]  # GitHub: pad short rows, cut long ones
                return "<tr>" + "".join(
                    f"<{tag}{_align_attr(a)}>{r.inline(c)}</{tag}>" for c, a in zip(cells, aligns)) + "</tr>"

            rows = [row_html(head, "th")]
            i += 2
            body = []
            while i < n and lines[i].strip() and "|" in lines[i]:
                body.append(row_html(_split_row(lines[i]), "td"))
                i += 1
            out.append("<table>\n<thead>" + rows[0] + "</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>")
            continue
        if _QUOTE.match(line):
            inner = []
            while i < n and lines[i].strip() and (_QUOTE.match(lines[i]) or not _starts_block(lines, i)):
                m = _QUOTE.match(lines[i])
                inner.append(m.group(1) if m else lines[i])
                i += 1
            out.append("<blockquote>\n" + "\n".join(_render_blocks(r, inner)) + "\n</blockquote>")
            continue
        if _LIST.match(line):
            i = _render_list(r, lines, i, out)
            continue
        para = [line.strip()]
        i += 1
        while i < n and lines[i].strip() and not _starts_block(lines, i):
            para.append(lines[i].strip())
            i += 1
        out.append(f"<p>{r.inline(' '.join(para))}</p>")
    return out


def _render_list(r: _Renderer, lines: list[str], i: int, out: list[str]) -> int:
    """Lists nested by indentation: a deeper marker opens a sub-list inside the current item."""
    stack: list[tuple[int, str]] = []  # (indent, "ul" | "ol") of each open list
    parts: list[str] = []
    n = len(lines)
    while i < n:
        line = lines[i]
        m = _LIST.match(line)
        if not line.strip():
            # A blank line ends the list unless the next text is another item or an indented continuation.
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            if j < n and (_LIST.match(lines[j]) or _indent(lines[j]) >= 2):
                i = j
                continue
            break
        if m:
            ind, tag = _indent(m.group(1)), "ol" if m.group(2)[0].isdigit() else "ul"
            while stack and ind < stack[-1][0]:
                parts.append(f"</li></{stack.pop()[1]}>")
            if stack and ind == stack[-1][0] and tag != stack[-1][1]:
                parts.append(f"</li></{stack.pop()[1]}>")
            if stack and ind == stack[-1][0]:
                parts.append("</li>")
            else:
                start = int(m.group(2)[:-1]) if tag == "ol" else 1
                parts.append(f"<{tag}>" if start == 1 else f'<{tag} start="{start}">')
                stack.append((ind, tag))
            parts.append("<li>" + r.inline(m.group(3).strip()))
            i += 1
            continue
        if _indent(line) >= 2 or not _starts_block(lines, i):  # continuation of the current item
            parts.append(" " + r.inline(line.strip()))
            i += 1
            continue
        break
    while stack:
        parts.append(f"</li></{stack.pop()[1]}>")
    out.append("".join(parts))
    return i


# -------------------------------------------------------------------------------------------- API
def render_html(markdown_text: str, base_dir: str | os.PathLike = ".", title: str = "nnlab report", *,
                on_missing: str = "error") -> str:
    """Convert ``markdown_text`` to a complete, self-contained HTML page and return it as a string.

    Images are read relative to ``base_dir`` and embedded as ``data:image/...;base64``. ``on_missing``:
    ``"error"`` (default) raises ``DataError`` for an image that is missing, unreadable, of an unsupported
    type or remote; ``"placeholder"`` shows a visible "missing image: path" box instead.
    """
    if on_missing not in ON_MISSING:
        raise ValueError(f"unknown on_missing {on_missing!r}; valid: {', '.join(ON_MISSING)}")
    r = _Renderer(Path(base_dir), on_missing)
    body = "\n".join(_render_blocks(r, markdown_text.replace("\r\n", "\n").split("\n")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def write_html(md_path: str | os.PathLike, out_html: str | os.PathLike, title: str | None = None, *,
               on_missing: str = "error") -> Path:
    """Render the markdown file ``md_path`` (images relative to its folder) to ``out_html``, atomically.

    ``title`` defaults to the first ``# heading`` of the file, else "nnlab report". Returns ``out_html``.
    """
    md_path = Path(md_path)
    try:
        text = md_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"report markdown not found: {md_path}") from None
    if title is None:
        m = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
        title = re.sub(r"[`*_]", "", m.group(1)) if m else "nnlab report"
    page = render_html(text, md_path.parent, title, on_missing=on_missing)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
