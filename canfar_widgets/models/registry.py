"""Container-registry credentials for private images (``X-Skaha-Registry-Auth``)."""

from __future__ import annotations

import base64
import os
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["ContainerRegistry", "registry_from_environment"]


def _env(name: str) -> str | None:
    """An environment variable by case-insensitive name (as pydantic-settings reads them).

    Empty values count as unset: ``export CANFAR_REGISTRY__SECRET=`` should not turn into a
    "secret too short" error.
    """
    value = os.environ.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in os.environ.items():
            if key.lower() == wanted:
                value = candidate
                break
    return value if value else None


class ContainerRegistry(BaseModel):
    """Credentials for launching private images (sent as ``X-Skaha-Registry-Auth``).

    ``ContainerRegistry()`` with no arguments reads ``CANFAR_REGISTRY__USERNAME``,
    ``CANFAR_REGISTRY__SECRET`` and ``CANFAR_REGISTRY__URL`` (or the older
    ``SKAHA_REGISTRY_USERNAME``/``SKAHA_REGISTRY_SECRET``). The secret never appears in
    ``repr``, ``str`` or ``model_dump()``.

    Example:
        >>> registry = ContainerRegistry(username="bob", secret="s3cret")
        >>> registry.header_value()
        'Ym9iOnMzY3JldA=='
        >>> registry
        ContainerRegistry(url=None, username='bob', secret=SecretStr('**********'))
    """

    model_config = ConfigDict(
        defer_build=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True
    )

    url: AnyHttpUrl | None = None
    username: str | None = Field(default=None, min_length=1, max_length=255)
    secret: SecretStr | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        # Only a bare ContainerRegistry() consults the environment: explicit values must
        # never be silently mixed with an unrelated shell export.
        if isinstance(data, dict) and not data:
            return registry_from_environment() or {}
        return data

    @model_validator(mode="after")
    def _both_or_neither(self) -> ContainerRegistry:
        # Same words as the official client, so documentation and searches still match.
        if self.username and not self.secret:
            raise ValueError("container registry secret is required.")
        if self.secret and not self.username:
            raise ValueError("container registry username is required.")
        return self

    def header_value(self) -> str | None:
        """``base64("username:secret")`` for ``X-Skaha-Registry-Auth``, or None if unset."""
        if not (self.username and self.secret):
            return None
        raw = f"{self.username}:{self.secret.get_secret_value()}"
        return base64.b64encode(raw.encode()).decode()


def registry_from_environment() -> dict[str, str] | None:
    """Registry fields from the environment, or None when none are set.

    ``CANFAR_REGISTRY__*`` wins; the pre-0.6 ``SKAHA_REGISTRY_*`` names are a fallback.
    """
    found = {
        field: value
        for field in ("url", "username", "secret")
        if (value := _env(f"CANFAR_REGISTRY__{field.upper()}"))
    }
    if not found:
        found = {
            field: value
            for field in ("username", "secret")
            if (value := _env(f"SKAHA_REGISTRY_{field.upper()}"))
        }
    return found or None
