"""Bar charts as inline SVG, drawn on the server: no script, nothing from another host.

A chart is horizontal bars, one row per category and one bar per series in a row, each bar with
its number written beside it. Every text is escaped. The ``<svg>`` is an image (``role="img"``)
whose accessible name is the title and every number, so a screen reader gets the data without
the drawing; the page shows the same numbers in a table as well.

Colours are presentation attributes, not inline styles, so the pages' Content Security Policy
(no inline styles) holds; each meets 3:1 against white (WCAG 1.4.11) and the text 4.5:1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

# Dark blue and dark orange: told apart without colour vision by the legend's order and the
# numbers written on every bar.
SERIES_COLOURS = ("#0b5cad", "#a34700", "#1d6b2f", "#5b2a86")
INK = "#1a1a1a"
GRID = "#767676"
WIDTH = 640
LABEL_WIDTH = 214
NUMBER_ROOM = 56
BAR_HEIGHT = 18
BAR_GAP = 4
ROW_GAP = 12
LEGEND_HEIGHT = 28
FONT_SIZE = 14


@dataclass(frozen=True)
class Row:
    """One category: its label and one number per series."""

    label: str
    values: Sequence[int]


def bar_chart(
    *,
    chart_id: str,
    title: str,
    rows: Sequence[Row],
    series: Sequence[str],
    summary: str,
) -> Markup:
    """An SVG bar chart. ``series`` names the bars of each row (a legend is drawn when there
    is more than one); ``summary`` is the text alternative: the title and every number."""
    if not series or len(series) > len(SERIES_COLOURS):
        raise ValueError(f"a chart has 1 to {len(SERIES_COLOURS)} series")
    for row in rows:
        if len(row.values) != len(series):
            raise ValueError(f"row {row.label!r} has {len(row.values)} values, not {len(series)}")
    legend = LEGEND_HEIGHT if len(series) > 1 else 0
    row_height = len(series) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    height = legend + max(len(rows), 1) * (row_height + ROW_GAP) + ROW_GAP
    largest = max((value for row in rows for value in row.values), default=0)
    room = WIDTH - LABEL_WIDTH - NUMBER_ROOM
    # Markup.format escapes every argument: labels, names and the summary come from outside.
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{}" viewBox="0 0 {} {}"'
            ' role="img" aria-label="{}" font-size="{}" font-family="system-ui, sans-serif"'
            ' direction="ltr"><title>{}</title>'
        ).format(chart_id, WIDTH, height, summary, FONT_SIZE, title)
    ]
    if legend:
        x = LABEL_WIDTH
        for index, name in enumerate(series):
            parts.append(
                Markup(
                    '<rect x="{}" y="6" width="14" height="14" fill="{}"/>'
                    '<text x="{}" y="18" fill="{}">{}</text>'
                ).format(x, SERIES_COLOURS[index], x + 20, INK, name)
            )
            x += 28 + 9 * len(name)
    top = legend + ROW_GAP
    parts.append(
        Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>').format(
            LABEL_WIDTH, legend, LABEL_WIDTH, height, GRID
        )
    )
    for row in rows:
        middle = top + row_height / 2 + FONT_SIZE / 3
        parts.append(
            Markup('<text x="{}" y="{:g}" text-anchor="end" fill="{}">{}</text>').format(
                LABEL_WIDTH - 8, middle, INK, _fit(row.label)
            )
        )
        for index, value in enumerate(row.values):
            y = top + index * (BAR_HEIGHT + BAR_GAP)
            length = round(room * value / largest) if largest else 0
            parts.append(
                Markup(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                    '<text x="{}" y="{}" fill="{}">{}</text>'
                ).format(
                    LABEL_WIDTH,
                    y,
                    length,
                    BAR_HEIGHT,
                    SERIES_COLOURS[index],
                    LABEL_WIDTH + length + 6,
                    y + BAR_HEIGHT - 4,
                    INK,
                    value,
                )
            )
        top += row_height + ROW_GAP
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _fit(label: str, limit: int = 28) -> str:
    """A label short enough for the label column (the table beside the chart has it whole)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
