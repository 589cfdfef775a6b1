"""Callers cannot touch the server's files (issue #13, deliverable 2).

One test per attack of the issue's table that names a file, and per code
finding (feature-view sources, PostgreSQL source tables, batch/export targets),
each against real services started here, each asserting the refusal *and* that
nothing changed. Then the storage policy itself (``modelplane.kit.locations``).

The attacker holds a writer key; ``ListRecords`` is read back with a reader key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# BentoML reads its home once, at import: a throwaway model store for these tests.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mp-security-locations-"))
os.environ.setdefault("BENTOML_HOME", str(_SESSION_DIR / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelplane.kit.auth import Role, add_key
from modelplane.kit.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from modelplane.kit.pytest_plugin import rpc_error
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings

T0 = datetime(2026, 5, 1, tzinfo=UTC)
SECRET_COLUMNS = ("ssn_secret", "salary_secret")


def _bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@contextlib.contextmanager
def _unchanged(path: Path) -> Iterator[None]:
    """Asserts that ``path`` (a file, or a path that does not exist) is as it was."""
    before = (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None
    yield
    after = (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None
    assert after == before, f"{path} changed"


def _secret_table(model: str, n: int = 3) -> pa.Table:
    return pa.table({
        "prediction_id": [f"{model}-secret-{i}" for i in range(n)],
        "prediction_time": pa.array([T0 + timedelta(minutes=i) for i in range(n)],
                                    pa.timestamp("us", "UTC")),
        SECRET_COLUMNS[0]: [f"123-45-{i:04d}" for i in range(n)],
        SECRET_COLUMNS[1]: [100_000.0 + i for i in range(n)],
        "prediction": [1] * n})


def _shown(err: Any) -> str:
    """Everything a caller sees of an error: message, metadata, field violations."""
    return " ".join([err.message, *err.metadata.values(),
                     *(f"{v.field} {v.description}" for v in err.field_violations)])


# ---------------------------------------------------------------- observability


@pytest.fixture(scope="module")
async def observability(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    from modelplane.observability.main import build
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import ObservabilitySettings
    from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

    tmp = tmp_path_factory.mktemp("sec-obs")
    keys = tmp / "keys.json"
    writer, reader = add_key(keys, "alice", Role.WRITER), add_key(keys, "bob", Role.READER)
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "on",
        "MODELPLANE_API_KEYS_FILE": str(keys)}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr=None, monitor_tick_seconds=0)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    async with running(spec, svc) as server, grpc.aio.insecure_channel(server.address) as ch:
        yield {"stub": pb_grpc.ObservabilityServiceStub(ch), "tmp": tmp,
               "data_dir": svc.data_dir, "writer": writer, "reader": reader}


async def _records(obs: dict[str, Any], model: str) -> list[str]:
    from modelplane.observability.v1 import observability_pb2 as pb

    resp = await obs["stub"].ListRecords(pb.ListRecordsRequest(
        filter=pb.EvaluationFilter(model=model), page_size=1000), metadata=_bearer(obs["reader"]))
    return sorted(r.prediction_id for r in resp.records)


async def _seed_model(obs: dict[str, Any], model: str) -> None:
    """One legitimate record (inline Arrow), so the model exists and counts can be compared."""
    from modelplane.observability.v1 import observability_pb2 as pb

    sink = pa.BufferOutputStream()
    legit = pa.table({"prediction_id": [f"{model}-legit"],
                      "prediction_time": pa.array([T0], pa.timestamp("us", "UTC")),
                      "x": [1.0], "prediction": [0]})
    with pa.ipc.new_stream(sink, legit.schema) as w:
        w.write_table(legit)
    await obs["stub"].ImportRecords(pb.ImportRecordsRequest(
        model=model, version="1", environment=pb.ENVIRONMENT_BATCH,
        table={"arrow_ipc": sink.getvalue().to_pybytes()}), metadata=_bearer(obs["writer"]))


async def test_import_records_of_a_private_file_outside_every_root_is_refused(
        observability: dict[str, Any]) -> None:
    """Row: ``ImportRecords`` ``parquet_uri`` = a 0600 file outside every root, then
    ``ListRecords`` with a reader key: the file's rows must not come back."""
    from modelplane.observability.v1 import observability_pb2 as pb

    obs = observability
    model = "sec-" + uuid.uuid4().hex[:8]
    await _seed_model(obs, model)
    private = obs["tmp"] / "private" / "payroll.parquet"  # beside the data dir, not in it
    private.parent.mkdir()
    pq.write_table(_secret_table(model), private)
    private.chmod(0o600)
    imports = obs["data_dir"] / "imports"
    imports.mkdir(parents=True, exist_ok=True)
    link = imports / f"{model}-link.parquet"  # a symlink inside a root, pointing out of it
    link.symlink_to(private)
    for uri in (str(private), private.as_uri(), str(link),
                str(imports / ".." / ".." / ".." / "private" / "payroll.parquet")):
        with _unchanged(private):
            err = await rpc_error(obs["stub"].ImportRecords(pb.ImportRecordsRequest(
                model=model, version="1", environment=pb.ENVIRONMENT_BATCH,
                table={"parquet_uri": uri}), metadata=_bearer(obs["writer"])))
        assert isinstance(err, PermissionDenied), (uri, err)
        assert "STORAGE_ROOTS" in err.message  # names the setting that would allow it
        assert not any(c in _shown(err) for c in SECRET_COLUMNS)
        assert str(private.resolve()) not in _shown(err) or uri == str(private) \
            or uri == private.as_uri()  # only what the caller wrote comes back
    assert await _records(obs, model) == [f"{model}-legit"]


