"""Small server-rendered SVG charts for the staff dashboard: no script, no inline style (the
site's Content-Security-Policy allows neither), colours from static/css/dashboard.css by class.

Each chart scales to its container (a viewBox and width 100 %); a bar's or point's exact figure
is in its <title>, which browsers show on hover and screen readers read.
"""

import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 26


def _axis(highest: float) -> tuple[float, float]:
    """(top, step) of an axis that reads well: a step of 1, 2 or 5 × 10^k, at most 5 steps."""
    if highest <= 0:
        return 1, 0.25
    step = 1.0
    while step * 5 < highest:
        step *= 10
    while step / 10 * 5 >= highest:
        step /= 10
    for factor in (0.1, 0.2, 0.5, 1):
        if step * factor * 5 >= highest:
            step *= factor
            break
    return math.ceil(highest / step) * step, step


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _with_unit(value: float, unit: str) -> str:
    """$ before the figure, other units after it."""
    return f"${_number(value)}" if unit == "$" else f"{_number(value)}{unit}"


def _join(parts) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def _frame(labels: list[str], highest: float, unit: str) -> tuple[list, float, float, float]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top, step = _axis(highest)
    parts = []
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = step * i
        y = f"{TOP + plot_h - plot_h * i / ticks:.1f}"
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>', LEFT, WIDTH - RIGHT, y, y
            )
        )
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                LEFT - 6,
                f"{float(y) + 4:.1f}",
                _with_unit(value, unit),
            )
        )
    step = max(1, -(-len(labels) // 8))  # at most about 8 labels along the bottom
    slot = plot_w / max(len(labels), 1)
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    f"{LEFT + slot * (i + 0.5):.1f}",
                    HEIGHT - 8,
                    label,
                )
            )
    return parts, slot, plot_h, top


def _svg(title: str, parts: list) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        title,
        _join(parts),
    )


def bar_chart(
    *,
    title: str,
    labels: list[str],
    series: list[tuple[str, str]],
    values: list[dict[str, float]],
    stacked: bool = True,
    unit: str = "",
) -> SafeString:
    """Bars per label: `series` (key, name) stacked or side by side; values[i][key]."""
    if stacked:
        highest = max((sum(v.get(k, 0) for k, _ in series) for v in values), default=0)
    else:
        highest = max((v.get(k, 0) for v in values for k, _ in series), default=0)
    parts, slot, plot_h, top = _frame(labels, highest, unit)
    width = slot * 0.8 / (1 if stacked else len(series))
    for i, (label, point) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + slot * i + slot * 0.1
        base = 0.0
        for n, (key, name) in enumerate(series):
            value = point.get(key, 0)
            if not value:
                continue
            height = plot_h * value / top
            y = TOP + plot_h - height - (plot_h * base / top if stacked else 0)
            parts.append(
                format_html(
                    '<rect class="s-{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{} · {}: {}</title></rect>",
                    key,
                    f"{x if stacked else x + width * n:.1f}",
                    f"{y:.1f}",
                    f"{width:.1f}",
                    f"{height:.1f}",
                    label,
                    name,
                    _with_unit(value, unit),
                )
            )
            if stacked:
                base += value
    return _svg(title, parts)


def line_chart(
    *,
    title: str,
    labels: list[str],
    series: list[tuple[str, str]],
    values: list[dict[str, float | None]],
    unit: str = "",
) -> SafeString:
    """A line per series; a missing value (None) breaks the line."""
    highest = max((v[k] for v in values for k, _ in series if v.get(k) is not None), default=0)
    parts, slot, plot_h, top = _frame(labels, highest, unit)
    for key, name in series:
        runs, run = [], []
        for i, point in enumerate(values):
            value = point.get(key)
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / top
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(
                format_html(
                    '<circle class="s-{}" cx="{}" cy="{}" r="3">'
                    "<title>{} · {}: {}{}</title></circle>",
                    key,
                    f"{x:.1f}",
                    f"{y:.1f}",
                    labels[i],
                    name,
                    f"{value:.1f}",
                    unit,
                )
            )
        if run:
            runs.append(run)
        for points in runs:
            if len(points) > 1:
                parts.append(
                    format_html('<polyline class="line s-{}" points="{}"/>', key, " ".join(points))
                )
    return _svg(title, parts)
