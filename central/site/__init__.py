"""The public results site and open data API (`central.site.app.make_site`).

`make_site` and `Settings` are importable from here too; they load on first use, so
a tool that only needs the site's pure parts (views, open data formats) does not
import the web app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "make_site", "refresh"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from central.site import app

        return getattr(app, name)
    raise AttributeError(name)
