"""The report's blocks (`tables.Block`) as markdown and as one self-contained HTML page.

The page embeds its figures as base64 PNG and needs no other file. It is laid out to read at
any width down to a phone's: text wraps, a table wider than the page scrolls inside its own
box, and a long cell (a run's parameters) folds under a one-line summary, so the page itself
never scrolls sideways.
"""

from __future__ import annotations

import base64
import html
import re

from pid_bench.report.figures import Fig
from pid_bench.report.tables import Block, Folded, Table


def render_markdown(blocks: list[Block]) -> str:
    """The blocks as GitHub-flavoured markdown; figures link their files."""
    out: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {payload}\n")
        elif kind == "p":
            out.append(f"{payload}\n")
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in payload) + "\n")
        elif kind == "figure":
            out.append(_figure_markdown(payload))
        elif kind == "table":
            out.append(_table_markdown(payload))
    return "\n".join(out)


def _figure_markdown(fig: Fig) -> str:
    links = " · ".join(f"[{p.suffix[1:].upper()}]({p.name})" for p in fig.paths)
    img = next((p for p in fig.paths if p.suffix == ".png"), None)
    shown = f"![{fig.title}]({img.name})\n\n" if img else ""
    return f"**{fig.title}** ({links})\n\n{shown}*{fig.caption}*\n"


def _md_escape(text: object) -> str:
    return str(text).replace("|", "\\|")


def _table_markdown(table: Table) -> str:
    lines = [
        "| " + " | ".join(_md_escape(c) for c in table.columns) + " |",
        "|"
        + "|".join("---" if i < table.left else "---:" for i in range(len(table.columns)))
        + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in table.rows]
    caption = f"\n*{table.caption}*\n" if table.caption else ""
    return "\n".join(lines) + "\n" + caption


CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.45;overflow-wrap:break-word}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin-top:1.5rem}
.table{overflow-x:auto;margin:.5rem 0 .25rem}
table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.2rem .6rem;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap;
vertical-align:top}
th.l,td.l{text-align:left;white-space:normal}td.l:first-child{white-space:nowrap}
td.l.b{overflow-wrap:anywhere;white-space:normal}th{background:#f5f5f5}
figure{margin:1rem 0 1.5rem}figure img{width:100%;max-width:34rem;height:auto;display:block}
figcaption,.caption{font-size:.85rem;color:#444;margin-top:.25rem}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px;font-size:.85em}
summary{cursor:pointer}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.4rem .6rem;
margin:.3rem 0;font-size:.8rem;line-height:1.3;text-align:left}
"""


def _inline_html(text: object) -> str:
    escaped = html.escape(str(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _cell_html(cell: object) -> str:
    if isinstance(cell, Folded):
        return (
            f"<details><summary>{_inline_html(cell.summary)}</summary>"
            f"<pre>{html.escape(cell.full)}</pre></details>"
        )
    return _inline_html(cell)


def _figure_html(fig: Fig) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{_inline_html(fig.title)}.</b> "
        f"{_inline_html(fig.caption)}</figcaption></figure>"
    )


def _table_html(table: Table) -> str:
    def cls(i: int, head: bool = False) -> str:
        names = ["l"] if i < table.left else []
        if i in table.breakable and not head:
            names.append("b")
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(
        f"<th{cls(i, head=True)}>{_inline_html(c)}</th>" for i, c in enumerate(table.columns)
    )
    rows = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_cell_html(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    caption = f'\n<div class="caption">{_inline_html(table.caption)}</div>' if table.caption else ""
    return (
        f'<div class="table"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>{caption}"
    )


def render_html(blocks: list[Block]) -> str:
    """The blocks as one self-contained HTML page (figures embedded as base64 PNG)."""
    body: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(payload)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(payload)}</p>")
        elif kind == "list":
            items = "".join(f"<li>{_inline_html(i)}</li>" for i in payload)
            body.append(f"<ul>{items}</ul>")
        elif kind == "figure":
            body.append(_figure_html(payload))
        elif kind == "table":
            body.append(_table_html(payload))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pid-bench report</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