async def test_a_wrong_column_list_does_not_print_the_files_columns(
        observability: dict[str, Any]) -> None:
    """Row: a wrong column list made the error print the file's columns."""
    from modelplane.observability.v1 import observability_pb2 as pb

    obs = observability
    model = "sec-" + uuid.uuid4().hex[:8]
    await _seed_model(obs, model)
    inside = obs["data_dir"] / "imports" / f"{model}.parquet"
    inside.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_secret_table(model), inside)
    err = await rpc_error(obs["stub"].ImportRecords(pb.ImportRecordsRequest(
        model=model, version="1", environment=pb.ENVIRONMENT_BATCH,
        table={"parquet_uri": inside.as_uri()}, columns=pb.ImportColumns(prediction_id="nope")),
        metadata=_bearer(obs["writer"])))
    assert isinstance(err, InvalidArgument) and err.reason == "COLUMN_NOT_FOUND"
    assert "nope" in err.message  # the caller's own column name is fine to show
    assert not any(c in _shown(err) for c in (*SECRET_COLUMNS, "prediction_time"))
    assert await _records(obs, model) == [f"{model}-legit"]


async def test_an_unreadable_file_inside_a_root_is_reported_without_its_bytes(
        observability: dict[str, Any]) -> None:
    from modelplane.observability.v1 import observability_pb2 as pb

    obs = observability
    model = "sec-" + uuid.uuid4().hex[:8]
    await _seed_model(obs, model)
    notes = obs["data_dir"] / "imports" / f"{model}.txt"
    notes.write_text("root:SECRET-PASSWORD-HASH:0:0\n")
    err = await rpc_error(obs["stub"].ImportRecords(pb.ImportRecordsRequest(
        model=model, version="1", environment=pb.ENVIRONMENT_BATCH,
        table={"parquet_uri": str(notes)}), metadata=_bearer(obs["writer"])))
    assert isinstance(err, InvalidArgument)
    assert "SECRET" not in _shown(err) and str(obs["data_dir"].parent) not in err.message.replace(
        str(notes), "")
    assert await _records(obs, model) == [f"{model}-legit"]


# ---------------------------------------------------------------- serving


