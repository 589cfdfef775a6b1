"""Who may call a deployment: its per-deployment rights (principal lists and a least role)
on top of the caller's role. Checked on every request path (OIP gRPC and REST, batch
jobs, Bento export) and, for managing a deployment, by the control plane.
"""

from __future__ import annotations

from modelplane.kit.auth import Principal, Role
from modelplane.kit.errors import FieldViolation, PermissionDenied
from modelplane.serving.deployment import Access, ModelTarget
from modelplane.serving.loaded_models import DeploymentRuntime

_ROLE_FOR_ACCESS = {Access.READ: Role.READER, Access.WRITE: Role.WRITER, Access.ADMIN: Role.ADMIN}


def may(principal: Principal, names: tuple[str, ...], access: Access) -> bool:
    """Does a per-deployment right (principal list + least role) admit ``principal``?"""
    if principal.role >= Role.ADMIN:
        return True
    if principal.role < _ROLE_FOR_ACCESS[access]:
        return False
    return not names or principal.name in names


def check_infer(rt: DeploymentRuntime, principal: Principal,
                target: ModelTarget | None = None) -> None:
    """May ``principal`` call this deployment, and (batch jobs, Bento exports) score
    with ``target``? A deployment's infer right covers the models it serves (its
    routes, shadow, fallbacks, ensemble members), in any version; naming any other
    model through it needs an admin key, as no deployment's right is checked for it."""
    acc = rt.deployment.access
    if not may(principal, acc.infer_principals, acc.infer_access):
        raise PermissionDenied(
            f"key {principal.name!r} may not call model {rt.deployment.name!r}",
            reason="DEPLOYMENT_ACCESS_DENIED",
            metadata={"deployment": rt.deployment.name, "principal": principal.name})
    if target is None or not target.model or principal.role >= Role.ADMIN:
        return
    served = {t.model for t in rt.deployment.all_targets()} | {rt.deployment.model}
    if target.model not in served:
        raise PermissionDenied(
            f"target.model: deployment {rt.deployment.name!r} does not serve model "
            f"{target.model!r}; its rights cover only its own models",
            reason="TARGET_MODEL_NOT_SERVED",
            metadata={"deployment": rt.deployment.name, "model": target.model,
                      "principal": principal.name},
            field_violations=[FieldViolation("target.model", "not served by the deployment")])
