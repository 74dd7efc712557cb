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

    zero = result.fault_at_s if result.fault_at_s is not None else min(a.started_s for a in steps)
    rows = len(steps)
    figure = Figure(figsize=(10, 1.6 + 0.42 * rows), dpi=100)
    axes = figure.subplots()
    for row, step in enumerate(steps):
        start, took = step.started_s - zero, max(step.duration_s or 0.0, 0.05)
        axes.barh(row, took, left=start, height=0.6, color=STATUS_COLOURS.get(step.status, "#718096"))
        axes.text(start + took, row, f" {took:.1f}s", va="center", fontsize=8)
    axes.set_yticks(range(rows), [f"{a.action} {a.target}"[:48] for a in steps], fontsize=8)
    axes.invert_yaxis()
    for milestone in result.milestones:
        at = milestone.at_s - zero
        axes.axvline(at, color=MILESTONE_COLOUR, linestyle="--", linewidth=1)
        axes.text(at, -0.75, f" {milestone.name} ({at:+.1f}s)", rotation=20, fontsize=7, color=MILESTONE_COLOUR,
                  va="bottom", clip_on=False)
    ends = [a.started_s - zero + (a.duration_s or 0) for a in steps] + [m.at_s - zero for m in result.milestones]
    axes.set_xlim(min(0.0, *ends) - 0.5, max(ends) * 1.25 + 1)  # room for the last labels
    axes.set_xlabel("seconds from the first sign of the fault" if result.fault_at_s else "seconds")
    axes.set_ylim(rows - 0.4, -0.6 - 0.5 * max(1, len(result.milestones) ** 0.5))
    axes.grid(axis="x", alpha=0.3)
    title = f"Recovery of {result.cluster}: {result.status}"
    if result.mttr_s is not None:
        title += f", MTTR {result.mttr_s:.1f}s"
    axes.set_title(title, fontsize=10, loc="left", pad=38)
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg")
    return out.getvalue()


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def report_chart(result: RecoveryResult) -> tuple[str | None, str | None]:
    """For recovery_report: (the chart as an image URI, None), or (None, why it is left out)."""
    try:
        svg = timeline_svg(result)
    except ChartUnavailable as exc:
        return None, str(exc)
    return (svg_data_uri(svg) if svg else None), None