def _log_models(uri: str, artifacts: Path) -> None:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = client.create_experiment("sec", artifact_location=artifacts.as_uri())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    for name in ("churn", "secret"):
        clf = LogisticRegression().fit(X, y)
        with mlflow.start_run(experiment_id=exp):
            mlflow.sklearn.log_model(clf, name="model", registered_model_name=name,
                                     signature=infer_signature(X, clf.predict(X)))
        client.set_registered_model_alias(name, "champion", "1")


@pytest.fixture(scope="module")
async def serving(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    import logging
    import os

    from modelplane.serving.runtime import ServingRuntime
    from modelplane.serving.settings import ServingSettings
    from modelplane.serving.v1 import serving_pb2 as pb
    from modelplane.serving.v1 import serving_pb2_grpc

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    tmp = tmp_path_factory.mktemp("sec-serving")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    _log_models(uri, tmp / "artifacts")
    keys = tmp / "keys.json"
    admin, writer = add_key(keys, "root", Role.ADMIN), add_key(keys, "alice", Role.WRITER)
    add_key(keys, "carol", Role.WRITER)
    settings = ServingSettings.from_env({
        "MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "on",
        "MODELPLANE_API_KEYS_FILE": str(keys), "MODELPLANE_API_KEY": admin,
        "MODELPLANE_SERVING_ADDR": "127.0.0.1:0", "MODELPLANE_SERVING_HTTP_ADDR": "127.0.0.1:0",
        "MODELPLANE_SERVING_MODEL_SOURCE": uri, "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
        "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
        # files, not the gate, are under test here: the version is not validated
        "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off",
        "MODELPLANE_SERVING_ALIAS_POLL_SECONDS": "0.5", "BENTOML_HOME": os.environ["BENTOML_HOME"]})
    server = ServingRuntime(settings)
    async with running(server.spec, settings.service) as svc, \
            grpc.aio.insecure_channel(svc.address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        # churn: alice may infer; secret: only carol may.
        await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
            name="churn", model="churn", access=pb.AccessPolicy(infer_principals=["alice"]))),
            metadata=_bearer(admin), timeout=120)
        await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
            name="secret", model="secret", access=pb.AccessPolicy(infer_principals=["carol"]))),
            metadata=_bearer(admin), timeout=120)
        yield {"stub": stub, "tmp": tmp, "data_dir": settings.data_dir, "writer": writer,
               "admin": admin}


async def _batch_jobs(sv: dict[str, Any]) -> list[str]:
    from modelplane.serving.v1 import serving_pb2 as pb

    resp = await sv["stub"].ListBatchJobs(pb.ListBatchJobsRequest(page_size=1000),
                                          metadata=_bearer(sv["admin"]))
    return [j.id for j in resp.batch_jobs]


def _rows(path: Path) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({f"f{i}": np.zeros(3) for i in range(4)}), path)


async def test_batch_output_uri_outside_the_data_dir_is_refused_and_the_file_untouched(
        serving: dict[str, Any]) -> None:
    """Row: batch job ``output_uri`` = any path outside the data directory."""
    from modelplane.serving.v1 import serving_pb2 as pb

    sv = serving
    src = sv["data_dir"] / "imports" / "rows.parquet"
    _rows(src)
    victim = sv["tmp"] / "victim.conf"  # beside the data dir
    victim.write_text("precious = true\n")
    exports = sv["data_dir"] / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    existing = exports / "last-week.parquet"  # inside a root, but already there
    existing.write_bytes(b"last week's scores")
    before = await _batch_jobs(sv)
    cases = [(str(victim), PermissionDenied), (victim.as_uri(), PermissionDenied),
             (str(exports / ".." / ".." / ".." / "victim.conf"), PermissionDenied),
             (str(sv["tmp"] / "new-dir" / "out.parquet"), PermissionDenied),
             ("http://example.com/out.parquet", PermissionDenied),
             (str(existing), AlreadyExists)]
    for output, expected in cases:
        with _unchanged(victim), _unchanged(existing), \
                _unchanged(sv["tmp"] / "new-dir" / "out.parquet"):
            err = await rpc_error(sv["stub"].CreateBatchJob(pb.CreateBatchJobRequest(
                batch_job=pb.BatchJob(deployment="churn", parquet_uri=str(src),
                                      output_uri=output)), metadata=_bearer(sv["writer"])))
        assert isinstance(err, expected), (output, err)
    assert not (sv["tmp"] / "new-dir").exists()
    assert await _batch_jobs(sv) == before


