"""Rollouts: a challenger's progressive delivery on one deployment, and the rule that decides it.

A :class:`Rollout` names a deployment, a challenger (pinned to a version when the
rollout is created), the alias a promotion moves (``champion``), increasing
:class:`RolloutStep` weights each held for a minimum time and a minimum number of
challenger predictions with an actual, and an :class:`Analysis`.

The decision rule (:func:`decide`) is pure: evidence and a clock in, an action out.

**The sequential test.** Let ``p0`` and ``p1`` be the champion's and the
challenger's accuracy on the predictions with an actual since the rollout
started (both versions, same time window), ``n0`` and ``n1`` their counts,
``d = p1 - p0`` and ``V = p0(1-p0)/n0 + p1(1-p1)/n1`` (the proportions in ``V``
smoothed as ``(x + 0.5)/(n + 1)`` so that it is never 0). The mixture sequential
probability ratio test (mSPRT; Robbins 1970, Johari et al. 2017) of
``H0: delta = -margin`` with a normal mixture ``N(-margin, tau^2)`` over the
alternative has the likelihood ratio

    L = sqrt(V / (V + tau^2)) * exp(tau^2 (d + margin)^2 / (2 V (V + tau^2)))

and, under ``H0``, ``P(L ever reaches 1/alpha) <= alpha`` however often it is
looked at (with the normal approximation of the difference: asymptotically).
The controller looks after every tick; when ``L >= 1/alpha`` and both sides have
``min_labeled`` predictions with an actual:

* ``d > -margin``: non-inferiority is shown; the rollout is promoted if it is at
  its last step and that step's minimums are met, else it keeps going;
* ``d < -margin``: the challenger is worse than the margin: rolled back at once.

So a challenger exactly at the margin is promoted with probability at most
``alpha``; one that is worse is rolled back; with no actuals nothing is decided
and the rollout waits at its last step, saying so (it never promotes on no
data). ``bench/rollout_aa.py`` measures the rates on simulated streams.

**MAE** (a regressor; lower is better). The mSPRT needs only a difference that is
asymptotically normal with a variance that can be estimated, which a difference
of two means of absolute errors is. With ``m0``, ``m1`` the champion's and the
challenger's MAE, ``d = m0 - m1`` (so ``d > 0`` still means the challenger is
better, and the same ``L`` and rule apply) and ``V = s0^2/n0 + s1^2/n1`` with
``s^2`` the variance of the absolute error, ``E[e^2] - E[|e|]^2 = RMSE^2 -
MAE^2``: both come from one ``ComputePerformance`` over the same rows (floored at
a millionth of the error's scale, squared, so that identical errors never divide
by 0). The margin and the mixture scale ``tau`` are in the target's units, any
size ``>= 0`` (the contract's default ``tau`` for MAE is the margin). Slice checks
take the same metric; the proxies' CBPE estimate is a classifier's accuracy and
is refused for MAE (the prediction drift check applies as it is).

**Precision and recall** of one ``positive_class`` are accuracies on a subset:
precision is the share right among the labeled records that predicted the
class, recall the share right among those whose actual is the class. So the
counts are ``Counts(n, right)`` on that subset (observability's accuracy under
a predicate on the prediction or the actual) and the test is accuracy's, with
``n`` the subset's size. The subset's size is itself random; conditional on it
the count right is binomial, which is all the normal approximation needs.

**Per-slice checks.** An analysis may add :class:`SliceCheck` s: a categorical
feature, a margin and a minimum labeled count per value. The same counts are
taken per value of the feature (champion and challenger, same window) and each
value gets the same test against ``delta = -margin``, at level ``alpha / k``
(Bonferroni), ``k`` the number of slice values looked at in this look (every
value of every slice check that either side has records of): its threshold is
``k / alpha``. A value with ``min_labeled`` on both sides whose ratio reaches
that threshold with ``d < -margin`` rolls the rollout back. A slice never
promotes: promotion is the overall check's alone, so slices can only add roll
backs. The union bound makes the chance of any false slice roll back at most
``alpha`` when ``k`` is the number of values the test ever looks at; a value
that first appears after another was already tested at a smaller ``k`` had a
looser level for those looks (in practice every value with ``min_labeled``
actuals has long been seen by then; the bench measures it).

**Proxy checks** (:class:`ProxyCheck`, while actuals are missing) read both
versions' records in the window, with or without an actual: the Jensen-Shannon
distance (base 2) of the challenger's prediction distribution against the
champion's, and optionally the accuracy estimated from scores (CBPE). Once both
sides have ``min_records`` records:

* drift above ``max_prediction_drift`` rolls back. That is a threshold, not a
  sequential test; its false roll backs under repeated looks are controlled by
  the minimum sample: the distance between two samples of one distribution
  shrinks like ``1/sqrt(n)`` as the records accumulate, so the first look at
  ``min_records`` is the likeliest to cross and later ones add little. With the
  defaults (0.1, 500) the simulated A/A rate is quoted in the README
  (``bench/rollout_aa.py``) and is far under alpha for up to 10 classes;
* the estimated accuracies get the quality check's mSPRT against
  ``-estimated_margin`` at ``alpha``, with the binomial variance ``p(1-p)/n``
  (an upper bound of the variance of a mean of per-record probabilities), so it
  is at least as conservative as the test on actuals. It tests the estimates:
  how well scores are calibrated is not sampling error, the margin covers it.

Proxies stand in for actuals: they act only while either side has fewer than
``min_labeled`` predictions with an actual. From then on the quality test on
actuals decides, and a challenger whose predictions differ from the
champion's (which a better model may well do) is judged on its accuracy.

Proxies roll back; with ``advance_without_actuals`` a step whose actuals have
not arrived advances once the challenger made ``min_samples`` predictions in it,
both sides have ``min_records`` and no proxy is against it (drift under its
threshold, the estimate not below the champion's by more than the margin). They
never promote: at the last step the rollout waits for actuals, saying so.

**Operations checks** (:class:`OperationsCheck`) read serving's own outcomes
per version, every replica's (``route_stats``): error rate, fallback rate and
the latency tail. Three tests, each at ``alpha / 3`` (threshold ``3 / alpha``):

* error rate and fallback rate: the mSPRT of the quality check on the share of
  requests that did not fail, against ``-margin``: a challenger shown to fail
  more than the champion by the margin is rolled back;
* latency: the bound is ``champion p99 * factor + slack``. "Challenger p99 above
  the bound" is "more than 1 % of its answered requests slower than it", so the
  test is a one-sample mSPRT of that share against ``H0: 1 %`` (mixture scale
  0.02); shown above, rolled back. The champion's p99 is itself estimated: the
  guarantee holds when the bound is above the champion's true p99, which the
  factor (>= 1, default 1.5) and the slack (default 5 ms) give it.

Until both sides have ``min_requests`` the operations check holds the rollout:
it neither advances nor promotes (a slow challenger is not promoted for lack of
requests). It never promotes. Each family of checks (quality, slices, proxies,
operations) keeps its own false roll back rate under alpha; together they can
add up (a union bound), which the bench measures.

No grpc here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.serving.deployment import ALIAS_PATTERN, NAME_PATTERN, ModelTarget, _check_target

DEFAULT_ALPHA = 0.05
DEFAULT_MIXTURE_SCALE = 0.05
DEFAULT_MIN_LABELED = 100
DEFAULT_CHAMPION_ALIAS = "champion"
MAX_STEPS = 20
DEFAULT_MAX_PREDICTION_DRIFT = 0.1
DEFAULT_MIN_RECORDS = 500
DEFAULT_LATENCY_FACTOR = 1.5
DEFAULT_LATENCY_SLACK_MS = 5.0
DEFAULT_MIN_REQUESTS = 200
#: the latency test's tail: a p99 under the bound means at most 1 % of requests above it
LATENCY_TAIL = 0.01
#: the mixture scale of the latency test's mSPRT (on the share above the bound)
LATENCY_MIXTURE_SCALE = 0.02
#: the operations check runs three tests, each at alpha / 3
OPERATIONS_TESTS = 3
#: latency histogram buckets: 16 per doubling (edges 4.4 % apart), by microseconds
BUCKETS_PER_DOUBLING = 16


class RolloutState(str, Enum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    PROMOTING = "PROMOTING"
    PROMOTED = "PROMOTED"
    ROLLED_BACK = "ROLLED_BACK"
    ABORTED = "ABORTED"
    FAILED = "FAILED"

    @property
    def active(self) -> bool:
        return self in (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.PROMOTING)


class EventType(str, Enum):
    CREATED = "CREATED"
    STEP_STARTED = "STEP_STARTED"
    WAITING = "WAITING"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    PROMOTING = "PROMOTING"
    PROMOTED = "PROMOTED"
    ROLLED_BACK = "ROLLED_BACK"
    ABORTED = "ABORTED"
    FAILED = "FAILED"
    ALERT = "ALERT"


class Action(str, Enum):
    WAIT = "WAIT"
    ADVANCE = "ADVANCE"
    PROMOTE = "PROMOTE"
    ROLL_BACK = "ROLL_BACK"


@dataclass(frozen=True)
class RolloutStep:
    weight: float
    min_duration_seconds: float = 0.0
    min_samples: int = 0


@dataclass(frozen=True)
class SliceCheck:
    """The quality check per value of a categorical feature (roll back only)."""

    feature: str
    margin: float = 0.0
    #: per value and side; 0 = the analysis' min_labeled
    min_labeled: int = 0


@dataclass(frozen=True)
class ProxyCheck:
    """Proxies without actuals (roll back only; may advance steps; never promote)."""

    #: Jensen-Shannon distance of the two versions' predictions that rolls back
    max_prediction_drift: float = DEFAULT_MAX_PREDICTION_DRIFT
    #: records on each side before a proxy may act
    min_records: int = DEFAULT_MIN_RECORDS
    #: also test the accuracy estimated from scores (CBPE)
    estimated_accuracy: bool = False
    estimated_margin: float = 0.0
    #: a step short of actuals advances on predictions when the proxies are clear
    advance_without_actuals: bool = False


@dataclass(frozen=True)
class OperationsCheck:
    """Serving's own outcomes per version (roll back or hold; never promote)."""

    error_rate_margin: float = 0.0
    fallback_rate_margin: float = 0.0
    latency_p99_factor: float = DEFAULT_LATENCY_FACTOR
    latency_p99_slack_ms: float = DEFAULT_LATENCY_SLACK_MS
    min_requests: int = DEFAULT_MIN_REQUESTS


