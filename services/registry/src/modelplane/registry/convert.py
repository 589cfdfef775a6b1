"""``modelplane.registry.v1`` messages <-> the registry's domain objects
(:mod:`.model`): versions, lineage, validation summaries, aliases, their
history and change events. Translation only.
"""

from __future__ import annotations

from modelplane.kit.timestamps import time_to_pb
from modelplane.registry import model as m
from modelplane.registry.v1 import registry_pb2 as pb

_VALIDATION_TO_PB = {m.ValidationStatus.PASS: pb.VALIDATION_STATUS_PASS,
                     m.ValidationStatus.WARN: pb.VALIDATION_STATUS_WARN,
                     m.ValidationStatus.FAIL: pb.VALIDATION_STATUS_FAIL}
VALIDATION_FROM_PB = {v: k for k, v in _VALIDATION_TO_PB.items()}
_STATUS_TO_PB = {m.VersionStatus.READY: pb.MODEL_VERSION_STATUS_READY,
                 m.VersionStatus.PENDING_REGISTRATION:
                     pb.MODEL_VERSION_STATUS_PENDING_REGISTRATION,
                 m.VersionStatus.FAILED_REGISTRATION: pb.MODEL_VERSION_STATUS_FAILED_REGISTRATION}
_ORIGIN_TO_PB = {m.ChangeOrigin.GRPC: pb.CHANGE_ORIGIN_GRPC,
                 m.ChangeOrigin.MLFLOW: pb.CHANGE_ORIGIN_MLFLOW}
_EVENT_TO_PB = {t: pb.ModelEventType.Value(f"MODEL_EVENT_TYPE_{t.value}") for t in m.EventType}
EVENT_FROM_PB = {v: k for k, v in _EVENT_TO_PB.items()}


def validation_to_pb(v: m.ValidationSummary | None) -> pb.ValidationSummary | None:
    if v is None:
        return None
    return pb.ValidationSummary(report_id=v.report_id, status=_VALIDATION_TO_PB[v.status],
                                report_uri=v.report_uri, summary=v.summary,
                                attach_time=time_to_pb(v.attach_time), attached_by=v.attached_by)


def _field_to_pb(f: m.SignatureField) -> pb.SignatureField:
    return pb.SignatureField(name=f.name, type=f.type, required=f.required,
                             tensor_dtype=f.tensor_dtype, tensor_shape=list(f.tensor_shape))


def lineage_to_pb(lin: m.Lineage) -> pb.Lineage:
    sig = None
    if lin.signature is not None:
        s = lin.signature
        sig = pb.Signature(inputs=[_field_to_pb(f) for f in s.inputs],
                           outputs=[_field_to_pb(f) for f in s.outputs], inputs_json=s.inputs_json,
                           outputs_json=s.outputs_json, params_json=s.params_json)
    return pb.Lineage(run_id=lin.run_id, experiment_id=lin.experiment_id,
                      dataset_id=lin.dataset_id, feature_refs=list(lin.feature_refs),
                      code_version=lin.code_version, signature=sig)


def version_to_pb(v: m.ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(
        model_name=v.model_name, version=v.version, description=v.description, source=v.source,
        status=_STATUS_TO_PB[v.status], aliases=list(v.aliases), tags=v.tags,
        lineage=lineage_to_pb(v.lineage), validation=validation_to_pb(v.validation),
        creator=v.creator, logged_model_id=v.logged_model_id, create_time=time_to_pb(v.create_time),
        update_time=time_to_pb(v.update_time))


def alias_to_pb(a: m.Alias) -> pb.Alias:
    return pb.Alias(model_name=a.model_name, alias=a.alias, version=a.version,
                    protected=a.protected, update_time=time_to_pb(a.update_time),
                    updated_by=a.updated_by)


def model_to_pb(x: m.Model) -> pb.Model:
    return pb.Model(name=x.name, description=x.description, tags=x.tags,
                    aliases=[alias_to_pb(a) for a in x.aliases], latest_version=x.latest_version,
                    create_time=time_to_pb(x.create_time), update_time=time_to_pb(x.update_time))


def alias_change_to_pb(c: m.AliasChange) -> pb.AliasChange:
    return pb.AliasChange(
        id=str(c.id), model_name=c.model_name, alias=c.alias, from_version=c.from_version,
        to_version=c.to_version, principal=c.principal, reason=c.reason, override=c.override,
        validation=validation_to_pb(c.validation), origin=_ORIGIN_TO_PB[c.origin],
        change_time=time_to_pb(c.change_time))


def event_to_pb(ev: m.ModelEvent) -> pb.ModelEvent:
    out = pb.ModelEvent(sequence=ev.sequence, type=_EVENT_TO_PB[ev.type],
                        event_time=time_to_pb(ev.event_time), model_name=ev.model_name,
                        version=ev.version, alias=ev.alias, principal=ev.principal,
                        origin=_ORIGIN_TO_PB[ev.origin] if ev.origin else
                        pb.CHANGE_ORIGIN_UNSPECIFIED)
    if ev.alias_change is not None:
        out.alias_change.CopyFrom(alias_change_to_pb(ev.alias_change))
    elif ev.validation is not None:
        out.validation.CopyFrom(validation_to_pb(ev.validation))
    return out