async def test_batch_input_outside_the_roots_is_refused(serving: dict[str, Any]) -> None:
    from modelplane.serving.v1 import serving_pb2 as pb

    sv = serving
    outside = sv["tmp"] / "someone-elses.parquet"
    _rows(outside)
    before = await _batch_jobs(sv)
    err = await rpc_error(sv["stub"].CreateBatchJob(pb.CreateBatchJobRequest(
        batch_job=pb.BatchJob(deployment="churn", parquet_uri=str(outside))),
        metadata=_bearer(sv["writer"])))
    assert isinstance(err, PermissionDenied) and "STORAGE_ROOTS" in err.message
    assert await _batch_jobs(sv) == before


async def test_export_bento_output_path_anywhere_is_refused_and_nothing_written(
        serving: dict[str, Any]) -> None:
    """Row: ``ExportBento`` ``output_path`` anywhere: folders created, a ``.bento`` written."""
    from modelplane.serving.v1 import serving_pb2 as pb

    sv = serving
    deep = sv["tmp"] / "outside" / "deep"
    victim = sv["tmp"] / "victim.bento"
    victim.write_bytes(b"not yours")
    for output in (str(deep / "churn.bento"), str(victim),
                   str(sv["data_dir"] / "exports" / ".." / ".." / "x.bento")):
        with _unchanged(victim):
            err = await rpc_error(sv["stub"].ExportBento(pb.ExportBentoRequest(
                name="churn", output_path=output), metadata=_bearer(sv["writer"]), timeout=120))
        assert isinstance(err, PermissionDenied), (output, err)
    assert not (sv["tmp"] / "outside").exists()
    assert not (sv["tmp"] / "x.bento").exists()


async def test_batch_and_export_cannot_name_a_model_the_deployment_does_not_serve(
        serving: dict[str, Any]) -> None:
    """Code finding: ``target.model`` naming any model skipped that model's infer rights
    (alice may infer ``churn``; ``secret`` is carol's)."""
    from modelplane.serving.v1 import serving_pb2 as pb

    sv = serving
    src = sv["data_dir"] / "imports" / "rows.parquet"
    _rows(src)
    bentos = sv["data_dir"] / "bentos"
    listing = sorted(bentos.rglob("*")) if bentos.exists() else []
    before = await _batch_jobs(sv)
    target = pb.ModelTarget(model="secret", alias="champion")
    err = await rpc_error(sv["stub"].CreateBatchJob(pb.CreateBatchJobRequest(
        batch_job=pb.BatchJob(deployment="churn", target=target, parquet_uri=str(src))),
        metadata=_bearer(sv["writer"])))
    assert isinstance(err, PermissionDenied), err
    err = await rpc_error(sv["stub"].ExportBento(pb.ExportBentoRequest(
        name="churn", target=target), metadata=_bearer(sv["writer"]), timeout=120))
    assert isinstance(err, PermissionDenied), err
    assert await _batch_jobs(sv) == before
    assert (sorted(bentos.rglob("*")) if bentos.exists() else []) == listing


# ---------------------------------------------------------------- featurestore


