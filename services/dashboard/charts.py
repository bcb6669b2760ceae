"""Plotly figures of a run's curves; plain functions, no Streamlit."""

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sequential

# Same colours for train and val in every chart, so the two charts read together.
TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
# A search's trials by state, the same in each of its charts: pruned runs recede in grey.
PRUNED_GREY = "#b8b8b8"
TRIAL_COLOURS = {"completed": VAL_COLOUR, "running": TRAIN_COLOUR, "pruned": PRUNED_GREY, "failed": "#d62728"}
BEST_COLOUR = "#2ca02c"
# Parallel coordinates colour completed trials on this scale by how good their value is; the
# bottom of the scale, below every completed trial, is grey for the others.
SCORED_FROM = 0.1


def curves_figure(epochs: pd.DataFrame, metric: str) -> go.Figure:
    """Train vs val of one metric ("loss" or "accuracy") by epoch, from `finished_epochs`."""
    column = {"loss": "loss", "accuracy": "acc"}[metric]
    figure = go.Figure()
    for split, colour in (("train", TRAIN_COLOUR), ("val", VAL_COLOUR)):
        figure.add_trace(
            go.Scatter(
                x=epochs["epoch"],
                y=epochs[f"{split}_{column}"],
                name=split,
                mode="lines+markers",
                line={"color": colour},
            )
        )
    figure.update_layout(
        title=metric.capitalize(),
        hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        margin={"t": 60, "b": 40, "l": 10, "r": 10},
        height=360,
    )
    # Epochs are whole numbers; accuracies are fractions, read as percentages.
    figure.update_xaxes(title_text="epoch", tickformat="d", rangemode="tozero" if epochs.empty else "normal")
    figure.update_yaxes(title_text=metric, tickformat=".0%" if metric == "accuracy" else None)
    return figure


def _layout(figure: go.Figure, title: str, height: int = 360) -> go.Figure:
    figure.update_layout(
        title=title,
        height=height,
        margin={"t": 60, "b": 40, "l": 10, "r": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
    )
    return figure


def epoch_time_figure(epochs: pd.DataFrame) -> go.Figure:
    """Seconds each finished epoch took, by epoch (from `finished_epochs` plus epoch_time_sec)."""
    figure = go.Figure(
        go.Bar(
            x=epochs["epoch"],
            y=epochs["epoch_time_sec"],
            name="epoch time",
            marker={"color": TRAIN_COLOUR},
            hovertemplate="epoch %{x}: %{y:.1f} s<extra></extra>",
        )
    )
    _layout(figure, "Epoch time", height=300)
    figure.update_xaxes(title_text="epoch", tickformat="d")
    figure.update_yaxes(title_text="time per epoch (s)")
    return figure


def confusion_figure(matrix: list[list[int]], class_names: list[str]) -> go.Figure:
    """Test-split confusion matrix: rows the true class, columns the predicted one, counts in cells."""
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=class_names,
            y=class_names,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z} images<extra></extra>",
            colorbar={"title": {"text": "images"}},
        )
    )
    _layout(figure, "Confusion matrix (test split)", height=380)
    figure.update_xaxes(title_text="predicted class", side="bottom")
    figure.update_yaxes(title_text="true class", autorange="reversed")
    return figure


def per_class_figure(per_class: pd.DataFrame) -> go.Figure:
    """Precision, recall and F1 per class (from `detail.per_class_frame`), grouped bars."""
    figure = go.Figure(
        [
            go.Bar(x=per_class["class"], y=per_class[score], name=score, hovertemplate="%{x}: %{y:.1%}<extra></extra>")
            for score in ("precision", "recall", "f1")
        ]
    )
    _layout(figure, "Per-class scores (test split)", height=380)
    figure.update_layout(barmode="group")
    figure.update_xaxes(title_text="class")
    figure.update_yaxes(title_text="score", tickformat=".0%", range=[0, 1.05])
    return figure


def overlay_figure(overlay: pd.DataFrame, column: str) -> go.Figure:
    """One curve per run of one epoch metric (`comparison.overlay_frame`), lined up by epoch."""
    split, metric = column.split("_")
    label = {"loss": "loss", "acc": "accuracy"}[metric]
    figure = go.Figure(
        [
            go.Scatter(x=group["epoch"], y=group[column], name=run, mode="lines+markers")
            for run, group in overlay.groupby("run", sort=False)
        ]
    )
    _layout(figure, f"{split.capitalize()} {label}", height=420)
    # Run labels are long: the legend goes under the plot, where it cannot cover the title.
    figure.update_layout(
        hovermode="x unified",
        margin={"t": 50, "b": 10, "l": 10, "r": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0.0},
    )
    figure.update_xaxes(title_text="epoch", tickformat="d")
    figure.update_yaxes(title_text=f"{split} {label}", tickformat=".0%" if metric == "acc" else None)
    return figure


