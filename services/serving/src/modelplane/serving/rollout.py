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
class Analysis:
    metric: str = "ACCURACY"
    margin: float = 0.0
    alpha: float = DEFAULT_ALPHA
    mixture_scale: float = DEFAULT_MIXTURE_SCALE
    min_labeled: int = DEFAULT_MIN_LABELED
    slices: tuple[SliceCheck, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Analysis:
        d = dict(d)
        d["slices"] = tuple(SliceCheck(**s) for s in d.get("slices", ()))
        return cls(**d)


@dataclass(frozen=True)
class Counts:
    """Predictions with an actual, and how many of them were right."""

    labeled: int = 0
    correct: int = 0

    @property
    def value(self) -> float:
        return self.correct / self.labeled if self.labeled else 0.0


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
class Evidence:
    time: datetime
    champion: Counts
    challenger: Counts
    difference: float = 0.0
    likelihood_ratio: float = 0.0
    threshold: float = 0.0
    step_labeled: int = 0
    slices: tuple[SliceEvidence, ...] = ()


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
                          for s in ev.get("slices", ())))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- the sequential test ------------------------------------------------------------------
def likelihood_ratio(champion: Counts, challenger: Counts, margin: float,
                     tau: float) -> tuple[float, float]:
    """``(d, L)``: the difference of accuracies and the mSPRT mixture likelihood ratio
    against ``delta = -margin`` (see the module docstring)."""
    if champion.labeled == 0 or challenger.labeled == 0:
        return 0.0, 0.0
    d = challenger.value - champion.value

    def var(c: Counts) -> float:
        p = (c.correct + 0.5) / (c.labeled + 1.0)
        return p * (1.0 - p) / c.labeled

    v = var(champion) + var(challenger)
    t2 = tau * tau
    exponent = t2 * (d + margin) ** 2 / (2.0 * v * (v + t2))
    return d, math.sqrt(v / (v + t2)) * math.exp(min(exponent, 700.0))


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
        d, lr = likelihood_ratio(champion, challenger, c.margin, a.mixture_scale)
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


def decide(r: Rollout, champion: Counts, challenger: Counts, now: datetime,
           slices: SliceCounts | None = None) -> Decision:
    """What the controller does now with a RUNNING rollout (pure). ``slices``: the
    counts per value of each slice check's feature (empty when it has none)."""
    a = r.analysis
    d, lr = likelihood_ratio(champion, challenger, a.margin, a.mixture_scale)
    threshold = 1.0 / a.alpha
    step_labeled = max(0, challenger.labeled - r.step_start_labeled)
    per_slice = slice_evidence(a, slices or {})
    ev = Evidence(now, champion, challenger, d, lr, threshold, step_labeled, tuple(per_slice))
    enough = champion.labeled >= a.min_labeled and challenger.labeled >= a.min_labeled
    decided = enough and lr >= threshold
    if decided and d < -a.margin:
        return Decision(Action.ROLL_BACK,
                        f"challenger accuracy {challenger.value:.4f} (n={challenger.labeled}) "
                        f"is worse than the champion's {champion.value:.4f} "
                        f"(n={champion.labeled}) by more than the margin {a.margin}: "
                        f"likelihood ratio {lr:.3g} >= {threshold:.3g}", "", ev)
    bad = _slice_worse(a, per_slice)
    if bad is not None:
        margin = next(c.margin for c in a.slices if c.feature == bad.feature)
        return Decision(Action.ROLL_BACK,
                        f"in the slice {bad.feature} = {bad.value!r}, challenger accuracy "
                        f"{bad.challenger.value:.4f} (n={bad.challenger.labeled}) is worse than "
                        f"the champion's {bad.champion.value:.4f} (n={bad.champion.labeled}) "
                        f"by more than the margin {margin}: likelihood ratio "
                        f"{bad.likelihood_ratio:.3g} >= {bad.threshold:.3g} "
                        f"({len(per_slice)} slice values, alpha/{len(per_slice)})", "", ev)
    elapsed = (now - r.step_start_time).total_seconds() if r.step_start_time else 0.0
    step = r.step
    if elapsed < step.min_duration_seconds:
        return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): "
                        f"{step.min_duration_seconds - elapsed:.0f}s of its minimum duration "
                        "left", "duration", ev)
    if step_labeled < step.min_samples:
        return Decision(Action.WAIT, f"step {r.current_step} ({step.weight:g}%): waiting for "
                        f"actuals: {step_labeled} of {step.min_samples} challenger predictions "
                        "with an actual in this step", "samples", ev)
    if not r.last_step:
        return Decision(Action.ADVANCE, f"step {r.current_step} ({step.weight:g}%) met its "
                        f"minimums; advancing to {r.steps[r.current_step + 1].weight:g}%",
                        "", ev)
    if not enough:
        return Decision(Action.WAIT, "waiting for actuals: the test needs "
                        f"{a.min_labeled} predictions with an actual on each side; champion "
                        f"has {champion.labeled}, challenger {challenger.labeled}",
                        "actuals", ev)
    if not decided:
        return Decision(Action.WAIT, f"waiting for evidence: likelihood ratio {lr:.3g} of "
                        f"{threshold:.3g} (difference {d:+.4f}, margin {a.margin}, "
                        f"n={champion.labeled}/{challenger.labeled})", "evidence", ev)
    return Decision(Action.PROMOTE,
                    f"challenger accuracy {challenger.value:.4f} (n={challenger.labeled}) is "
                    f"not worse than the champion's {champion.value:.4f} "
                    f"(n={champion.labeled}) by the margin {a.margin}: likelihood ratio "
                    f"{lr:.3g} >= {threshold:.3g}", "", ev)


# --- validation ------------------------------------------------------------------------
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
    if a.metric != "ACCURACY":
        out.append(FieldViolation("rollout.analysis.checks[0].quality.metric",
                                  "only ROLLOUT_METRIC_ACCURACY is built"))
    if not math.isfinite(a.margin) or not 0 <= a.margin < 1:
        out.append(FieldViolation("rollout.analysis.checks[0].quality.margin",
                                  "must be in [0, 1)"))
    if not math.isfinite(a.alpha) or not 0 < a.alpha <= 0.5:
        out.append(FieldViolation("rollout.analysis.alpha", "must be in (0, 0.5]"))
    if not math.isfinite(a.mixture_scale) or not 0 < a.mixture_scale <= 1:
        out.append(FieldViolation("rollout.analysis.mixture_scale", "must be in (0, 1]"))
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
        if not math.isfinite(c.margin) or not 0 <= c.margin < 1:
            out.append(FieldViolation(f"{where}.margin", "must be in [0, 1)"))
        if c.min_labeled < 0:
            out.append(FieldViolation(f"{where}.min_labeled", "must be >= 0"))
    if out:
        raise InvalidArgument(
            f"invalid rollout {r.name!r}: " + "; ".join(f"{v.field}: {v.description}"
                                                      for v in out),
            reason="INVALID_ROLLOUT", metadata={"rollout": r.name}, field_violations=out)
