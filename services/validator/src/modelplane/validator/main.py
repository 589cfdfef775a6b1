"""Entry point: ``modelplane-validator`` / ``python -m modelplane.validator.main``.

The wiring, start and stop are in ``runtime.py``.
"""

from __future__ import annotations

import asyncio

from modelplane.kit.server import serve
from modelplane.validator.runtime import ValidatorRuntime, build_spec
from modelplane.validator.settings import ValidatorSettings


def main() -> None:
    settings = ValidatorSettings.from_env()
    asyncio.run(serve(build_spec(ValidatorRuntime(settings)), settings.service))


if __name__ == "__main__":
    main()