def runs_by_model_figure(frame: pd.DataFrame, x: str, y: str, hover: str) -> go.Figure:
    """A point per run (x against y), a trace per model; the hover names the run, then `hover`."""
    return go.Figure(
        [
            go.Scatter(
                x=group[x],
                y=group[y],
                name=model,
                mode="markers",
                marker={"size": 10},
                customdata=group[["run_id", "version"]],
                hovertemplate=f"run %{{customdata[0]}} (%{{customdata[1]}})<br>{hover}<extra></extra>",
            )
            for model, group in frame.groupby("model", sort=True)
        ]
    )


def hyperparameter_figure(
    frame: pd.DataFrame, parameter: str, metric: str, metric_label: str, percent: bool
) -> go.Figure:
    """A metric against one hyperparameter, a point per run, coloured by model."""
    figure = runs_by_model_figure(frame, parameter, metric, f"{parameter} %{{x}}<br>{metric_label} %{{y}}")
    _layout(figure, f"{metric_label} by {parameter.replace('_', ' ')}")
    figure.update_xaxes(title_text=parameter.replace("_", " "))
    if parameter in ("learning_rate", "weight_decay"):
        # Ticks at the values tried: a log axis over less than a decade labels stray digits.
        tried = sorted(frame[parameter].unique())
        figure.update_xaxes(type="log", tickvals=tried, ticktext=[f"{value:g}" for value in tried])
    figure.update_yaxes(title_text=metric_label, tickformat=".0%" if percent else None)
    return figure


def parallel_figure(frame: pd.DataFrame, varying: list[str], metric: str, metric_label: str) -> go.Figure:
    """A sweep's runs as lines across its varying hyperparameters and the metric, coloured by it."""
    completed = frame.dropna(subset=[metric])
    dimensions = []
    for name in varying:
        values = completed[name]
        if values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all():
            dimensions.append({"label": name.replace("_", " "), "values": values.astype(float)})
        else:  # categories (model names, booleans) sit at whole-number positions, named
            labels = sorted(values.astype(str).unique())
            dimensions.append(
                {
                    "label": name.replace("_", " "),
                    "values": values.astype(str).map(labels.index),
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
    dimensions.append({"label": metric_label, "values": completed[metric]})
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": completed[metric],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": metric_label}},
            },
            dimensions=dimensions,
        )
    )
    _layout(figure, f"Sweep: {metric_label} by hyperparameters", height=420)
    figure.update_layout(margin={"t": 90, "b": 30, "l": 60, "r": 60})
    return figure


