"""Plotly figures of a run's curves; plain functions, no Streamlit."""

import pandas as pd
import plotly.graph_objects as go

# Same colours for train and val in every chart, so the two charts read together.
TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"


def curves_figure(epochs: pd.DataFrame, metric: str) -> go.Figure:
    """Train vs val of one metric ("loss" or "accuracy") by epoch, from `finished_epochs`."""
    column = {"loss": "loss", "accuracy": "acc"}[metric]
    figure = go.Figure()
    for split, colour in (("train", TRAIN_COLOUR), ("val", VAL_COLOUR)):
        figure.add_trace(go.Scatter(
            x=epochs["epoch"], y=epochs[f"{split}_{column}"], name=split,
            mode="lines+markers", line={"color": colour},
        ))
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
