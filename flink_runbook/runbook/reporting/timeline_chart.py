"""The incident as a picture: each recovery step as a bar from the fault on, the milestones as lines (pure).

matplotlib (Agg, SVG): the chart is embedded in the Markdown report as a data: URI, which the Prefect
UI shows as an image; no file and no server is needed to see it. matplotlib is optional (the `chart` extra):
without it the report says so in a sentence and keeps its table.
"""

from __future__ import annotations

import base64
import io

from flink_runbook.runbook.model import RecoveryResult, StepStatus

# Colour per step result; tests look for DONE_COLOUR in a screenshot of the report.
DONE_COLOUR = "#2f855a"
STATUS_COLOURS = {StepStatus.DONE: DONE_COLOUR, StepStatus.FAILED: "#c53030", StepStatus.SKIPPED: "#a0aec0"}
MILESTONE_COLOUR = "#2b6cb0"
NO_MATPLOTLIB = (
    "No timeline chart: matplotlib is not installed where this ran (pip install 'flink-runbook[chart]'); "
    "the table below has every step."
)


# A light card with dark text, whatever the page around it: readable on the Prefect UI's dark theme and its
# light one (a transparent chart would put dark text on a dark page).
CARD, CARD_EDGE, INK, GRID = "#ffffff", "#cbd5e0", "#1a202c", "#a0aec0"
MILESTONE_GID = "milestone"  # each milestone's label carries it (tests measure that none overlaps another)
# The layout in inches: the horizontal margins are set first (the left one as wide as the step names), so a
# label's width in seconds is known before the height is.
WIDTH_IN, RIGHT_IN = 10.0, 0.35
TITLE_IN, AXIS_IN, STEP_IN, LANE_IN = 0.45, 0.55, 0.42, 0.24
LABEL_GAP_PX = 6  # between two labels in one lane


class ChartUnavailable(RuntimeError):
    pass


def timeline_svg(result: RecoveryResult) -> str | None:
    """An SVG Gantt chart of the recovery, seconds from the first sign of the fault; None when nothing ran.
    Raises ChartUnavailable without matplotlib."""
    steps = [a for a in result.actions if a.started_s is not None]
    if not steps:
        return None
    try:
        import matplotlib
    except ImportError:
        raise ChartUnavailable(NO_MATPLOTLIB) from None

    matplotlib.use("Agg")  # no display: the chart is a file's content
    from matplotlib.figure import Figure

    figure = draw_timeline(Figure(), result)
    out = io.StringIO()
    figure.savefig(out, format="svg", facecolor=CARD, edgecolor=CARD_EDGE)
    return out.getvalue()