def probabilities_figure(probabilities: dict[str, float]) -> go.Figure:
    """A prediction's class probabilities, most likely on top."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1])
    figure = go.Figure(
        go.Bar(
            x=[p for _, p in ranked],
            y=[name for name, _ in ranked],
            orientation="h",
            marker={"color": VAL_COLOUR},
            text=[f"{p:.1%}" for _, p in ranked],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    _layout(figure, "Class probabilities", height=120 + 50 * len(ranked))
    figure.update_xaxes(title_text="probability", tickformat=".0%", range=[0, 1])
    figure.update_yaxes(title_text="class")
    return figure


def runs_over_time_figure(frame: pd.DataFrame, metric: str, metric_label: str) -> go.Figure:
    """Completed runs by start time against a metric, coloured by model (`comparison.runs_table`)."""
    figure = runs_by_model_figure(
        frame.dropna(subset=[metric]), "start_time", metric, f"%{{x}}<br>{metric_label} %{{y}}"
    )
    _layout(figure, f"{metric_label} by start time")
    figure.update_xaxes(title_text="start time (UTC)")
    figure.update_yaxes(title_text=metric_label, tickformat=".0%" if "accuracy" in metric or "f1" in metric else None)
    return figure


def test_accuracy_figure(frame: pd.DataFrame) -> go.Figure:
    """Each run's test accuracy with its Wilson 95 % interval as an error bar
    (`uncertainty.test_accuracy_frame`): overlapping bars warn that a gap may be chance."""
    figure = go.Figure(
        go.Scatter(
            x=frame["run"],
            y=frame["test_accuracy"],
            mode="markers",
            marker={"size": 12, "color": VAL_COLOUR},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": frame["high"] - frame["test_accuracy"],
                "arrayminus": frame["test_accuracy"] - frame["low"],
                "thickness": 2,
                "width": 8,
            },
            customdata=frame[["low", "high", "test_images"]],
            hovertemplate="%{x}<br>test accuracy %{y:.1%}<br>95 % interval %{customdata[0]:.1%}–%{customdata[1]:.1%}"
            "<br>%{customdata[2]} test images<extra></extra>",
        )
    )
    _layout(figure, "Test accuracy with 95 % intervals", height=380)
    figure.update_xaxes(title_text="run")
    figure.update_yaxes(title_text="test accuracy", tickformat=".0%")
    return figure


# Trials and epochs are whole numbers: up to this many, a tick on each one.
WHOLE_TICKS = 20
# Trial values closer than this are drawn on an axis this far either side of them.
FLAT_SPREAD = 0.01


def _metric_axis(figure: go.Figure, metric_label: str, percent: bool) -> None:
    """A search's values often lie within a point or two: percentages keep one decimal."""
    figure.update_yaxes(title_text=metric_label, tickformat=".1%" if percent else None)


def _whole_axis(figure: go.Figure, title: str, largest: float) -> None:
    """An x axis of whole numbers: no tick between two of them, each labelled once."""
    figure.update_xaxes(title_text=title, tickformat="d", dtick=1 if largest <= WHOLE_TICKS else None)


def _value_format(percent: bool) -> str:
    return ":.1%" if percent else ":.4f"


def optimisation_history_figure(history: pd.DataFrame, metric_label: str, percent: bool) -> go.Figure:
    """Each trial's value by trial number, a colour per state (pruned grey), and the best value
    of the completed trials so far as a step line (`sweep_views.history_frame`)."""
    value = _value_format(percent)
    figure = go.Figure()
    for state, colour in TRIAL_COLOURS.items():
        trials = history[(history["state"] == state) & history["value"].notna()]
        if trials.empty:
            continue
        figure.add_trace(
            go.Scatter(
                x=trials["number"],
                y=trials["value"],
                name=state,
                mode="markers",
                marker={"color": colour, "size": 10, "line": {"width": 1, "color": "white"}},
                customdata=trials[["run_id", "epochs"]],
                hovertemplate=f"trial %{{x}} ({state}), run %{{customdata[0]}}<br>{metric_label} %{{y{value}}} "
                "after %{customdata[1]} epochs<extra></extra>",
            )
        )
    best = history.dropna(subset=["best"])
    if not best.empty:
        figure.add_trace(
            go.Scatter(
                x=best["number"],
                y=best["best"],
                name="best so far",
                mode="lines",
                line={"color": BEST_COLOUR, "shape": "hv", "width": 2},
                hovertemplate=f"best after trial %{{x}}: %{{y{value}}}<extra></extra>",
            )
        )
    _layout(figure, "Optimisation history")
    _whole_axis(figure, "trial", history["number"].max() if not history.empty else 0)
    _metric_axis(figure, metric_label, percent)
    values = history["value"].dropna()
    if not values.empty and values.max() - values.min() < FLAT_SPREAD:
        # Every trial scored the same: Plotly would stretch the axis to -50 %–100 %.
        figure.update_yaxes(range=[values.min() - FLAT_SPREAD, values.max() + FLAT_SPREAD])
    return figure


