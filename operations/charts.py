"""Charts drawn on the server as SVG: no script, no build step, nothing inline for the CSP.

Colors come from classes (``operations/static/operations/overview.css``) and, for
priorities, from ``priority-colors.css`` by ``data-priority``; never a style attribute.
Each chart is an ``<svg role="img">`` named by its title and described by a sentence of
its figures (for screen readers), with a ``<title>`` on each bar or point (for the mouse).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 10, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass
class Series:
    label: str
    values: Sequence[float | None]  # one per hour; None: nothing to draw
    css: str  # its class, which colors it
    priority: str = ""  # data-priority (the priority palette), when it is one


def count_text(value: float) -> str:
    return f"{value:,.0f}"


def seconds_text(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.3g} s"
    if value < 3600:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def _attrs(**attrs) -> str:
    return " ".join(f'{name.rstrip("_").replace("_", "-")}="{escape(value)}"'
                    for name, value in attrs.items() if value not in (None, ""))


def _hour_label(hour: datetime, span_hours: int) -> str | None:
    """An x-axis label at every 3rd hour over a day, at midnight over a week."""
    if span_hours <= 48:
        return f"{hour:%H}:00" if hour.hour % 3 == 0 else None
    return f"{hour:%a %d}" if hour.hour == 0 else None


def _count_ticks(largest: float) -> tuple[float, list[tuple[float, str]]]:
    """The axis top and its ticks for counts up to ``largest``: whole steps of 1, 2 or 5
    times a power of ten, at most 5 of them."""
    step = 1.0
    while largest > step * 5:
        for factor in (2, 2.5, 2):  # 1 -> 2 -> 5 -> 10
            step *= factor
            if largest <= step * 5:
                break
    top = step * max(1, math.ceil(largest / step))
    count = round(top / step)
    return top, [(step * k, count_text(step * k)) for k in range(count + 1)]


def _frame(chart_id: str, title: str, description: str, body: list[str],
           series: Sequence[Series]) -> SafeString:
    legend = "".join(
        f'<li><span {_attrs(class_=f"swatch {s.css}", data_priority=s.priority)}></span>'
        f"{escape(s.label)}</li>" for s in series)
    svg = (f'<svg {_attrs(class_="chart", role="img", viewBox=f"0 0 {WIDTH} {HEIGHT}")} '
           f'aria-labelledby="{chart_id}-title {chart_id}-desc">'
           f'<title id="{chart_id}-title">{escape(title)}</title>'
           f'<desc id="{chart_id}-desc">{escape(description)}</desc>{"".join(body)}</svg>')
    return mark_safe(f'<figure class="overview-chart" id="{chart_id}">'
                     f'<figcaption>{escape(title)}</figcaption>{svg}'
                     f'<ul class="chart-legend">{legend}</ul></figure>')


def _line(css: str, x1, y1, x2, y2) -> str:
    return f'<line {_attrs(class_=css, x1=x1, y1=f"{y1:.1f}", x2=x2, y2=f"{y2:.1f}")}/>'


def _axes(hours: Sequence[datetime], ticks: list[tuple[float, str]],
          y: Callable[[float], float]) -> list[str]:
    body = [_line("axis", LEFT, TOP + PLOT_H, LEFT + PLOT_W, TOP + PLOT_H)]
    for value, text in ticks:
        top = y(value)
        body.append(_line("grid", LEFT, top, LEFT + PLOT_W, top))
        where = _attrs(class_="tick", x=LEFT - 6, y=f"{top + 4:.1f}", text_anchor="end")
        body.append(f"<text {where}>{escape(text)}</text>")
    slot = PLOT_W / max(1, len(hours))
    for index, hour in enumerate(hours):
        label = _hour_label(hour, len(hours))
        if label:
            x = LEFT + index * slot
            body.append(f'<text {_attrs(class_="tick", x=f"{x:.1f}", y=HEIGHT - 8)}>'
                        f"{escape(label)}</text>")
    return body


def bar_chart(*, chart_id: str, title: str, hours: Sequence[datetime],
              series: Sequence[Series], unit: str) -> SafeString:
    """Stacked bars, one per hour, one segment per series (``unit``: what a value counts)."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(hours))]
    top_value, ticks = _count_ticks(max(totals, default=0))

    def y(value):
        return TOP + PLOT_H - PLOT_H * value / top_value

    body = _axes(hours, ticks, y)
    slot = PLOT_W / max(1, len(hours))
    width = max(1.0, slot * 0.8)
    for index, hour in enumerate(hours):
        base = 0.0
        for s in series:
            value = s.values[index] or 0
            if not value:
                continue
            x = LEFT + index * slot + (slot - width) / 2
            box = _attrs(class_=f"bar {s.css}", data_priority=s.priority, x=f"{x:.1f}",
                         y=f"{y(base + value):.1f}", width=f"{width:.1f}",
                         height=f"{y(base) - y(base + value):.1f}")
            tip = f"{hour:%a %H}:00: {count_text(value)} {s.label} {unit}"
            body.append(f"<rect {box}><title>{escape(tip)}</title></rect>")
            base += value
    summary = ", ".join(f"{s.label} {count_text(sum(v or 0 for v in s.values))}"
                        for s in series)
    description = (f"{count_text(sum(totals))} {unit} over {len(hours)} hours"
                   + (f": {summary}." if sum(totals) else "."))
    return _frame(chart_id, title, description, body, series)


def line_chart(*, chart_id: str, title: str, hours: Sequence[datetime],
               series: Sequence[Series], seconds: bool = False) -> SafeString:
    """One line per series over the hours; ``seconds``: values are durations, on a
    logarithmic axis (milliseconds to hours), else counts from zero."""
    present = [v for s in series for v in s.values if v is not None]
    text = seconds_text if seconds else count_text
    if seconds:
        low = 10 ** math.floor(math.log10(max(min(present, default=0.01), 0.001)))
        high = 10 ** math.ceil(math.log10(max(max(present, default=1), low * 10)))

        def y(value):
            value = min(max(value, low), high)
            return TOP + PLOT_H - PLOT_H * math.log10(value / low) / math.log10(high / low)

        decades = round(math.log10(high / low))
        ticks = [(low * 10 ** k, seconds_text(low * 10 ** k)) for k in range(decades + 1)]
    else:
        top_value, ticks = _count_ticks(max(present, default=0))

        def y(value):
            return TOP + PLOT_H - PLOT_H * value / top_value

    body = _axes(hours, ticks, y)
    slot = PLOT_W / max(1, len(hours))
    for s in series:
        points = [(LEFT + (i + 0.5) * slot, y(v), hours[i], v)
                  for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{top:.1f}" for x, top, _, _ in points)
            line = _attrs(class_=f"line {s.css}", data_priority=s.priority, points=path,
                          fill="none")
            body.append(f"<polyline {line}/>")
        for x, top, hour, value in points:
            dot = _attrs(class_=f"point {s.css}", data_priority=s.priority, cx=f"{x:.1f}",
                         cy=f"{top:.1f}", r=2.5)
            tip = f"{hour:%a %H}:00: {s.label} {text(value)}"
            body.append(f"<circle {dot}><title>{escape(tip)}</title></circle>")
    latest = []
    for s in series:
        known = [v for v in s.values if v is not None]
        latest.append(f"{s.label} {text(known[-1])}" if known else f"{s.label}: none")
    description = f"Over {len(hours)} hours, latest hour with data: {', '.join(latest)}."
    return _frame(chart_id, title, description, body, series)