@dataclass(frozen=True)
class Analysis:
    metric: str = "ACCURACY"
    margin: float = 0.0
    alpha: float = DEFAULT_ALPHA
    #: the class PRECISION and RECALL are of ("" for the other metrics)
    positive_class: str = ""
    mixture_scale: float = DEFAULT_MIXTURE_SCALE
    min_labeled: int = DEFAULT_MIN_LABELED
    slices: tuple[SliceCheck, ...] = ()
    proxy: ProxyCheck | None = None
    operations: OperationsCheck | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Analysis:
        d = dict(d)
        d["slices"] = tuple(SliceCheck(**s) for s in d.get("slices", ()))
        d["proxy"] = ProxyCheck(**d["proxy"]) if d.get("proxy") else None
        d["operations"] = OperationsCheck(**d["operations"]) if d.get("operations") else None
        return cls(**d)


@dataclass(frozen=True)
class ProxyStats:
    """What observability says of both versions' records in the window, actuals or not."""

    champion_records: int = 0
    challenger_records: int = 0
    #: Jensen-Shannon distance of the challenger's predictions against the champion's
    prediction_drift: float = 0.0
    #: accuracy estimated from scores (CBPE); None when it could not be estimated
    champion_estimated: float | None = None
    challenger_estimated: float | None = None


