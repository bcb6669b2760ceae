"""The run detail page's registry box (the run's aliases, promote and demote with a reason, its
registry history) and its model card, for completed runs."""

from typing import Any

import pandas as pd
import streamlit as st

from services.dashboard import api_client, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from shared.schemas.registry import ALIASES, MAX_REASON_LENGTH

# A change just made, shown once after the rerun that shows its effect.
CHANGED = "registry.changed"
ALIAS_ICONS = {"candidate": "🧪", "production": "🚀"}


def run_dataset(run: dict[str, Any]) -> str | None:
    """The dataset the run's aliases belong to: its spec's, an ensemble's from its summary."""
    return (run.get("spec") or {}).get("dataset") or (run.get("summary") or {}).get("dataset")


def alias_badges(aliases: list[str]) -> str:
    return " ".join(f"{ALIAS_ICONS.get(alias, '🏷️')} **{alias}**" for alias in aliases) or "no alias"


def history_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Promotions and demotions as a table, newest first."""
    return pd.DataFrame(
        [
            {
                "when (UTC)": pd.Timestamp(entry["at"]).strftime("%Y-%m-%d %H:%M"),
                "action": entry["action"],
                "alias": entry["alias"],
                "run": entry["run_id"],
                "replaced": entry.get("previous_run_id") or "",
                "by": entry["by"],
                "reason": entry["reason"],
            }
            for entry in entries
        ],
        columns=["when (UTC)", "action", "alias", "run", "replaced", "by", "reason"],
    )


def _changed(message: str) -> None:
    """After a write: forget what the page read, show the change once, render again."""
    for cached in (
        api_client.get_run,
        api_client.registry,
        api_client.registry_history,
        api_client.model_card_markdown,
    ):
        cached.clear()
    for reason in ("registry.promote_reason", "registry.demote_reason"):
        st.session_state.pop(reason, None)
    st.session_state[CHANGED] = message
    st.rerun()


def registry_box(run: dict[str, Any], api_url: str) -> None:
    """The run's aliases, a promote form (alias, reason) and a demote form for each alias it holds."""
    st.subheader("Registry")
    dataset = run_dataset(run)
    aliases = run.get("aliases") or []
    st.markdown(f"This run holds {alias_badges(aliases)} of dataset `{dataset}`.")
    if note := st.session_state.pop(CHANGED, None):
        st.success(note)
    promote_column, demote_column = st.columns(2)
    with promote_column.form("registry.promote_form"):
        alias = st.selectbox("Alias", ALIASES, key="registry.promote_alias", help="production: the model in use")
        reason = st.text_input(
            "Reason", key="registry.promote_reason", max_chars=MAX_REASON_LENGTH, placeholder="why this run"
        )
        promote = st.form_submit_button("Promote", key="registry.promote", icon="⬆️", type="primary")
    if promote:
        if not reason.strip():
            promote_column.error("Give a reason: it is kept in the registry's history.")
        else:
            try:
                change = api_client.promote(api_url, run["run_id"], alias or ALIASES[0], reason)
            except (ApiUnavailable, ApiError) as error:
                with promote_column:
                    ui.show_write_problem(error)
            else:
                replaced = f", replacing run {change['previous_run_id']}" if change.get("previous_run_id") else ""
                _changed(f"Promoted to {change['alias']} of {change['dataset']}{replaced}.")
    if aliases and dataset:
        with demote_column.form("registry.demote_form"):
            held = st.selectbox("Alias held", aliases, key="registry.demote_alias")
            why = st.text_input(
                "Reason", key="registry.demote_reason", max_chars=MAX_REASON_LENGTH, placeholder="why it steps down"
            )
            demote = st.form_submit_button("Demote", key="registry.demote", icon="⬇️")
        if demote:
            if not why.strip():
                demote_column.error("Give a reason: it is kept in the registry's history.")
            else:
                try:
                    api_client.demote(api_url, dataset, held or aliases[0], why)
                except (ApiUnavailable, ApiError) as error:
                    with demote_column:
                        ui.show_write_problem(error)
                else:
                    _changed(f"Demoted from {held} of {dataset}.")
    history = api_client.registry_history(api_url, run_id=run["run_id"])
    if history["data"]:
        st.caption("This run in the registry's history (newest first):")
        st.dataframe(history_frame(history["data"]), hide_index=True, width="stretch", key="registry.history")


def model_card(run: dict[str, Any], api_url: str) -> None:
    """The run's model card, as the API renders it in Markdown."""
    with st.expander("Model card"):
        st.markdown(api_client.model_card_markdown(api_url, run["run_id"]))
