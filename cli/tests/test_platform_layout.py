"""The local platform's layout with replicas: ports, targets, per-process environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.cli.platform import Platform, parse_replicas


def test_replicas_are_parsed_and_bad_specs_refused() -> None:
    assert parse_replicas("serving=2, observability=3") == {"serving": 2, "observability": 3}
    assert parse_replicas("") == {}
    for bad, said in (("gateway=2", "the gateway runs once"), ("serving", "SERVICE=N"),
                      ("serving=two", "not a number"), ("serving=0", "between 1 and 8")):
        with pytest.raises(ValueError, match=said):
            parse_replicas(bad)


def test_each_replica_gets_its_own_ports_and_peers_get_every_replica(tmp_path: Path) -> None:
    p = Platform(data_dir=tmp_path, base_port=7100, replicas={"serving": 2})
    assert [n for n, _, _ in p.instance_names()] == [
        "featurestore", "registry", "validator", "serving", "serving-2", "observability",
        "gateway"]
    assert p.grpc_target("serving") == "ipv4:127.0.0.1:7104,127.0.0.1:7129"
    assert p.grpc_target("registry") == "127.0.0.1:7102"
    base = p.environment({})
    first = p.instance_environment(base, "serving", 0)
    second = p.instance_environment(base, "serving", 1)
    assert first["MODELPLANE_SERVING_ADDR"] == "127.0.0.1:7104"
    assert second["MODELPLANE_SERVING_ADDR"] == "127.0.0.1:7129"
    assert (first["MODELPLANE_SERVING_HTTP_ADDR"], second["MODELPLANE_SERVING_HTTP_ADDR"]) == (
        "127.0.0.1:7114", "127.0.0.1:7139")
    assert (first["MODELPLANE_METRICS_ADDR"], second["MODELPLANE_METRICS_ADDR"]) == (
        "127.0.0.1:7119", "127.0.0.1:7144")
    # its own spool and model cache; the shared key file
    assert first["MODELPLANE_DATA_DIR"] == str(tmp_path)
    assert second["MODELPLANE_DATA_DIR"] == str(tmp_path / "replicas" / "serving-2")
    assert second["MODELPLANE_API_KEYS_FILE"] == str(tmp_path / "api_keys.json")
    # everyone (the gateway too) reaches serving through both
    gateway = p.instance_environment(base, "gateway", 0)
    assert gateway["MODELPLANE_SERVING_TARGET"] == "ipv4:127.0.0.1:7104,127.0.0.1:7129"
    assert "MODELPLANE_METRICS_ADDR" not in gateway
    # all distinct
    ports = [int(env.rpartition(":")[2]) for e in (first, second)
             for k, env in e.items() if k in ("MODELPLANE_SERVING_ADDR",
                                              "MODELPLANE_SERVING_HTTP_ADDR",
                                              "MODELPLANE_METRICS_ADDR")]
    assert len(set(ports)) == 6


def test_state_round_trips(tmp_path: Path) -> None:
    p = Platform(data_dir=tmp_path, base_port=7300, replicas={"observability": 2},
                 postgres=True, supervisor_pid=42,
                 instances={"observability": {"state": "running", "restarts": 1}})
    p.save()
    assert Platform.load(tmp_path) == p
    (tmp_path / "platform.json").write_text("{half")
    assert Platform.load(tmp_path) is None