@contextlib.asynccontextmanager
async def _featurestore(tmp: Path, database_url: str = "") -> AsyncIterator[dict[str, Any]]:
    from modelplane.featurestore.main import build_spec
    from modelplane.featurestore.settings import FeatureStoreSettings
    from modelplane.featurestore.v1 import featurestore_pb2 as pb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc as fs_grpc

    keys = tmp / "keys.json"
    writer = add_key(keys, "alice", Role.WRITER)
    env = {"MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "on",
           "MODELPLANE_API_KEYS_FILE": str(keys),
           "MODELPLANE_FEATURESTORE_PROJECT": "s" + uuid.uuid4().hex[:8]}
    if database_url:
        env["MODELPLANE_FEATURESTORE_DATABASE_URL"] = database_url
        env["MODELPLANE_FEATURESTORE_ONLINE_STORE"] = "sqlite"
    svc = ServiceSettings.from_env("featurestore", env).with_listen("127.0.0.1:0")
    spec, _ = build_spec(svc, FeatureStoreSettings.from_service(svc))
    async with running(spec, svc) as server, grpc.aio.insecure_channel(server.address) as ch:
        stub = fs_grpc.FeatureStoreServiceStub(ch)
        await stub.CreateEntity(pb.CreateEntityRequest(entity=pb.Entity(
            name="customer", join_key="customer_id", value_type=pb.VALUE_TYPE_INT64)),
            metadata=_bearer(writer))
        yield {"stub": stub, "writer": writer, "data_dir": svc.data_dir}


def _view(name: str, **source: Any) -> Any:
    from modelplane.featurestore.v1 import featurestore_pb2 as pb

    return pb.FeatureView(name=name, entities=["customer"],
                          features=[pb.Feature(name="spend", value_type=pb.VALUE_TYPE_DOUBLE)],
                          source=pb.DataSource(**source))


async def _views(fs: dict[str, Any]) -> list[str]:
    from modelplane.featurestore.v1 import featurestore_pb2 as pb

    resp = await fs["stub"].ListFeatureViews(pb.ListFeatureViewsRequest(page_size=1000),
                                             metadata=_bearer(fs["writer"]))
    return sorted(v.name for v in resp.feature_views)


async def test_feature_view_source_with_an_absolute_path_cannot_escape_the_roots(
        tmp_path: Path) -> None:
    """Code finding: feature-view sources with absolute paths escape the import roots
    (the server creates the file, appends rows to it, and reads it back)."""
    from modelplane.featurestore.v1 import featurestore_pb2 as pb

    async with _featurestore(tmp_path) as fs:
        victim = tmp_path / "victim.parquet"
        pq.write_table(pa.table({"customer_id": pa.array([1], pa.int64()),
                                 "event_timestamp": pa.array([T0], pa.timestamp("us", "UTC")),
                                 "spend": [9.0]}), victim)
        fresh = tmp_path / "planted" / "new.parquet"
        for i, path in enumerate((str(victim), victim.as_uri(), str(fresh),
                                  str(tmp_path / "planted" / "*.parquet"), "../../victim.parquet")):
            with _unchanged(victim):
                err = await rpc_error(fs["stub"].CreateFeatureView(pb.CreateFeatureViewRequest(
                    feature_view=_view(f"escape_{i}", kind=pb.SOURCE_KIND_FILE, path=path)),
                    metadata=_bearer(fs["writer"])))
            assert isinstance(err, PermissionDenied), (path, err)
        assert not (tmp_path / "planted").exists()
        assert await _views(fs) == []
        # a source under a root still works
        ok = await fs["stub"].CreateFeatureView(pb.CreateFeatureViewRequest(
            feature_view=_view("inside", kind=pb.SOURCE_KIND_FILE, path="imports/spend.parquet")),
            metadata=_bearer(fs["writer"]))
        assert Path(ok.source.path) == (fs["data_dir"] / "imports" / "spend.parquet").resolve()


