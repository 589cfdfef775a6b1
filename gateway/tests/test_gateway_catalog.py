"""Discovery: every installed modelplane contract is found and routed, none hard-coded."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool

from modelplane.gateway.catalog import Catalog, backend_of_package, discover_contract_modules
from modelplane.gateway.routing import Router


def test_every_rpc_of_every_installed_contract_is_exposed() -> None:
    modules = discover_contract_modules()
    catalog = Catalog.discover()
    exposed = {m.path for m in catalog.methods}
    expected = set()
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                expected.add(f"/{service.full_name}/{method.name}")
    assert expected and expected == exposed
    for method in catalog.methods:
        assert method.backend == method.descriptor.containing_service.full_name.split(".")[1]
        assert method.access in ("read", "write", "admin")


def test_backend_is_the_package_service_segment() -> None:
    assert backend_of_package("modelplane.registry.v1") == "registry"


def test_router_finds_each_binding_by_an_example_path(contract: Any) -> None:
    catalog = Catalog.from_files([contract.pb2.DESCRIPTOR])
    router = Router(catalog.bindings)
    examples = {
        ("GET", "/v1/shelves/a/widgets/b"): "GetWidget",
        ("POST", "/v1/shelves/a/widgets/b:score"): "ScoreWidget",
        ("GET", "/v1/widgets:watch"): "WatchWidgets",
        ("GET", "/v1/widgets"): "ListWidgets",
        ("GET", "/v1/widgets/pages/3"): "ListWidgets",
        ("POST", "/v1/shelves/a:purge"): "PurgeShelf",
        ("GET", "/v1/files/x/y/z"): "GetFile",
    }
    for (method, path), rpc in examples.items():
        found = router.find(method, path)
        assert found is not None, path
        assert found[0].method.descriptor.name == rpc
    assert router.find("GET", "/v2/widgets") is None
    assert router.allowed_methods("/v1/shelves/a/widgets/b") == ["DELETE", "GET", "PATCH"]
    assert descriptor_pool.Default().FindServiceByName("modelplane.gatewaytest.v1.WidgetService")
