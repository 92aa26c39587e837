"""The dashboard's charts as geometry, for templates to draw as inline SVG.

Drawn on the server, with no script. Colours come from classes in
static/console.css (`bar settled`, `series-2`): the Content Security Policy
(`default-src 'self'`) refuses inline `style` attributes, and SVG
presentation attributes are not needed. Coordinates are in the SVG's own
user units (its viewBox); the browser scales the picture to the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from posgw.protocols.contract import TX_STATUSES

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 24, 10, 24  # margins: room for the axes' labels
HOURS = 24
#: Colour classes a line chart cycles through (console.css .series-N).
SERIES_CLASSES = 6


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: str  # its class, and its name in the tooltip
    hour: int
    count: int


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    day: str
    percent: str


@dataclass(frozen=True, slots=True)
class Line:
    css: str
    name: str
    points: str  # "x,y x,y ...": the polyline's
    dots: list[Dot]


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT


def _plot_height() -> float:
    return HEIGHT - TOP - BOTTOM


def _y(value: float, top_value: float) -> float:
    return round(TOP + _plot_height() * (1 - value / top_value), 1)


def nice_ceiling(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def hourly_bars(counts: Mapping[tuple[int, str], int]) -> Chart:
    """Transactions per UTC hour, stacked by status (TX_STATUSES order)."""
    top = nice_ceiling(max((sum(n for (h, _), n in counts.items() if h == hour)
                            for hour in range(HOURS)), default=0))
    slot = (WIDTH - LEFT - RIGHT) / HOURS
    bars: list[Bar] = []
    for hour in range(HOURS):
        below = 0
        for status in TX_STATUSES:
            count = counts.get((hour, status), 0)
            if count:
                y = _y(below + count, top)
                bars.append(Bar(round(LEFT + hour * slot + 1, 1), y, round(slot - 2, 1),
                                round(_y(below, top) - y, 1), status, hour, count))
                below += count
    x_ticks = [Tick(round(LEFT + (hour + 0.5) * slot, 1), HEIGHT - 6, f"{hour:02d}")
               for hour in range(0, HOURS, 3)]
    return Chart(bars=bars, x_ticks=x_ticks, y_ticks=_y_ticks(top, _count_text))


def _y_ticks(top: float, label: Callable[[float], str]) -> list[Tick]:
    return [Tick(LEFT - 6, _y(value, top), label(value)) for value in (0, top / 2, top)]


def _count_text(value: float) -> str:
    return f"{value:g}"


def freeze_lines(rates: Mapping[tuple[str, str], float], days: Sequence[str],
                 branches: Sequence[str]) -> Chart:
    """The freeze rate (0..1) per branch and day, one line per branch."""
    top = nice_ceiling(max(rates.values(), default=0.0) * 100) / 100
    step = (WIDTH - LEFT - RIGHT) / max(len(days) - 1, 1)
    lines = []
    for index, branch in enumerate(branches):
        dots = [Dot(round(LEFT + i * step, 1), _y(rates.get((day, branch), 0.0), top), day,
                    _percent(rates.get((day, branch), 0.0)))
                for i, day in enumerate(days)]
        lines.append(Line(f"series-{index % SERIES_CLASSES}", branch,
                          " ".join(f"{dot.x},{dot.y}" for dot in dots), dots))
    x_ticks = [Tick(round(LEFT + i * step, 1), HEIGHT - 6, day[5:]) for i, day in enumerate(days)]
    return Chart(lines=lines, x_ticks=x_ticks, y_ticks=_y_ticks(top, _percent))


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f} %"