async def test_a_postgres_source_table_is_an_identifier_never_sql(
        tmp_path: Path, make_postgres_database: Any) -> None:
    """Code finding: a PostgreSQL ``table`` starting with ``(`` was spliced as SQL."""
    import psycopg

    from modelplane.featurestore.v1 import featurestore_pb2 as pb

    dsn = make_postgres_database("mp_sec_fs")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE canary (secret text)")
        conn.execute("INSERT INTO canary VALUES ('do not read me')")
    async with _featurestore(tmp_path, dsn) as fs:
        query = ("(SELECT secret AS spend, 1::bigint AS customer_id, now() AS event_timestamp "
                 "FROM canary)")
        for i, table in enumerate((query, "canary; DROP TABLE canary", 'public."canary"',
                                   "a.b.c")):
            err = await rpc_error(fs["stub"].CreateFeatureView(pb.CreateFeatureViewRequest(
                feature_view=_view(f"query_{i}", kind=pb.SOURCE_KIND_POSTGRES, table=table)),
                metadata=_bearer(fs["writer"])))
            assert isinstance(err, InvalidArgument), (table, err)
            assert err.field_violations[0].field == "feature_view.source.table"
        assert await _views(fs) == []
        ok = await fs["stub"].CreateFeatureView(pb.CreateFeatureViewRequest(
            feature_view=_view("spend", kind=pb.SOURCE_KIND_POSTGRES, table="public.fs_spend")),
            metadata=_bearer(fs["writer"]))
        assert ok.source.table == "public.fs_spend"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT secret FROM canary").fetchall() == [("do not read me",)]
        cols = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = 'fs_spend' "
                            "ORDER BY ordinal_position").fetchall()
        assert [c[0] for c in cols] == ["customer_id", "event_timestamp", "spend"]


# ---------------------------------------------------------------- the policy itself


@pytest.fixture
def policy(tmp_path: Path) -> Any:
    from modelplane.kit.locations import StoragePolicy

    (tmp_path / "imports").mkdir()
    (tmp_path / "exports").mkdir()
    return StoragePolicy([tmp_path / "imports", tmp_path / "exports"],
                         ["s3://team-bucket/features", "gs://shared"],
                         roots_setting="MODELPLANE_X_STORAGE_ROOTS",
                         buckets_setting="MODELPLANE_X_STORAGE_BUCKETS")


def test_paths_are_resolved_before_the_check(policy: Any, tmp_path: Path) -> None:
    (tmp_path / "imports" / "a.parquet").write_bytes(b"x")
    (tmp_path / "outside.parquet").write_bytes(b"x")
    ok = policy.readable("a.parquet", "f")  # relative: under the imports root
    assert ok.path == (tmp_path / "imports" / "a.parquet").resolve()
    assert policy.readable((tmp_path / "imports" / "a.parquet").as_uri(), "f").path == ok.path
    for uri in ("../outside.parquet", str(tmp_path / "imports" / ".." / "outside.parquet"),
                "file://" + str(tmp_path / "imports") + "/../outside.parquet",
                "imports/../../outside.parquet", "/etc/passwd"):
        with pytest.raises(PermissionDenied) as info:
            policy.readable(uri, "f")
        assert "MODELPLANE_X_STORAGE_ROOTS" in info.value.message
        assert str(tmp_path.resolve()) + "/outside" not in info.value.message.replace(uri, "")


def test_a_symlink_inside_a_root_does_not_lead_out(policy: Any, tmp_path: Path) -> None:
    (tmp_path / "secret.parquet").write_bytes(b"x")
    (tmp_path / "imports" / "file-link.parquet").symlink_to(tmp_path / "secret.parquet")
    (tmp_path / "imports" / "dir-link").symlink_to(tmp_path, target_is_directory=True)
    for uri in ("file-link.parquet", "dir-link/secret.parquet"):
        with pytest.raises(PermissionDenied):
            policy.readable(uri, "f")
    with pytest.raises(PermissionDenied):  # and nothing is written through one either
        policy.writable(str(tmp_path / "imports" / "dir-link" / "new.parquet"), "f")
    assert not (tmp_path / "new.parquet").exists()
    inner = tmp_path / "imports" / "inner-link.parquet"  # a link that stays inside is fine
    (tmp_path / "imports" / "real.parquet").write_bytes(b"x")
    inner.symlink_to(tmp_path / "imports" / "real.parquet")
    assert policy.readable(str(inner),
                           "f").path == (tmp_path / "imports" / "real.parquet").resolve()