@dataclass(frozen=True)
class RouteStats:
    """One version's request outcomes since the rollout started, every replica's."""

    #: requests routed to the version
    requests: int = 0
    #: of those, the caller got an error (the version failed, no fallback answered)
    errors: int = 0
    #: of those, a fallback answered (the version failed)
    fallbacks: int = 0
    #: requests the version answered, by latency bucket (:func:`latency_bucket`)
    latency: tuple[tuple[int, int], ...] = ()

    @property
    def answered(self) -> int:
        return sum(n for _, n in self.latency)


def latency_bucket(microseconds: float) -> int:
    """The histogram bucket of a latency: ``floor(16 log2(us))`` (edges 4.4 % apart)."""
    return math.floor(BUCKETS_PER_DOUBLING * math.log2(max(microseconds, 1.0)))


def bucket_lower_us(bucket: int) -> float:
    return float(2.0 ** (bucket / BUCKETS_PER_DOUBLING))


def latency_quantile_us(hist: tuple[tuple[int, int], ...], q: float) -> float:
    """The upper edge of the bucket holding the ``q`` quantile (rounded up: never low)."""
    total = sum(n for _, n in hist)
    if total == 0:
        return 0.0
    seen = 0
    for b, n in sorted(hist):
        seen += n
        if seen >= q * total:
            return bucket_lower_us(b + 1)
    return bucket_lower_us(max(b for b, _ in hist) + 1)


def count_above_us(hist: tuple[tuple[int, int], ...], bound_us: float) -> int:
    """Requests in buckets wholly above ``bound_us`` (rounded down: never high)."""
    return sum(n for b, n in hist if bucket_lower_us(b) >= bound_us)


#: the quality metrics the rule tests, and whether a larger value is better
METRICS = {"ACCURACY": True, "MAE": False, "PRECISION": True, "RECALL": True}


@dataclass(frozen=True)
class Counts:
    """Predictions with an actual: how many were right (a classifier's accuracy), or
    the mean absolute error and the root mean squared error over them (a
    regressor's), as observability computes them on the same rows."""

    labeled: int = 0
    correct: int = 0
    mae: float = 0.0
    rmse: float = 0.0

    @property
    def value(self) -> float:
        """The accuracy."""
        return self.correct / self.labeled if self.labeled else 0.0

    def metric_value(self, metric: str) -> float:
        return self.mae if metric == "MAE" else self.value


@dataclass(frozen=True)
class SliceEvidence:
    """One value of a slice check's feature at one look."""

    feature: str
    value: str
    champion: Counts
    challenger: Counts
    difference: float = 0.0
    likelihood_ratio: float = 0.0
    #: k / alpha, k the number of slice values looked at
    threshold: float = 0.0


#: per slice check's feature: per value, (champion, challenger) counts
SliceCounts = dict[str, dict[str, tuple[Counts, Counts]]]


@dataclass(frozen=True)
class ProxyEvidence:
    champion_records: int = 0
    challenger_records: int = 0
    prediction_drift: float = 0.0
    drift_threshold: float = 0.0
    estimated: bool = False
    champion_estimated: float = 0.0
    challenger_estimated: float = 0.0
    likelihood_ratio: float = 0.0
    threshold: float = 0.0
    step_records: int = 0


@dataclass(frozen=True)
class OperationsEvidence:
    champion_requests: int = 0
    challenger_requests: int = 0
    champion_error_rate: float = 0.0
    challenger_error_rate: float = 0.0
    error_likelihood_ratio: float = 0.0
    champion_fallback_rate: float = 0.0
    challenger_fallback_rate: float = 0.0
    fallback_likelihood_ratio: float = 0.0
    champion_p99_ms: float = 0.0
    challenger_p99_ms: float = 0.0
    latency_bound_ms: float = 0.0
    challenger_over_bound: float = 0.0
    latency_likelihood_ratio: float = 0.0
    threshold: float = 0.0


@dataclass(frozen=True)
class Evidence:
    time: datetime
    champion: Counts
    challenger: Counts
    difference: float = 0.0
    likelihood_ratio: float = 0.0
    threshold: float = 0.0
    step_labeled: int = 0
    slices: tuple[SliceEvidence, ...] = ()
    proxy: ProxyEvidence | None = None
    operations: OperationsEvidence | None = None
    #: the quality metric of ``champion``, ``challenger`` and the slices' values
    metric: str = "ACCURACY"