def draw_timeline(figure, result: RecoveryResult):
    """Draw the chart on an empty matplotlib Figure (given back): steps as bars, milestones as lines whose labels
    sit in lanes above the bars (a label goes to the first lane where it overlaps no other). At least one step
    must have started."""
    steps = [a for a in result.actions if a.started_s is not None]
    zero = result.fault_at_s if result.fault_at_s is not None else min(a.started_s for a in steps)
    ends = [a.started_s - zero + (a.duration_s or 0) for a in steps] + [m.at_s - zero for m in result.milestones]
    low, high = min(0.0, *ends) - 0.5, max(ends) * 1.12 + 1  # room for the last "took" label
    rows = len(steps)
    figure.set_size_inches(WIDTH_IN, 1.0)  # the height follows from the lanes the labels need
    figure.set_dpi(100)
    figure.patch.set(facecolor=CARD, edgecolor=CARD_EDGE, linewidth=1)
    axes = figure.add_axes((0, 0, 1, 1))
    lanes_axes = figure.add_axes((0, 0, 1, 1), sharex=axes)
    axes.set_xlim(low, high)
    for row, step in enumerate(steps):
        start, took = step.started_s - zero, max(step.duration_s or 0.0, 0.05)
        axes.barh(row, took, left=start, height=0.6, color=STATUS_COLOURS.get(step.status, "#718096"))
        axes.text(start + took, row, f" {took:.1f}s", va="center", fontsize=8, color=INK)
    axes.set_yticks(range(rows), [f"{a.action} {a.target}"[:64] for a in steps], fontsize=8, color=INK)
    axes.set_ylim(rows - 0.4, -0.6)
    axes.set_xlabel("seconds from the first sign of the fault" if result.fault_at_s else "seconds", color=INK)
    axes.tick_params(colors=INK)
    axes.grid(axis="x", alpha=0.4, color=GRID)
    names_in = max(label.get_window_extent().width for label in axes.get_yticklabels()) / figure.dpi
    left = (names_in + 0.3) / WIDTH_IN
    for each in (axes, lanes_axes):
        each.set_position((left, 0, 1 - left - RIGHT_IN / WIDTH_IN, 1))
    lanes = _milestone_labels(lanes_axes, [(m.name, m.at_s - zero) for m in result.milestones], high)
    for milestone in result.milestones:
        for each in (axes, lanes_axes):
            each.axvline(milestone.at_s - zero, color=MILESTONE_COLOUR, linestyle="--", linewidth=1)
    lanes_axes.set_ylim(lanes - 0.5, -0.5)
    lanes_axes.axis("off")
    _place_vertically(figure, axes, lanes_axes, rows, lanes, left)
    title = f"Recovery of {result.cluster}: {result.status}"
    if result.mttr_s is not None:
        title += f", MTTR {result.mttr_s:.1f}s"
    figure.text(left, 1 - 0.3 / figure.get_figheight(), title, fontsize=10, color=INK, va="baseline")
    return figure


def _milestone_labels(lanes_axes, milestones: list[tuple[str, float]], high: float) -> int:
    """Write each label in the first lane where it overlaps none already there; the number of lanes used."""
    to_px = lanes_axes.transData.transform
    axes_right = to_px((high, 0))[0]
    taken: list[list[tuple[float, float]]] = []  # per lane: the labels' extents in pixels, left to right
    for name, at in sorted(milestones, key=lambda m: m[1]):
        label = lanes_axes.text(at, 0, f" {name} ({at:+.1f}s) ", fontsize=7, color=MILESTONE_COLOUR, va="center",
                                gid=MILESTONE_GID, clip_on=False)
        width = label.get_window_extent().width
        line = to_px((at, 0))[0]
        if line + width > axes_right and line - width >= 0:  # no room on the right: it ends at its line
            label.set_horizontalalignment("right")
            extent = (line - width, line)
        else:
            extent = (line, line + width)
        lane = next((i for i, used in enumerate(taken) if all(
            extent[0] >= right + LABEL_GAP_PX or extent[1] + LABEL_GAP_PX <= left for left, right in used
        )), len(taken))
        if lane == len(taken):
            taken.append([])
        taken[lane].append(extent)
        label.set_y(lane)
        label.set_bbox({"facecolor": CARD, "edgecolor": "none", "pad": 0.5})  # over the other lines, readable
    return max(1, len(taken))


def _place_vertically(figure, axes, lanes_axes, rows: int, lanes: int, left: float) -> None:
    steps_in, lanes_in = STEP_IN * rows + 0.2, LANE_IN * lanes + 0.05
    height = TITLE_IN + lanes_in + steps_in + AXIS_IN
    figure.set_figheight(height)
    width = 1 - left - RIGHT_IN / WIDTH_IN
    axes.set_position((left, AXIS_IN / height, width, steps_in / height))
    lanes_axes.set_position((left, (AXIS_IN + steps_in) / height, width, lanes_in / height))


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def report_chart(result: RecoveryResult) -> tuple[str | None, str | None]:
    """For recovery_report: (the chart as an image URI, None), or (None, why it is left out)."""
    try:
        svg = timeline_svg(result)
    except ChartUnavailable as exc:
        return None, str(exc)
    return (svg_data_uri(svg) if svg else None), None
