"""The promotion gate: who may move a protected alias onto which version.

One decision, used by the gRPC API (``registry.py``) and by the plugin that
guards MLflow's own set-alias REST endpoint (``mlflow_app.py``), so the stock
client cannot go around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.kit.auth import Principal, Role
from modelplane.kit.errors import FailedPrecondition, PermissionDenied
from modelplane.registry.model import ValidationSummary


@dataclass(frozen=True)
class GateDecision:
    protected: bool
    #: True when the move needs (and has) an override because validation did not pass.
    override: bool


class PromotionGate:
    def __init__(self, protected_aliases: tuple[str, ...], override_role: Role = Role.ADMIN):
        self.protected_aliases = frozenset(protected_aliases)
        self.override_role = override_role

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