@dataclass(frozen=True)
class Rollout:
    name: str
    deployment: str
    challenger: ModelTarget
    steps: tuple[RolloutStep, ...]
    analysis: Analysis = field(default_factory=Analysis)
    champion_alias: str = DEFAULT_CHAMPION_ALIAS
    state: RolloutState = RolloutState.RUNNING
    state_message: str = ""
    current_step: int = 0
    step_start_time: datetime | None = None
    #: the challenger's labeled count when the current step started
    step_start_labeled: int = 0
    #: the challenger's record count (actuals or not) when the current step started
    step_start_records: int = 0
    start_time: datetime | None = None
    challenger_version: str = ""
    champion_version: str = ""
    model: str = ""
    evidence: Evidence | None = None
    #: the kind of the last WAITING event, so a wait is recorded once, not every tick
    wait_kind: str = ""
    #: set by a roll back until observability has the alert: its idempotency key
    alert_key: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None
    revision: int = 0

    @property
    def step(self) -> RolloutStep:
        return self.steps[self.current_step]

    @property
    def last_step(self) -> bool:
        return self.current_step == len(self.steps) - 1

    def challenger_weight(self) -> float:
        if self.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED, RolloutState.FAILED):
            return 0.0
        if self.state is RolloutState.PROMOTED:
            return 100.0
        return self.step.weight

    # --- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("step_start_time", "start_time", "create_time", "update_time"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["state"] = self.state.value
        data["evidence"] = evidence_to_dict(self.evidence)
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rollout:
        ev = d.get("evidence")
        return cls(
            name=d["name"], deployment=d["deployment"], challenger=ModelTarget(**d["challenger"]),
            steps=tuple(RolloutStep(**s) for s in d["steps"]),
            analysis=Analysis.from_dict(d["analysis"]), champion_alias=d["champion_alias"],
            state=RolloutState(d["state"]), state_message=d.get("state_message", ""),
            current_step=int(d["current_step"]),
            step_start_time=_time(d.get("step_start_time")),
            step_start_labeled=int(d.get("step_start_labeled", 0)),
            step_start_records=int(d.get("step_start_records", 0)),
            start_time=_time(d.get("start_time")),
            challenger_version=d.get("challenger_version", ""),
            champion_version=d.get("champion_version", ""), model=d.get("model", ""),
            evidence=evidence_from_dict(ev),
            wait_kind=d.get("wait_kind", ""), alert_key=d.get("alert_key", ""),
            create_time=_time(d.get("create_time")), update_time=_time(d.get("update_time")),
            revision=int(d.get("revision", 0)))


@dataclass(frozen=True)
class RolloutEvent:
    rollout: str
    sequence: int
    time: datetime
    type: EventType
    state: RolloutState
    step: int
    weight: float
    message: str
    actor: str
    evidence: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rollout": self.rollout, "sequence": self.sequence,
                "time": self.time.isoformat(), "type": self.type.value,
                "state": self.state.value, "step": self.step, "weight": self.weight,
                "message": self.message, "actor": self.actor,
                "evidence": evidence_to_dict(self.evidence)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutEvent:
        return cls(d["rollout"], int(d["sequence"]), datetime.fromisoformat(d["time"]),
                   EventType(d["type"]), RolloutState(d["state"]), int(d["step"]),
                   float(d["weight"]), d["message"], d["actor"],
                   evidence_from_dict(d.get("evidence")))


def evidence_to_dict(ev: Evidence | None) -> dict[str, Any] | None:
    if ev is None:
        return None
    data = asdict(ev)
    data["time"] = ev.time.isoformat()
    return data


def evidence_from_dict(ev: dict[str, Any] | None) -> Evidence | None:
    if not ev:
        return None
    return Evidence(datetime.fromisoformat(ev["time"]), Counts(**ev["champion"]),
                    Counts(**ev["challenger"]), ev["difference"], ev["likelihood_ratio"],
                    ev["threshold"], ev["step_labeled"],
                    tuple(SliceEvidence(s["feature"], s["value"], Counts(**s["champion"]),
                                        Counts(**s["challenger"]), s["difference"],
                                        s["likelihood_ratio"], s["threshold"])
                          for s in ev.get("slices", ())),
                    ProxyEvidence(**ev["proxy"]) if ev.get("proxy") else None,
                    OperationsEvidence(**ev["operations"]) if ev.get("operations") else None,
                    ev.get("metric", "ACCURACY"))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- the sequential test ------------------------------------------------------------------
def likelihood_ratio(champion: Counts, challenger: Counts, margin: float,
                     tau: float, metric: str = "ACCURACY") -> tuple[float, float]:
    """``(d, L)``: the difference of the metric, oriented so that ``d > 0`` means the
    challenger is better (accuracy: ``p1 - p0``; MAE: ``MAE0 - MAE1``), and the mSPRT
    mixture likelihood ratio against ``delta = -margin`` (see the module docstring)."""
    if champion.labeled == 0 or challenger.labeled == 0:
        return 0.0, 0.0
    if metric == "MAE":
        d = champion.mae - challenger.mae

        def var(c: Counts) -> float:
            # the variance of |e| is E[e^2] - E[|e|]^2 = RMSE^2 - MAE^2 (population form,
            # as observability's MAE and RMSE are means over the same rows); floored so
            # that identical errors (or rounding below 0) never divide by 0
            s2 = c.rmse * c.rmse - c.mae * c.mae
            floor = max(1e-12, (1e-6 * max(c.mae, c.rmse)) ** 2)
            return max(s2, floor) / c.labeled
    else:
        d = challenger.value - champion.value

        def var(c: Counts) -> float:
            p = (c.correct + 0.5) / (c.labeled + 1.0)
            return p * (1.0 - p) / c.labeled

    return d, mixture_ratio(d + margin, var(champion) + var(challenger), tau)


