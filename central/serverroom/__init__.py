"""The CEC server room: a signed-in staff web app (`central.serverroom.app.make_app`).

`make_app` and `Settings` are importable from here too; they load on first use, so
`central.manual` can use this package's texts without importing the web app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "make_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from central.serverroom import app

        return getattr(app, name)
    raise AttributeError(name)
