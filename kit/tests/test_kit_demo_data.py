"""The one demo data generator: one seed gives one data set whatever hour it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from modelplane.kit.demo_data import LOCAL_HOUR_AT_END, history


def test_the_values_do_not_depend_on_the_hour_the_history_ends() -> None:
    night = history(40, 10, seed=3, end=datetime(2026, 3, 1, 3, tzinfo=UTC))
    afternoon = history(40, 10, seed=3, end=datetime(2026, 3, 1, 14, tzinfo=UTC))
    shift = timedelta(hours=11)
    for a, b in ((night.transactions, afternoon.transactions),
                 (night.customer_profile, afternoon.customer_profile),
                 (night.customer_activity, afternoon.customer_activity)):
        pd.testing.assert_frame_equal(a.drop(columns="event_timestamp"),
                                      b.drop(columns="event_timestamp"))
        assert ((b["event_timestamp"] - a["event_timestamp"]) == shift).all()
    last = night.transactions["event_timestamp"].idxmax()
    assert night.transactions.loc[last, "hour"] == LOCAL_HOUR_AT_END - 1  # its last hour


def test_activity_counts_and_night_share_over_seven_days() -> None:
    h = history(5, 20, seed=1, end=datetime(2026, 3, 1, tzinfo=UTC))
    tx = h.transactions
    row = h.customer_activity.iloc[-1]
    window = tx[(tx["customer_id"] == row["customer_id"])
                & (tx["event_timestamp"] > row["event_timestamp"] - timedelta(days=7))
                & (tx["event_timestamp"] <= row["event_timestamp"])]
    assert row["txn_count_7d"] == len(window)
    assert row["max_amount_7d"] == window["amount"].max()
    night = ((window["hour"] < 6) | (window["hour"] > 22)).mean()
    assert abs(row["night_share_7d"] - night) < 1e-12
    homes = dict(zip(h.customers.ids.tolist(), h.customers.home_city.tolist()))
    profile = h.customer_profile
    assert profile["home_city"].tolist() == [homes[c] for c in profile["customer_id"]]
