"""What the local platform offers: session kinds, images and the resource context.

The defaults copy the shipped server: the chart's ``k8s-resources.json`` context and an image
list in the ``/v1/image`` shape. An image that is *not* in the list (for example
:data:`PRIVATE_IMAGE_EXAMPLE`) counts as private and needs ``X-Skaha-Registry-Auth``.

Example:
    >>> [i["id"] for i in default_images() if "headless" in i["types"]][:1]
    ['images.canfar.net/skaha/base-notebook:latest']
    >>> default_context(max_sessions=5)["maxInteractiveSessions"]
    '5'
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = [
    "IMAGE_TYPES",
    "INTERACTIVE_KINDS",
    "PRIVATE_IMAGE_EXAMPLE",
    "SESSION_KINDS",
    "default_context",
    "default_images",
    "make_image",
]

# Kinds a session can be created as (``type`` on POST), in the server's enum order.
SESSION_KINDS = ("desktop", "notebook", "carta", "contributed", "firefly", "headless")
INTERACTIVE_KINDS = frozenset(SESSION_KINDS) - {"headless"}
# Values ``GET /v1/image?type=`` accepts (case-sensitive); anything else is a 400.
IMAGE_TYPES = frozenset(
    {"carta", "notebook", "desktop", "contributed", "headless", "firefly", "desktop-app"}
)

PRIVATE_IMAGE_EXAMPLE = "images.canfar.net/private/analysis:1.0"

# The public images the canfar documentation and this project's examples launch, with the
# types their Harbor labels give them (v1 launches any image as any type; the list decides
# only which images need no registry credentials).
_IMAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("images.canfar.net/skaha/base-notebook:latest", ("notebook", "headless")),
    ("images.canfar.net/skaha/astroml:latest", ("notebook", "headless")),
    ("images.canfar.net/skaha/astroml:26.04", ("notebook", "headless")),
    ("images.canfar.net/skaha/astroml-notebook:latest", ("notebook",)),
    ("images.canfar.net/skaha/terminal:1.1.2", ("desktop-app", "headless")),
    ("images.canfar.net/skaha/terminal:1.1.1", ("desktop-app", "headless")),
    ("images.canfar.net/skaha/desktop:1.2.1", ("desktop",)),
    ("images.canfar.net/skaha/carta:5.1.0", ("carta",)),
    ("images.canfar.net/skaha/firefly:2025.2", ("firefly",)),
    ("images.canfar.net/skaha/marimo:latest", ("contributed",)),
    ("images.canfar.net/skaha/python:3.12", ("headless",)),
)


def make_image(image_id: str, types: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """One ``/v1/image`` entry; the digest is a stable fake derived from the id."""
    digest = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
    return {"id": image_id, "types": list(types), "digest": digest}


def default_images() -> list[dict[str, Any]]:
    """The canned public image list (a fresh copy each call)."""
    return [make_image(image_id, types) for image_id, types in _IMAGES]


def default_context(max_sessions: int = 5) -> dict[str, Any]:
    """The shipped ``k8s-resources.json`` context, with the string ``maxInteractiveSessions``."""
    return {
        "cores": {
            "default": 2,
            "defaultRequest": 1,
            "defaultLimit": 8,
            "options": list(range(1, 17)),
        },
        "memoryGB": {
            "default": 8,
            "defaultRequest": 4,
            "defaultLimit": 32,
            "options": [
                1,
                2,
                4,
                6,
                8,
                10,
                12,
                14,
                16,
                20,
                24,
                26,
                28,
                30,
                32,
                36,
                40,
                44,
                48,
                56,
                64,
                80,
                92,
                112,
                128,
                140,
                170,
                192,
            ],
        },
        "gpus": {"options": list(range(1, 29))},
        # The chart quotes it, so the file-mode server answers a JSON string.
        "maxInteractiveSessions": str(max_sessions),
    }
