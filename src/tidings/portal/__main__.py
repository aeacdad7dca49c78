"""``python -m tidings.portal --port P [--host 127.0.0.1] [--seed]``: the
portal and its embedded hub under uvicorn (settings: see
:mod:`tidings.portal.settings`)."""

from __future__ import annotations

import argparse

from tidings.http.server import TidingsServer, uvicorn_config
from tidings.logs import configure_logging
from tidings.portal.app import create_portal
from tidings.portal.settings import PAYMENT_SECRET_ENV, from_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tidings.portal")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", action="store_true", help="create the demo accounts and history")
    args = parser.parse_args(argv)
    settings = from_env()
    configure_logging(settings.hub.log_level, json=settings.hub.json_logs)
    if settings.payment_secret_generated:
        print(f"payment webhook secret ({PAYMENT_SECRET_ENV}): {settings.payment_secret}")
    app = create_portal(settings, seed=args.seed)
    served = settings.hub.model_copy(update={"host": args.host, "port": args.port})
    # The hub's server: on shutdown it ends the open streams first (they never
    # finish on their own), then waits for the other requests.
    server = TidingsServer(uvicorn_config(app, served), app.state.portal.hub)
    server.run()


if __name__ == "__main__":
    main()
