"""One report, two renderings: blocks (headings, text, tables, figures) to Markdown and to HTML.

Sections build a list of blocks once; ``to_markdown`` writes GitHub-flavoured Markdown whose
figures are PNG files next to it (``img/<name>.png``), ``to_html`` a self-contained page with the
same figures embedded as base64 data URIs, inline CSS and no scripts. Text may use two inline
marks, `code` and **bold**, rendered in both.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

IMAGE_DIR = "img"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2

    @property
    def anchor(self) -> str:
        """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
        return re.sub(r"[^\w\- ]", "", self.text.lower()).replace(" ", "-")


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, unique in the report
    png: bytes
    caption: str


Block = Heading | Text | Bullets | Table | Figure


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        lines = [f"| {' | '.join(map(_md_cell, block.columns))} |", f"|{'---|' * len(block.columns)}"]
        lines += [f"| {' | '.join(map(_md_cell, row))} |" for row in block.rows]
        return (f"{block.caption}\n\n" if block.caption else "") + "\n".join(lines)
    return f"![{block.caption}]({IMAGE_DIR}/{block.name}.png)\n\n*{block.caption}*"


def to_markdown(doc: Document) -> str:
    contents = [f"- [{b.text}](#{b.anchor})" for b in doc.blocks if isinstance(b, Heading) and b.level == 2]
    parts = [f"# {doc.title}", "\n".join(contents), *(_md_block(b) for b in doc.blocks)]
    return "\n\n".join(parts) + "\n"


def inline_html(text: str) -> str:
    """Escape ``text`` and render its `code` and **bold** marks."""
    escaped = html.escape(str(text), quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f'<h{block.level} id="{block.anchor}">{inline_html(block.text)}</h{block.level}>'
    if isinstance(block, Text):
        return f"<p>{inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{inline_html(c)}</th>" for c in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        caption = f"<caption>{inline_html(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    data = base64.b64encode(block.png).decode("ascii")
    alt = html.escape(block.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{inline_html(block.caption)}</figcaption></figure>")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #1f2328; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
code { background: #f6f8fa; padding: 0 0.25em; border-radius: 3px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-style: italic; color: #57606a; }
nav ul { columns: 2; }
"""


def to_html(doc: Document) -> str:
    contents = "".join(f'<li><a href="#{b.anchor}">{inline_html(b.text)}</a></li>'
                       for b in doc.blocks if isinstance(b, Heading) and b.level == 2)
    body = "\n".join(_html_block(b) for b in doc.blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(doc.title)}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{html.escape(doc.title)}</h1><nav><ul>{contents}</ul></nav>\n{body}\n</body></html>\n")
