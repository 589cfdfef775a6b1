"""What a valid model name, alias, version, run id and model URI look like.

Every caller-supplied value that ends up in an MLflow filter string passes one
of these checks first; the checks allow no quote, backslash or wildcard, so
nothing the caller sends can change the meaning of a filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelplane.kit.errors import FieldViolation, InvalidArgument

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
_VERSION_ALIAS = re.compile(r"^v\d+$", re.IGNORECASE)
_RUN_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_FEATURE_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CODE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/+-]{0,127}$")
_ARTIFACT_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{8,64}$")
_TAG_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,249}$")
_NAME_FORBIDDEN = re.compile(r"[/@'\"\\%\x00-\x1f\x7f]")

#: Version tags under this prefix carry lineage and validation; callers may not
#: set them as plain tags.
RESERVED_TAG_PREFIX = "modelplane."


def invalid(field: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    return InvalidArgument(f"{field}: {description}", reason=reason,
                           field_violations=[FieldViolation(field, description)])


def model_name(value: str, field: str = "name") -> str:
    if not value:
        raise invalid(field, "a model name is required", "MODEL_NAME_MISSING")
    if len(value) > 256:
        raise invalid(field, f"model names are at most 256 characters (got {len(value)})",
                      "MODEL_NAME_INVALID")
    if value != value.strip():
        raise invalid(field, f"model name {value!r} has leading or trailing whitespace",
                      "MODEL_NAME_INVALID")
    bad = _NAME_FORBIDDEN.search(value)
    if bad:
        raise invalid(field, f"model name {value!r} contains {bad.group()!r}; "
                      "names may not contain / @ quotes, backslash, % or control characters",
                      "MODEL_NAME_INVALID")
    return value


def alias_name(value: str, field: str = "alias") -> str:
    if not value:
        raise invalid(field, "an alias is required", "ALIAS_MISSING")
    if not _ALIAS.match(value):
        raise invalid(field, f"alias {value!r} must start with a letter and contain only "
                      "letters, digits, '_' and '-' (at most 128)", "ALIAS_INVALID")
    if value.lower() == "latest" or _VERSION_ALIAS.match(value):
        raise invalid(field, f"alias {value!r} is reserved by MLflow ('latest' and 'v<N>' "
                      "name versions)", "ALIAS_RESERVED")
    return value


def version_number(value: int, field: str = "version") -> int:
    if value <= 0:
        raise invalid(field, f"version must be a positive integer (got {value})",
                      "VERSION_INVALID")
    return value


def run_id(value: str, field: str = "run_id") -> str:
    if not _RUN_ID.match(value):
        raise invalid(field, f"run id {value!r} must be 1-64 letters or digits", "RUN_ID_INVALID")
    return value


def dataset_id(value: str, field: str = "lineage.dataset_id") -> str:
    if not _DATASET_ID.match(value):
        raise invalid(field, f"dataset id {value!r} must be 1-128 characters of letters, "
                      "digits, '.', '_', ':' or '-'", "DATASET_ID_INVALID")
    return value


def feature_refs(values: list[str] | tuple[str, ...],
                 field: str = "lineage.feature_refs") -> tuple[str, ...]:
    violations = [FieldViolation(f"{field}[{i}]", f"{ref!r} is not a feature reference "
                                 "'feature_view:feature'")
                  for i, ref in enumerate(values) if not _FEATURE_REF.match(ref)]
    if violations:
        raise InvalidArgument(f"{field}: {violations[0].description}",
                              reason="FEATURE_REF_INVALID", field_violations=violations)
    return tuple(values)


def code_version(value: str, field: str = "lineage.code_version") -> str:
    if not _CODE_VERSION.match(value):
        raise invalid(field, f"code version {value!r} must be a git sha or tag (letters, "
                      "digits, '.', '_', '/', '+', '-'; at most 128)", "CODE_VERSION_INVALID")
    return value


def artifact_path(value: str, field: str = "artifact_path") -> str:
    if not _ARTIFACT_PATH.match(value) or ".." in value.split("/"):
        raise invalid(field, f"artifact path {value!r} must be a relative path of letters, "
                      "digits, '_', '.', '-'", "ARTIFACT_PATH_INVALID")
    return value


def logged_model_id(value: str, field: str = "source") -> str:
    if not _LOGGED_MODEL_ID.match(value):
        raise invalid(field, f"{value!r} is not an MLflow logged model id (m-<hex>)",
                      "SOURCE_INVALID")
    return value


def user_tags(tags: dict[str, str], field: str = "tags") -> dict[str, str]:
    violations = []
    for key, value in tags.items():
        if not _TAG_KEY.match(key):
            violations.append(FieldViolation(f"{field}[{key!r}]", "tag keys are 1-250 letters, "
                                             "digits, '_', '.', '-', '/' or spaces"))
        elif key.startswith(RESERVED_TAG_PREFIX):
            violations.append(FieldViolation(
                f"{field}[{key!r}]", f"keys starting with {RESERVED_TAG_PREFIX!r} are reserved "
                "for lineage and validation"))
        elif len(value) > 5000:
            violations.append(FieldViolation(f"{field}[{key!r}]",
                                             "tag values are at most 5000 characters"))
    if violations:
        raise InvalidArgument(f"{violations[0].field}: {violations[0].description}",
                              reason="TAG_INVALID", field_violations=violations)
    return dict(tags)


def filter_value(value: str, field: str) -> str:
    """A value safe to quote inside an MLflow filter string."""
    if any(c in value for c in "'\"\\`%") or any(ord(c) < 32 for c in value):
        raise invalid(field, "filter values may not contain quotes, backticks, backslash, "
                      "% or control characters", "FILTER_INVALID")
    return value


@dataclass(frozen=True)
class ModelUri:
    """``models:/name@alias`` or ``models:/name/<version>``."""

    model_name: str
    alias: str = ""
    version: int = 0

    @property
    def canonical(self) -> str:
        return (f"models:/{self.model_name}@{self.alias}" if self.alias
                else f"models:/{self.model_name}/{self.version}")


def model_uri(value: str, field: str = "uri") -> ModelUri:
    if not value:
        raise invalid(field,
                      "a model URI is required: models:/name@alias or models:/name/<version>",
                      "MODEL_URI_MISSING")
    if not value.startswith("models:/"):
        raise invalid(field, f"{value!r} is not a models:/ URI (models:/name@alias or "
                      "models:/name/<version>)", "MODEL_URI_INVALID")
    rest = value[len("models:/"):]
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        return ModelUri(model_name(name, field), alias=alias_name(alias, field))
    name, sep, ver = rest.rpartition("/")
    if not sep or not (ver.isascii() and ver.isdigit()):
        raise invalid(field, f"{value!r} names neither an alias nor a version: use "
                      "models:/name@alias or models:/name/<version>", "MODEL_URI_INVALID")
    return ModelUri(model_name(name, field), version=version_number(int(ver), field))
