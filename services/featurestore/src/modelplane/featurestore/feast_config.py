"""Feast's ``RepoConfig`` built in code from our settings (no feature_store.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from modelplane.featurestore.settings import FeatureStoreSettings


@dataclass(frozen=True)
class PostgresParams:
    host: str
    port: int
    database: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> PostgresParams:
        parsed = urlparse(url)
        return cls(host=parsed.hostname or "127.0.0.1", port=parsed.port or 5432,
                   database=(parsed.path or "/postgres").lstrip("/") or "postgres",
                   user=unquote(parsed.username or "postgres"),
                   password=unquote(parsed.password or ""))

    def feast_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "database": self.database,
                "db_schema": "public", "user": self.user, "password": self.password,
                "sslmode": "prefer"}

    @property
    def sqlalchemy_url(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user) + (f":{quote(self.password)}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.database}"

    @property
    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, dbname=self.database,
                             user=self.user, password=self.password or None)


def redis_connection_string(url: str) -> str:
    """``redis://[:pw@]host:port/db`` -> Feast's ``host:port,db=N[,password=pw]``."""
    parsed = urlparse(url)
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    db = (parsed.path or "/0").lstrip("/") or "0"
    parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def build_repo_config(settings: FeatureStoreSettings) -> Any:
    from feast.repo_config import RepoConfig

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pg = PostgresParams.from_url(settings.database_url) if settings.database_url else None

    if settings.registry == "postgres":
        assert pg is not None
        registry: dict[str, Any] = {"registry_type": "sql", "path": pg.sqlalchemy_url,
                                    "cache_ttl_seconds": 60, "sqlalchemy_config_kwargs":
                                    {"pool_pre_ping": True}}
    else:
        registry = {"registry_type": "file", "path": str(settings.data_dir / "registry.db"),
                    "cache_ttl_seconds": 60}

    if settings.online_store == "postgres":
        assert pg is not None
        online: dict[str, Any] = {"type": "postgres", **pg.feast_dict()}
    elif settings.online_store == "redis":
        online = {"type": "redis", "connection_string": redis_connection_string(settings.redis_url)}
    else:
        online = {"type": "sqlite", "path": str(settings.data_dir / "online_store.db")}

    if settings.offline_store == "postgres":
        assert pg is not None
        offline: dict[str, Any] = {"type": "postgres", **pg.feast_dict()}
    else:
        offline = {"type": "duckdb"}

    return RepoConfig(project=settings.project, provider="local", registry=registry,
                      online_store=online, offline_store=offline,
                      entity_key_serialization_version=3, repo_path=settings.data_dir)