def test_file_uris_other_schemes_and_buckets(policy: Any) -> None:
    assert policy.locate("s3://team-bucket/features/day=1/x.parquet", "f").path is None
    assert policy.locate("s3://team-bucket/features", "f").uri == "s3://team-bucket/features"
    assert policy.locate("gs://shared/any/thing.parquet",
                         "f").target == "gs://shared/any/thing.parquet"
    for uri in ("s3://team-bucket/featuresX/x.parquet", "s3://team-bucket/other/x.parquet",
                "s3://other-bucket/features/x.parquet", "gs://sharedX/x"):
        with pytest.raises(PermissionDenied) as info:
            policy.locate(uri, "f")
        assert "MODELPLANE_X_STORAGE_BUCKETS" in info.value.message
    with pytest.raises(InvalidArgument):
        policy.locate("s3://team-bucket/features/../secrets/x", "f")
    for uri in ("http://169.254.169.254/latest", "https://example.com/x.parquet",
                "ftp://host/x", "file://otherhost/etc/passwd", "hdfs://nn/x"):
        with pytest.raises(PermissionDenied):
            policy.locate(uri, "f")
    with pytest.raises(InvalidArgument):
        policy.locate("", "f")


def test_outputs_never_overwrite_and_stay_under_the_roots(policy: Any, tmp_path: Path) -> None:
    out = policy.writable("runs/1/out.parquet", "f")  # relative: under the exports root
    assert out.path == (tmp_path / "exports" / "runs" / "1" / "out.parquet").resolve()
    assert out.path.parent.is_dir() and not out.path.exists()
    out.path.write_bytes(b"first")
    with pytest.raises(AlreadyExists):
        policy.writable("runs/1/out.parquet", "f")
    assert policy.writable("runs/1/out.parquet", "f", overwrite=True).path == out.path
    with pytest.raises(PermissionDenied):
        policy.writable(str(tmp_path / "elsewhere" / "out.parquet"), "f")
    assert not (tmp_path / "elsewhere").exists()
    assert out.path.read_bytes() == b"first"


def test_wildcards_only_where_asked_and_only_in_the_file_name(policy: Any) -> None:
    with pytest.raises(InvalidArgument):
        policy.locate("day=*/x.parquet", "f", allow_glob=True)
    with pytest.raises(InvalidArgument):
        policy.locate("*.parquet", "f")
    assert policy.locate("views/*.parquet", "f", allow_glob=True).path is not None
    with pytest.raises(PermissionDenied):
        policy.locate("../*.parquet", "f", allow_glob=True)


def test_missing_files_inside_a_root_are_not_found(policy: Any) -> None:
    with pytest.raises(NotFound):
        policy.readable("nope.parquet", "f")


def test_the_service_default_roots_and_settings(tmp_path: Path) -> None:
    from modelplane.kit.locations import StoragePolicy

    extra = tmp_path / "shared"
    extra.mkdir()
    svc = ServiceSettings.from_env("validator", {
        "MODELPLANE_DATA_DIR": str(tmp_path / "data"),
        "MODELPLANE_VALIDATOR_STORAGE_ROOTS": str(extra),
        "MODELPLANE_STORAGE_BUCKETS": "s3://lake"})
    p = StoragePolicy.for_service(svc)
    data_dir = (tmp_path / "data" / "validator").resolve()
    assert p.roots == (data_dir / "imports", data_dir / "exports", extra.resolve())
    assert p.imports.is_dir() and p.exports.is_dir()
    assert p.locate("s3://lake/x.parquet", "f").path is None
    with pytest.raises(PermissionDenied) as info:
        p.locate(str(tmp_path / "data" / "admin.key"), "f")
    assert "MODELPLANE_VALIDATOR_STORAGE_ROOTS" in info.value.message