def trial_curves_figure(curves: pd.DataFrame, metric_label: str, percent: bool, best: int | None = None) -> go.Figure:
    """Each trial's metric after each epoch (`sweep_views.intermediate_frame`): what the pruner
    judged. Pruned trials grey, the best trial (its number: `best`) green like the best so far,
    one legend entry per state."""
    value = _value_format(percent)
    figure = go.Figure()
    shown: set[str] = set()
    # Grey lines first and the best last, so the trials that went on are drawn over the others.
    order = sorted(
        curves.groupby("number", sort=True),
        key=lambda item: (item[1]["state"].iloc[0] != "pruned", item[0] == best),
    )
    for number, trial in order:
        state = trial["state"].iloc[0]
        name = f"best (trial {number})" if number == best else state
        figure.add_trace(
            go.Scatter(
                x=trial["epoch"],
                y=trial["value"],
                name=name,
                legendgroup=name,
                showlegend=name not in shown,
                mode="lines+markers",
                line={
                    "color": BEST_COLOUR if number == best else TRIAL_COLOURS.get(state, PRUNED_GREY),
                    "width": 3 if number == best else 2,
                },
                marker={"size": 6},
                hovertemplate=f"trial {number} ({state}), run {trial['run_id'].iloc[0]}<br>"
                f"epoch %{{x}}: %{{y{value}}}<extra></extra>",
            )
        )
        shown.add(name)
    _layout(figure, f"{metric_label.capitalize()} by epoch, per trial")
    _whole_axis(figure, "epoch", curves["epoch"].max() if not curves.empty else 0)
    _metric_axis(figure, metric_label, percent)
    return figure


def trial_colours(frame: pd.DataFrame, lower_is_better: bool) -> list[float]:
    """Where each trial sits on the parallel chart's colour scale: completed ones from
    SCORED_FROM (the worst) to 1 (the best), every other trial at 0 (grey)."""
    completed = frame.loc[frame["state"] == "completed", "value"]
    low, high = (completed.min(), completed.max()) if not completed.empty else (0.0, 0.0)
    colours = []
    for state, value in zip(frame["state"], frame["value"], strict=True):
        if state != "completed":
            colours.append(0.0)
            continue
        goodness = 1.0 if high == low else (value - low) / (high - low)
        colours.append(SCORED_FROM + (1 - SCORED_FROM) * (1 - goodness if lower_is_better else goodness))
    return colours


def trial_colour_scale() -> list[list[Any]]:
    """Grey at 0, Viridis from SCORED_FROM to 1. Plotly draws a parcoords' colours in 256 steps:
    the grey ends well below SCORED_FROM, so the worst completed trial is not drawn grey."""
    colours = sequential.Viridis
    steps = len(colours) - 1
    scored = [[round(SCORED_FROM + (1 - SCORED_FROM) * i / steps, 6), colour] for i, colour in enumerate(colours)]
    return [[0.0, PRUNED_GREY], [SCORED_FROM / 2, PRUNED_GREY], *scored]  # ends at exactly 1, as Plotly needs


def search_parallel_figure(
    frame: pd.DataFrame, axes: list[dict[str, Any]], metric_label: str, percent: bool, lower_is_better: bool
) -> go.Figure:
    """A search's trials as lines across its sampled fields and the value
    (`sweep_views.parallel_dimensions`): completed trials coloured by value (yellow the best),
    pruned, failed and running ones grey."""
    # Grey lines first, so the completed trials are drawn over them.
    order = sorted(range(len(frame)), key=lambda row: frame["state"].iloc[row] == "completed")
    rows = frame.iloc[order]
    dimensions = [
        {
            "label": axis["label"],
            "values": [axis["values"][row] for row in order],
            "range": axis["range"],
            **({"tickvals": axis["tickvals"], "ticktext": axis["ticktext"]} if "tickvals" in axis else {}),
        }
        for axis in axes
    ]
    dimensions.append(
        {"label": metric_label, "values": rows["value"].tolist(), "tickformat": ".1%" if percent else ".3f"}
    )
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": trial_colours(rows, lower_is_better),
                "colorscale": trial_colour_scale(),
                "cmin": 0.0,
                "cmax": 1.0,
                "showscale": False,
            },
            dimensions=dimensions,
        )
    )
    _layout(figure, f"Trials across the search space (colour: {metric_label}; grey: not completed)", height=420)
    figure.update_layout(margin={"t": 90, "b": 30, "l": 60, "r": 60})
    return figure


def importance_figure(importance: pd.DataFrame) -> go.Figure:
    """Each sampled field's importance (`sweep_views.importance_frame`), the most important on top."""
    figure = go.Figure(
        go.Bar(
            x=importance["importance"],
            y=importance["field"].str.replace("_", " "),
            orientation="h",
            marker={"color": TRAIN_COLOUR},
            text=[f"{share:.0%}" for share in importance["importance"]],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    _layout(figure, "Importance of each field", height=140 + 45 * len(importance))
    figure.update_xaxes(title_text="share of the metric's variance", tickformat=".0%", rangemode="tozero")
    figure.update_yaxes(title_text="field", autorange="reversed")
    return figure
