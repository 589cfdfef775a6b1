"""The promotion gate: who may move a protected alias onto which version, and whose
word about a version's validation (and other reserved ``modelplane.*`` tags) counts.

One decision, used by the gRPC API (``registry.py``) and by the plugin that
guards MLflow's own REST API (``mlflow_app.py``), so the stock client cannot go
around it.

Trust: a validation result is accepted only from a *validation principal* - a
service identity (``Principal.service``) whose name is in
``MODELPLANE_REGISTRY_VALIDATION_PRINCIPALS`` (default ``validator``). Reserved
tags are written only by service identities. A person's key never qualifies,
whatever its role: an admin moves a protected alias onto an unvalidated version
only by an override with a reason, which the alias history records. With
``MODELPLANE_AUTH=off`` there are no identities at all (every caller is the
anonymous admin), so there is no boundary to keep and these checks let everyone
through: auth off is for a laptop, never for a shared platform.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.kit.auth import Principal, Role
from modelplane.kit.errors import FailedPrecondition, PermissionDenied
from modelplane.registry.identifiers import RESERVED_TAG_PREFIX
from modelplane.registry.model import ValidationSummary


@dataclass(frozen=True)
class GateDecision:
    protected: bool
    #: True when the move needs (and has) an override because validation did not pass.
    override: bool


class PromotionGate:
    def __init__(self, protected_aliases: tuple[str, ...], override_role: Role = Role.ADMIN,
                 validation_principals: tuple[str, ...] = ("validator",),
                 auth_enabled: bool = True):
        self.protected_aliases = frozenset(protected_aliases)
        self.override_role = override_role
        self.validation_principals = frozenset(validation_principals)
        self.auth_enabled = auth_enabled

    def check_validation_source(self, principal: Principal, *, model: str,
                                version: int) -> None:
        """Refuse a validation result that does not come from a trusted validator identity."""
        if not self.auth_enabled:
            return
        if principal.service and principal.name in self.validation_principals:
            return
        trusted = ", ".join(sorted(self.validation_principals)) or "(none configured)"
        raise PermissionDenied(
            f"key {principal.name!r} may not attach validation results: the registry accepts "
            f"them only from the validator service's own identity ({trusted}; setting "
            "MODELPLANE_REGISTRY_VALIDATION_PRINCIPALS). Run the validation through the "
            "validator, or override the gate with a reason (SetAlias override_reason)",
            reason="VALIDATION_SOURCE_UNTRUSTED",
            metadata={"model": model, "version": str(version), "principal": principal.name,
                      "trusted_principals": trusted})

    def check_reserved_tag(self, principal: Principal, key: str) -> None:
        """Reserved ``modelplane.*`` tags are set, changed or deleted by service identities only."""
        if not key.startswith(RESERVED_TAG_PREFIX) or not self.auth_enabled or principal.service:
            return
        raise PermissionDenied(
            f"tag {key!r} is reserved: keys starting with {RESERVED_TAG_PREFIX!r} are written "
            "only by the modelplane services (lineage through the registry's API, validation "
            "through the validator)", reason="TAG_RESERVED",
            metadata={"key": key, "principal": principal.name})

    def is_protected(self, alias: str) -> bool:
        return alias in self.protected_aliases

    @staticmethod
    def _missing(model: str, version: int, alias: str,
                 validation: ValidationSummary | None) -> str:
        if validation is None:
            return (f"version {version} of model {model!r} has no validation report attached; "
                    f"moving protected alias {alias!r} needs a PASS report")
        return (f"version {version} of model {model!r} has validation report "
                f"{validation.report_id!r} with status {validation.status.value}; moving "
                f"protected alias {alias!r} needs status PASS")

    def decide(self, *, model: str, version: int, alias: str,
               validation: ValidationSummary | None, override_reason: str,
               principal: Principal, allow_override: bool = True) -> GateDecision:
        """Raise FailedPrecondition / PermissionDenied, or say how the move is allowed."""
        if not self.is_protected(alias):
            return GateDecision(protected=False, override=False)
        if validation is not None and validation.passed:
            return GateDecision(protected=True, override=False)
        meta = {"model": model, "version": str(version), "alias": alias,
                "validation_status": validation.status.value if validation else "NONE",
                "report_id": validation.report_id if validation else ""}
        if not override_reason.strip() or not allow_override:
            hint = ("attach a PASS report (AttachValidation) or give override_reason"
                    if allow_override else
                    "attach a PASS report, or override with a reason through the modelplane "
                    "registry API (SetAlias with override_reason)")
            raise FailedPrecondition(f"{self._missing(model, version, alias, validation)}: "
                                     f"{hint}", reason="VALIDATION_REQUIRED", metadata=meta)
        if principal.role < self.override_role:
            raise PermissionDenied(
                f"overriding the promotion gate of {alias!r} needs role "
                f"{self.override_role.name.lower()}; key {principal.name!r} has "
                f"{principal.role.name.lower()}", reason="OVERRIDE_NOT_ALLOWED",
                metadata={**meta, "required_role": self.override_role.name.lower()})
        return GateDecision(protected=True, override=True)
