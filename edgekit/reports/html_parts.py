"""The pieces every edgekit HTML page is made of: a matplotlib figure as embedded PNG, an image
tag, a table. Used by the bench report, ``inspect --quant --html`` and ``tune``'s page.

Example:
    >>> html_table(["model", "p50 ms"], [["a.tflite", "0.12"]])
    '<table><thead><tr><th>model</th><th>p50 ms</th></tr></thead><tbody><tr><td>a.tflite</td><td>0.12</td></tr></tbody></table>'
"""

from __future__ import annotations

import base64
import html
import io


def figure_png(fig) -> str:
    """``fig`` as a base64 PNG (closed afterwards), for :func:`html_img`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def html_table(columns: list[str], cells: list[list[str]]) -> str:
    """A table with a header row; every cell escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_img(b64: str | None, alt: str) -> str:
    """An embedded chart, or a note saying why there is none (``b64`` None)."""
    if b64 is None:
        return f"<p class=note>No chart for {html.escape(alt)}: no row has both a latency and an accuracy.</p>"
    return f'<img class=chart alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'
