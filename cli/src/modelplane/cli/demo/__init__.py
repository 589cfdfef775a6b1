"""``modelplane demo``: a model's whole life on a running platform (see ``command``).

| module | what it does |
|---|---|
| `command.py` | `modelplane demo`: arguments, the platform's health, the JSON summary |
| `story.py` | the eleven stages in order; the decisions are the rollouts' (serving's) |
| `session.py` | the line to the platform: channels, stubs, progress bars, RPC errors, sizes |
| `training.py` | the data scientist's part: scikit-learn models, logged with stock MLflow |
| `features.py` | steps 1-3: featurestore definitions, ingest, materialize, point-in-time Datasets |
| `models.py` | steps 4-7: train, register with lineage, validate, the gated champion |
| `rollouts.py` | steps 8-9, 11: two `Rollout`s driven by rounds of traffic and actuals |
| `traffic.py` | serving: the deployment, live traffic through the gateway |
| `analysis.py` | observability: actuals, performance, drift, root cause, a monitor |
| `report.py` | what is printed: the tables and the URLs to look at |

Its data come from the one generator, ``modelplane.kit.demo_data`` (card
transactions, customer snapshots, live traffic with a shift).

Its dependencies (scikit-learn, the MLflow client, pandas, pyarrow) are the CLI's
``demo`` extra; :func:`missing_modules` says which are absent before anything
imports them, so ``modelplane demo`` can name the extra instead of a traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

EXTRA = "modelplane-cli[demo]"
#: what the demo imports that the CLI does not need without it (import names)
MODULES = ("sklearn", "mlflow", "pandas", "numpy", "pyarrow", "rich")


def missing_modules(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """The demo's modules that are not installed (empty when the extra is)."""
    return [m for m in MODULES if find_spec(m) is None]


def unavailable_message(missing: list[str]) -> str:
    """One line for ``modelplane demo`` without its extra."""
    return (f"`modelplane demo` needs the CLI's demo extra (missing: {', '.join(missing)}): "
            f"pip install '{EXTRA}'")