def mixture_ratio(x: float, v: float, tau: float) -> float:
    """The mSPRT likelihood ratio of an estimate ``x`` away from its null value, with
    variance ``v``, under a normal mixture of scale ``tau`` (see the module docstring);
    the exponent is capped so the ratio stays a finite float."""
    t2 = tau * tau
    exponent = t2 * x * x / (2.0 * v * (v + t2))
    return math.sqrt(v / (v + t2)) * math.exp(min(exponent, 700.0))


@dataclass(frozen=True)
class Decision:
    action: Action
    #: what it waits for, or why it acts (one sentence, for people)
    reason: str
    #: a short kind for WAIT, so a changed reason is recorded once
    kind: str
    evidence: Evidence


def slice_evidence(a: Analysis, slices: SliceCounts) -> list[SliceEvidence]:
    """Every slice value's test, at the Bonferroni threshold ``k / alpha``."""
    looked = [(c, value, pair) for c in a.slices
              for value, pair in sorted(slices.get(c.feature, {}).items())
              if pair[0].labeled or pair[1].labeled]
    threshold = max(len(looked), 1) / a.alpha
    out = []
    for c, value, (champion, challenger) in looked:
        d, lr = likelihood_ratio(champion, challenger, c.margin, a.mixture_scale, a.metric)
        out.append(SliceEvidence(c.feature, value, champion, challenger, d, lr, threshold))
    return out


def _slice_worse(a: Analysis, evidence: list[SliceEvidence]) -> SliceEvidence | None:
    """The slice value shown worse than its margin with the largest ratio, if any."""
    checks = {c.feature: c for c in a.slices}
    worse = []
    for s in evidence:
        c = checks[s.feature]
        least = c.min_labeled or a.min_labeled
        if (s.champion.labeled >= least and s.challenger.labeled >= least
                and s.likelihood_ratio >= s.threshold and s.difference < -c.margin):
            worse.append(s)
    return max(worse, key=lambda s: s.likelihood_ratio, default=None)


def share_ratio(share: float, n: int, null: float, tau: float) -> float:
    """The mSPRT mixture likelihood ratio of one proportion ``share`` of ``n`` against
    ``H0: p = null`` (normal approximation, null variance)."""
    if n == 0:
        return 0.0
    return mixture_ratio(share - null, null * (1.0 - null) / n, tau)


def _rate(bad: int, n: int) -> float:
    return bad / n if n else 0.0


def operations_evidence(c: OperationsCheck, alpha: float, tau: float, champion: RouteStats,
                        challenger: RouteStats) -> OperationsEvidence:
    """The three operations tests (see the module docstring), each at ``alpha / 3``."""
    def good(s: RouteStats, bad: int) -> Counts:
        return Counts(s.requests, s.requests - bad)

    _, err_lr = likelihood_ratio(good(champion, champion.errors),
                                 good(challenger, challenger.errors), c.error_rate_margin, tau)
    _, fb_lr = likelihood_ratio(good(champion, champion.fallbacks),
                                good(challenger, challenger.fallbacks), c.fallback_rate_margin,
                                tau)
    p99_0 = latency_quantile_us(champion.latency, 0.99)
    p99_1 = latency_quantile_us(challenger.latency, 0.99)
    bound = p99_0 * c.latency_p99_factor + c.latency_p99_slack_ms * 1000.0 if p99_0 else 0.0
    n1 = challenger.answered
    over = count_above_us(challenger.latency, bound) / n1 if n1 and bound else 0.0
    lat_lr = share_ratio(over, n1, LATENCY_TAIL, LATENCY_MIXTURE_SCALE) if bound else 0.0
    return OperationsEvidence(
        champion.requests, challenger.requests, _rate(champion.errors, champion.requests),
        _rate(challenger.errors, challenger.requests), err_lr,
        _rate(champion.fallbacks, champion.requests),
        _rate(challenger.fallbacks, challenger.requests), fb_lr, p99_0 / 1000.0,
        p99_1 / 1000.0, bound / 1000.0, over, lat_lr, OPERATIONS_TESTS / alpha)


def _operations_worse(c: OperationsCheck, e: OperationsEvidence, champion: RouteStats,
                      challenger: RouteStats) -> str:
    """Why the operations check rolls back, or "" when it does not."""
    if min(e.champion_requests, e.challenger_requests) < c.min_requests:
        return ""
    t = e.threshold
    if (e.error_likelihood_ratio >= t
            and e.challenger_error_rate - e.champion_error_rate > c.error_rate_margin):
        return (f"challenger error rate {e.challenger_error_rate:.4f} "
                f"(n={e.challenger_requests}) is above the champion's "
                f"{e.champion_error_rate:.4f} (n={e.champion_requests}) by more than the "
                f"margin {c.error_rate_margin}: likelihood ratio "
                f"{e.error_likelihood_ratio:.3g} >= {t:.3g}")
    if (e.fallback_likelihood_ratio >= t
            and e.challenger_fallback_rate - e.champion_fallback_rate > c.fallback_rate_margin):
        return (f"challenger fallback rate {e.challenger_fallback_rate:.4f} "
                f"(n={e.challenger_requests}) is above the champion's "
                f"{e.champion_fallback_rate:.4f} (n={e.champion_requests}) by more than the "
                f"margin {c.fallback_rate_margin}: likelihood ratio "
                f"{e.fallback_likelihood_ratio:.3g} >= {t:.3g}")
    if (champion.answered >= c.min_requests and challenger.answered >= c.min_requests
            and e.latency_likelihood_ratio >= t and e.challenger_over_bound > LATENCY_TAIL):
        return (f"challenger p99 latency {e.challenger_p99_ms:.1f} ms is above the bound "
                f"{e.latency_bound_ms:.1f} ms (champion p99 {e.champion_p99_ms:.1f} ms x "
                f"{c.latency_p99_factor:g} + {c.latency_p99_slack_ms:g} ms): "
                f"{e.challenger_over_bound:.2%} of {challenger.answered} answered requests "
                f"slower than the bound, likelihood ratio "
                f"{e.latency_likelihood_ratio:.3g} >= {t:.3g}")
    return ""


