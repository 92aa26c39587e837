"""The console application: `create_app(config)` gives the ASGI app that
`posgw center web` serves with uvicorn.

It keeps nothing in memory that matters: accounts, sessions and the audit
trail are tables in the center database, so several processes can serve
one center behind a load balancer.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from posgw.center.config import CenterConfig
from posgw.center.db import CenterStore
from posgw.center.web import cases, login, merchants, operations, pages, password
from posgw.center.web.console import HERE, Console
from posgw.center.web.guard import SecurityHeaders
from posgw.center.web.models import create_console_tables


def routes() -> list[Route | Mount]:
    return [
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/", pages.home, methods=["GET"]),
        Route("/search", pages.search_form, methods=["GET"]),
        Route("/search", pages.search_submit, methods=["POST"]),
        Route("/tx/{event_id}", pages.transaction, methods=["GET"]),
        Route("/cases", cases.queue, methods=["GET"]),
        Route("/cases/{case_id}", cases.case_page, methods=["GET"]),
        Route("/cases/{case_id}/release", cases.release, methods=["POST"]),
        Route("/cases/{case_id}/return", cases.return_to_card, methods=["POST"]),
        Route("/cases/{case_id}/expire", cases.expire, methods=["POST"]),
        Route("/cases/{case_id}/evidence", cases.upload_evidence, methods=["POST"]),
        Route("/cases/{case_id}/evidence/{sha256}", cases.download_evidence, methods=["GET"]),
        Route("/account/language", pages.account_language, methods=["POST"]),
        Route("/dashboard", operations.dashboard, methods=["GET"]),
        Route("/fleet", operations.fleet, methods=["GET"]),
        Route("/fleet/{branch}/{terminal}", operations.fleet_terminal, methods=["GET"]),
        Route("/fleet/{branch}/{terminal}/decommission", operations.decommission_confirm,
              methods=["GET"]),
        Route("/fleet/{branch}/{terminal}/decommission", operations.decommission_submit,
              methods=["POST"]),
        Route("/reconciliation", operations.reconciliation, methods=["GET"]),
        Route("/merchants", merchants.register, methods=["GET"]),
        Route("/merchants/{merchant_id}", merchants.merchant_page, methods=["GET"]),
        Route("/account/password", password.password_form, methods=["GET"]),
        Route("/account/password", password.password_submit, methods=["POST"]),
        Route("/admin/users", pages.admin_users, methods=["GET"]),
        Route("/admin/audit", pages.admin_audit, methods=["GET"]),
        Route("/admin/audit.csv", pages.admin_audit_csv, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(config: CenterConfig, store: CenterStore | None = None) -> Starlette:
    """The console over `config`'s center database (its tables made if missing)."""
    store = store or CenterStore(config.database)
    create_console_tables(store.engine)
    app = Starlette(routes=routes(), middleware=[Middleware(SecurityHeaders)])
    app.state.console = Console(config, store)
    return app
