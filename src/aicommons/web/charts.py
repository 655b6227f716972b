"""Charts as server-side SVG: no script, no library, no CDN. Each chart is an ``<svg role="img">``
named by its ``<title>`` (the chart's name and what it shows in words); the template puts its numbers
in a table beside it. Colours are the stylesheet's variables (``.chart .s0`` ...), so both themes
apply, and the viewBox scales the drawing to the width it gets (360 px phones included)."""

from __future__ import annotations

from itertools import count

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 180
RIGHT, TOP, BOTTOM = 10, 14, 28
_ids = count()


def short(value: float, unit: str = "") -> str:
    """1234567 -> "1.2M" (bytes: "1.2 MB"), for axis labels and titles."""
    suffix = " B" if unit == "bytes" else ""
    for factor, name in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{' ' if unit == 'bytes' else ''}{name}{'B' if unit == 'bytes' else ''}"
    if value == int(value) or abs(value) >= 10:
        return f"{value:.0f}{suffix}"
    return f"{value:.2f}".rstrip("0").rstrip(".") + suffix


def line_chart(title: str, labels: list[str], lines: dict[str, list[float]], unit: str = "",
               css: tuple[str, ...] = ("s0", "s1", "s2", "s3"), width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Lines over ``labels`` (x, oldest first); ``lines`` maps a name to one value per label. A
    smaller ``width``/``height`` draws a smaller picture with text of the same size."""
    uid = f"chart-{next(_ids)}"
    peak = max((v for values in lines.values() for v in values), default=0.0)
    top = peak if peak > 0 else 1.0
    ticks = (0, 0.5, 1) if peak > 0 else (0,)
    left = 14 + 9 * max(len(short(top * f if peak > 0 else 0, unit)) for f in ticks)  # room for the y labels
    plot_w, plot_h = width - left - RIGHT, height - TOP - BOTTOM
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    totals = ", ".join(f"{name} {short(sum(vs), unit)} in all, at most {short(max(vs, default=0), unit)}"
                       for name, vs in lines.items())
    words = f"{title}: {totals}" if n else f"{title}: no figures yet"
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{uid}" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="{uid}">{escape(words)}</title>']
    for frac in ticks:
        gy = TOP + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
                     f'<text class="axis" x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
                     f'{escape(short(top * frac if peak > 0 else 0, unit))}</text>')
    if n:
        parts.append(f'<text class="axis" x="{left}" y="{height - 6}">{escape(labels[0])}</text>')
        if n > 1:
            parts.append(f'<text class="axis" x="{width - RIGHT}" y="{height - 6}" text-anchor="end">'
                         f'{escape(labels[-1])}</text>')
    for index, values in enumerate(lines.values()):
        cls = css[index % len(css)]
        if n == 1:
            parts.append(f'<circle class="dot {cls}" cx="{x(0):.1f}" cy="{y(values[0]):.1f}" r="3"/>')
        elif n > 1:
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
            parts.append(f'<polyline class="line {cls}" points="{points}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, rows: list[tuple[str, float]], unit: str = "") -> Markup:
    """Horizontal bars, largest first: each name above its bar."""
    uid = f"chart-{next(_ids)}"
    row_h = 40
    height = max(row_h * len(rows), row_h) + 4
    peak = max((v for _, v in rows), default=0.0) or 1.0
    words = f"{title}: " + (", ".join(f"{name} {short(v, unit)}" for name, v in rows[:5]) or "no figures yet")
    if len(rows) > 5:
        words += f" and {len(rows) - 5} more"
    parts = [f'<svg class="chart bars" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{uid}" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="{uid}">{escape(words)}</title>']
    for i, (name, value) in enumerate(rows):
        top = i * row_h + 2
        width = max((WIDTH - 90) * value / peak, 1)
        parts.append(f'<text class="label" x="0" y="{top + 14}">{escape(name)}</text>'
                     f'<rect class="bar s0" x="0" y="{top + 21}" width="{width:.1f}" height="12" rx="2"/>'
                     f'<text class="axis" x="{width + 6:.1f}" y="{top + 32}">{escape(short(value, unit))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