def proxy_evidence(r: Rollout, stats: ProxyStats) -> ProxyEvidence:
    a = r.analysis
    c = a.proxy
    assert c is not None
    e0, e1 = stats.champion_estimated, stats.challenger_estimated
    n0, n1 = stats.champion_records, stats.challenger_records
    estimated = c.estimated_accuracy and e0 is not None and e1 is not None
    lr = 0.0
    if estimated and e0 is not None and e1 is not None:
        _, lr = likelihood_ratio(Counts(n0, round(e0 * n0)), Counts(n1, round(e1 * n1)),
                                 c.estimated_margin, a.mixture_scale)
    return ProxyEvidence(n0, n1, stats.prediction_drift, c.max_prediction_drift, estimated,
                         e0 or 0.0, e1 or 0.0, lr, 1.0 / a.alpha if estimated else 0.0,
                         max(0, n1 - r.step_start_records))


def _proxy_worse(c: ProxyCheck, e: ProxyEvidence) -> str:
    if min(e.champion_records, e.challenger_records) < c.min_records:
        return ""
    if e.prediction_drift > e.drift_threshold:
        return (f"the challenger's predictions drifted from the champion's: Jensen-Shannon "
                f"distance {e.prediction_drift:.4f} > {e.drift_threshold:g} "
                f"(n={e.champion_records}/{e.challenger_records} records, no actuals needed)")
    d = e.challenger_estimated - e.champion_estimated
    if e.estimated and e.likelihood_ratio >= e.threshold and d < -c.estimated_margin:
        return (f"challenger estimated accuracy {e.challenger_estimated:.4f} (CBPE, "
                f"n={e.challenger_records}) is worse than the champion's "
                f"{e.champion_estimated:.4f} (n={e.champion_records}) by more than the margin "
                f"{c.estimated_margin}: likelihood ratio {e.likelihood_ratio:.3g} >= "
                f"{e.threshold:.3g}")
    return ""


def _proxy_clear(c: ProxyCheck, e: ProxyEvidence) -> str:
    """"" when the proxies let a step advance without actuals, else why not."""
    if min(e.champion_records, e.challenger_records) < c.min_records:
        return (f"the proxies need {c.min_records} records on each side; champion has "
                f"{e.champion_records}, challenger {e.challenger_records}")
    if c.estimated_accuracy and not e.estimated:
        return "the accuracy could not be estimated from scores on both sides"
    if c.estimated_accuracy and (e.challenger_estimated - e.champion_estimated
                                 < -c.estimated_margin):
        return (f"the challenger's estimated accuracy {e.challenger_estimated:.4f} is below "
                f"the champion's {e.champion_estimated:.4f} by more than the margin "
                f"{c.estimated_margin}")
    return ""


#: how a reason names the metric; a lower-is-better one says so
_METRIC_NAMES = {"ACCURACY": "accuracy", "MAE": "MAE (lower is better)"}


def _difference_phrase(metric: str, d: float) -> str:
    if metric == "MAE":
        return f"champion MAE - challenger MAE {d:+.4f}, > 0 = challenger better"
    return f"difference {d:+.4f}"


