"""The confident-learning rule of the data-quality check on probabilities worked by hand."""

from __future__ import annotations

import numpy as np

from modelplane.validator.checks.data_quality import confident_mislabels

# Two classes; class thresholds are the mean probability of a class among the rows
# labeled with it: class 0 = mean(0.9, 0.8, 0.1, 0.5) = 0.575, class 1 = mean(0.8, 0.7,
# 0.3) = 0.6.
GIVEN = np.array([0, 0, 0, 1, 1, 1, 0])
P1 = np.array([0.1, 0.2, 0.9, 0.8, 0.7, 0.3, 0.5])
PROBA = np.column_stack([1 - P1, P1])


def test_a_row_is_flagged_when_another_class_is_confident_and_leads_by_the_margin() -> None:
    # row 2: labeled 0, class 1 at 0.9 clears 0.6 and leads by 0.8;
    # row 5: labeled 1, class 0 at 0.7 clears 0.575 but leads by only 0.4
    flagged, _ = confident_mislabels(PROBA, GIVEN, 0.5)
    assert flagged.tolist() == [2]
    flagged, _ = confident_mislabels(PROBA, GIVEN, 0.35)
    assert flagged.tolist() == [2, 5]


def test_a_row_with_no_confident_class_is_never_flagged() -> None:
    # row 6 (0.5 / 0.5) clears neither threshold: no confident class, whatever the margin
    flagged, best = confident_mislabels(PROBA, GIVEN, -1.0)
    assert best.tolist() == [0, 0, 1, 1, 1, 0, -1]
    assert flagged.tolist() == [2, 5]
