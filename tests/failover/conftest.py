"""The failover suite (``make failover``): real ``idp serve`` nodes behind nginx. Not
part of ``make test``: collected only with ``IDP_FAILOVER=1``."""

from __future__ import annotations

import os

if os.environ.get("IDP_FAILOVER") != "1":
    collect_ignore_glob = ["test_*.py"]