def decide(r: Rollout, champion: Counts, challenger: Counts, now: datetime,
           slices: SliceCounts | None = None, proxy: ProxyStats | None = None,
           operations: tuple[RouteStats, RouteStats] | None = None) -> Decision:
    """What the controller does now with a RUNNING rollout (pure). ``slices``: the
    counts per value of each slice check's feature (empty when it has none);
    ``proxy``: both versions' records as observability sees them, actuals or not;
    ``operations``: the champion's and the challenger's request outcomes."""
    a = r.analysis
    d, lr = likelihood_ratio(champion, challenger, a.margin, a.mixture_scale, a.metric)
    threshold = 1.0 / a.alpha
    step_labeled = max(0, challenger.labeled - r.step_start_labeled)
    per_slice = slice_evidence(a, slices or {})
    ops = None
    if a.operations is not None:
        ops_stats = operations or (RouteStats(), RouteStats())
        ops = operations_evidence(a.operations, a.alpha, a.mixture_scale, *ops_stats)
    prox = proxy_evidence(r, proxy or ProxyStats()) if a.proxy is not None else None
    ev = Evidence(now, champion, challenger, d, lr, threshold, step_labeled, tuple(per_slice),
                  prox, ops, a.metric)
    name = _METRIC_NAMES.get(a.metric, a.metric.lower())
    if a.metric in ("PRECISION", "RECALL"):
        name += f" of class {a.positive_class!r}"
    enough = champion.labeled >= a.min_labeled and challenger.labeled >= a.min_labeled
    decided = enough and lr >= threshold
    if decided and d < -a.margin:
        return Decision(Action.ROLL_BACK,
                        f"challenger {name} {challenger.metric_value(a.metric):.4f} "
                        f"(n={challenger.labeled}) is worse than the champion's "
                        f"{champion.metric_value(a.metric):.4f} (n={champion.labeled}) by "
                        f"more than the margin {a.margin}: "
                        f"likelihood ratio {lr:.3g} >= {threshold:.3g}", "", ev)
    bad = _slice_worse(a, per_slice)
    if bad is not None:
        margin = next(c.margin for c in a.slices if c.feature == bad.feature)
        return Decision(Action.ROLL_BACK,
                        f"in the slice {bad.feature} = {bad.value!r}, challenger {name} "
                        f"{bad.challenger.metric_value(a.metric):.4f} "
                        f"(n={bad.challenger.labeled}) is worse than the champion's "
                        f"{bad.champion.metric_value(a.metric):.4f} (n={bad.champion.labeled}) "
                        f"by more than the margin {margin}: likelihood ratio "
                        f"{bad.likelihood_ratio:.3g} >= {bad.threshold:.3g} "
                        f"({len(per_slice)} slice values, alpha/{len(per_slice)})", "", ev)
    if a.operations is not None and ops is not None:
        why = _operations_worse(a.operations, ops, *(operations or (RouteStats(), RouteStats())))
        if why:
            return Decision(Action.ROLL_BACK, "operations: " + why, "", ev)
    # proxies stand in for actuals: once both sides have min_labeled, the quality
    # test on actuals decides and a prediction shift alone no longer rolls back
    if a.proxy is not None and prox is not None and not enough:
        why = _proxy_worse(a.proxy, prox)
        if why:
            return Decision(Action.ROLL_BACK, "proxy: " + why, "", ev)
    elapsed = (now - r.step_start_time).total_seconds() if r.step_start_time else 0.0
    step = r.step
    if elapsed < step.min_duration_seconds:
        return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): "
                        f"{step.min_duration_seconds - elapsed:.0f}s of its minimum duration "
                        "left", "duration", ev)
    if a.operations is not None and ops is not None and min(
            ops.champion_requests, ops.challenger_requests) < a.operations.min_requests:
        return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): the "
                        f"operations check holds until both sides have "
                        f"{a.operations.min_requests} requests; champion has "
                        f"{ops.champion_requests}, challenger {ops.challenger_requests}",
                        "requests", ev)
    if step_labeled < step.min_samples:
        if (a.proxy is not None and prox is not None and a.proxy.advance_without_actuals
                and not r.last_step):
            blocked = _proxy_clear(a.proxy, prox)
            if prox.step_records < step.min_samples:
                blocked = (f"{prox.step_records} of {step.min_samples} challenger predictions "
                           "in this step")
            if not blocked:
                return Decision(
                    Action.ADVANCE, f"step {r.current_step} ({step.weight:g}%): "
                    f"{step_labeled} of {step.min_samples} actuals, but "
                    f"{prox.step_records} predictions and the proxies are clear (drift "
                    f"{prox.prediction_drift:.4f} <= {prox.drift_threshold:g}); advancing to "
                    f"{r.steps[r.current_step + 1].weight:g}% without actuals", "", ev)
            return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): waiting "
                            f"for actuals ({step_labeled} of {step.min_samples} challenger "
                            f"predictions with an actual in this step) or for the proxies: "
                            f"{blocked}", "samples", ev)
        never = (" (proxy checks never promote: promotion needs actuals)"
                 if a.proxy is not None and r.last_step else "")
        return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): waiting for "
                        f"actuals: {step_labeled} of {step.min_samples} challenger predictions "
                        f"with an actual in this step{never}", "samples", ev)
    if not r.last_step:
        return Decision(Action.ADVANCE, f"step {r.current_step} ({step.weight:g}%) met its "
                        f"minimums; advancing to {r.steps[r.current_step + 1].weight:g}%",
                        "", ev)
    if not enough:
        proxies = (" (proxy checks never promote: promotion needs actuals)"
                   if a.proxy is not None else "")
        return Decision(Action.WAIT, "waiting for actuals: the test needs "
                        f"{a.min_labeled} predictions with an actual on each side; champion "
                        f"has {champion.labeled}, challenger {challenger.labeled}{proxies}",
                        "actuals", ev)
    if not decided:
        return Decision(Action.WAIT, f"waiting for evidence: likelihood ratio {lr:.3g} of "
                        f"{threshold:.3g} ({_difference_phrase(a.metric, d)}, margin {a.margin}, "
                        f"n={champion.labeled}/{challenger.labeled})", "evidence", ev)
    return Decision(Action.PROMOTE,
                    f"challenger {name} {challenger.metric_value(a.metric):.4f} "
                    f"(n={challenger.labeled}) is not worse than the champion's "
                    f"{champion.metric_value(a.metric):.4f} (n={champion.labeled}) by the "
                    f"margin {a.margin}: likelihood ratio "
                    f"{lr:.3g} >= {threshold:.3g}", "", ev)


# --- validation ------------------------------------------------------------------------
def _margin_ok(margin: float, share: bool) -> bool:
    return math.isfinite(margin) and margin >= 0 and (margin < 1 or not share)


