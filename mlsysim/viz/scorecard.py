"""The scorecard of :class:`~mlsysim.evaluation.SystemEvaluator` as a table figure.
matplotlib is imported here only, when a plot is made."""

from __future__ import annotations

__all__ = ["plot_evaluation_scorecard"]

#: cell colours by verdict: passed, failed, informational / not assessed
COLORS = {True: "#cdebc5", False: "#f4c7c3", None: "#ececec"}


def plot_evaluation_scorecard(scorecard, *, ax=None, title: str | None = None):
    """One table row per axis of ``scorecard`` (a :class:`~mlsysim.evaluation.Scorecard`):
    axis, metric, value and verdict, coloured green (pass), red (fail) or grey (informational
    or not assessed). Returns ``(fig, ax)``; the table is ``ax.tables[0]``."""
    import matplotlib.pyplot as plt

    from ..errors import ValidationError

    rows = getattr(scorecard, "rows", None)
    if not rows:
        raise ValidationError("scorecard", f"must be a Scorecard (SystemEvaluator().solve). "
                              f"Got {type(scorecard).__name__} instead.",
                              owner="plot_evaluation_scorecard")
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * (len(rows) + 1)))
    else:
        fig = ax.figure
    ax.axis("off")
    text = [[r.axis, r.metric, r.value_text(), _short(r.verdict)] for r in rows]
    colors = [[COLORS[r.passed]] * 4 for r in rows]
    table = ax.table(cellText=text, cellColours=colors,
                     colLabels=["axis", "metric", "value", "verdict"],
                     colColours=["#d9d9d9"] * 4, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(list(range(4)))
    table.scale(1, 1.4)
    ax.set_title(title or f"Scorecard: {getattr(scorecard, 'name', '')}", loc="left")
    return fig, ax


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."