def validate(r: Rollout) -> None:
    """Raise InvalidArgument listing every bad field of a rollout to create."""
    out: list[FieldViolation] = []
    if not NAME_PATTERN.match(r.name or ""):
        out.append(FieldViolation("rollout.name", "must match [a-z0-9][a-z0-9_.-]{0,62}"))
    if not r.deployment:
        out.append(FieldViolation("rollout.deployment", "the deployment to roll out on is "
                                  "required"))
    _check_target(r.challenger, "rollout.challenger", out)
    if r.champion_alias and not ALIAS_PATTERN.match(r.champion_alias):
        out.append(FieldViolation("rollout.champion_alias",
                                  f"{r.champion_alias!r} is not a valid alias"))
    if not r.steps:
        out.append(FieldViolation("rollout.steps", "at least one step"))
    if len(r.steps) > MAX_STEPS:
        out.append(FieldViolation("rollout.steps", f"at most {MAX_STEPS} steps"))
    previous = 0.0
    for i, s in enumerate(r.steps):
        if not math.isfinite(s.weight) or not 0 < s.weight <= 100:
            out.append(FieldViolation(f"rollout.steps[{i}].weight", "must be in (0, 100]"))
        elif s.weight <= previous:
            out.append(FieldViolation(f"rollout.steps[{i}].weight",
                                      "must be greater than the previous step's"))
        else:
            previous = s.weight
        if not math.isfinite(s.min_duration_seconds) or s.min_duration_seconds < 0:
            out.append(FieldViolation(f"rollout.steps[{i}].min_duration", "must be >= 0"))
        if s.min_samples < 0:
            out.append(FieldViolation(f"rollout.steps[{i}].min_samples", "must be >= 0"))
    a = r.analysis
    # accuracy's margin and mixture scale are shares, in [0, 1); MAE's are in the
    # target's units, any size >= 0
    share = a.metric != "MAE"
    if a.metric not in METRICS:
        out.append(FieldViolation("rollout.analysis.checks[0].quality.metric",
                                  "must be one of ROLLOUT_METRIC_ACCURACY, _MAE, _PRECISION, "
                                  "_RECALL"))
    if a.metric in ("PRECISION", "RECALL") and not a.positive_class:
        out.append(FieldViolation("rollout.analysis.checks[0].quality.positive_class",
                                  f"required for {a.metric.lower()}: the class it is of"))
    elif a.metric not in ("PRECISION", "RECALL") and a.positive_class:
        out.append(FieldViolation("rollout.analysis.checks[0].quality.positive_class",
                                  "only for precision and recall"))
    if not _margin_ok(a.margin, share):
        out.append(FieldViolation("rollout.analysis.checks[0].quality.margin",
                                  "must be in [0, 1)" if share else "must be >= 0 (MAE units)"))
    if not math.isfinite(a.alpha) or not 0 < a.alpha <= 0.5:
        out.append(FieldViolation("rollout.analysis.alpha", "must be in (0, 0.5]"))
    if not math.isfinite(a.mixture_scale) or not 0 < a.mixture_scale <= (1 if share
                                                                         else math.inf):
        out.append(FieldViolation("rollout.analysis.mixture_scale",
                                  "must be in (0, 1]" if share else "must be > 0 (MAE units)"))
    if a.min_labeled < 1:
        out.append(FieldViolation("rollout.analysis.min_labeled", "must be >= 1"))
    seen: set[str] = set()
    for i, c in enumerate(a.slices, start=1):
        where = f"rollout.analysis.checks[{i}].slice"
        if not c.feature:
            out.append(FieldViolation(f"{where}.feature", "a categorical feature is required"))
        elif c.feature in seen:
            out.append(FieldViolation(f"{where}.feature", f"{c.feature!r} is checked twice"))
        seen.add(c.feature)
        if not _margin_ok(c.margin, share):
            out.append(FieldViolation(f"{where}.margin", "must be in [0, 1)" if share
                                      else "must be >= 0 (MAE units)"))
        if c.min_labeled < 0:
            out.append(FieldViolation(f"{where}.min_labeled", "must be >= 0"))
    n = len(a.slices) + 1
    if a.proxy is not None:
        p, where = a.proxy, f"rollout.analysis.checks[{n}].proxy"
        n += 1
        if not math.isfinite(p.max_prediction_drift) or not 0 < p.max_prediction_drift <= 1:
            out.append(FieldViolation(f"{where}.max_prediction_drift", "must be in (0, 1]"))
        if p.min_records < 1:
            out.append(FieldViolation(f"{where}.min_records", "must be >= 1"))
        if not math.isfinite(p.estimated_margin) or not 0 <= p.estimated_margin < 1:
            out.append(FieldViolation(f"{where}.estimated_margin", "must be in [0, 1)"))
        if p.estimated_accuracy and not share:
            out.append(FieldViolation(f"{where}.estimated_accuracy", "CBPE estimates a "
                                      "classifier's accuracy; a MAE rollout has no estimate "
                                      "(the prediction drift check still applies)"))
    if a.operations is not None:
        o, where = a.operations, f"rollout.analysis.checks[{n}].operations"
        for name in ("error_rate_margin", "fallback_rate_margin"):
            value = getattr(o, name)
            if not math.isfinite(value) or not 0 <= value < 1:
                out.append(FieldViolation(f"{where}.{name}", "must be in [0, 1)"))
        if not math.isfinite(o.latency_p99_factor) or not 1 <= o.latency_p99_factor <= 100:
            out.append(FieldViolation(f"{where}.latency_p99_factor", "must be in [1, 100]"))
        if not math.isfinite(o.latency_p99_slack_ms) or o.latency_p99_slack_ms < 0:
            out.append(FieldViolation(f"{where}.latency_p99_slack", "must be >= 0"))
        if o.min_requests < 1:
            out.append(FieldViolation(f"{where}.min_requests", "must be >= 1"))
    if out:
        raise InvalidArgument(
            f"invalid rollout {r.name!r}: " + "; ".join(f"{v.field}: {v.description}"
                                                      for v in out),
            reason="INVALID_ROLLOUT", metadata={"rollout": r.name}, field_violations=out)
