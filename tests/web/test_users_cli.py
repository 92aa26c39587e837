"""`posgw center users` and the `[web]` configuration, through the real command."""

from __future__ import annotations

from pathlib import Path

from posgw.center.db import CenterStore
from posgw.center.web.accounts import LoginOutcome, check_password
from posgw.center.web.audit import latest
from tests.e2e.harness import write_toml
from tests.posgw_script import run_posgw


def center_config(tmp_path: Path, **web: object) -> Path:
    table: dict[str, dict[str, object]] = {
        "center": {"database": f"sqlite:///{tmp_path / 'center.db'}"}}
    if web:
        table["web"] = web
    return write_toml(tmp_path / "center.toml", table)


def test_add_list_disable_an_account(tmp_path: Path) -> None:
    config = center_config(tmp_path)
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    added = run_posgw("center", "-c", str(config), "users", "add", "lan", "--role", "risk",
                      "--password-file", str(secret), "--language", "vi")
    assert added.returncode == 0, added.stderr
    listed = run_posgw("center", "-c", str(config), "users", "list")
    assert "lan" in listed.stdout and "risk" in listed.stdout and "active" in listed.stdout
    assert "a long enough password" not in listed.stdout
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    try:
        assert check_password(store.engine, "lan", "a long enough password") is LoginOutcome.OK
        assert run_posgw("center", "-c", str(config), "users", "disable", "lan").returncode == 0
        assert "disabled" in run_posgw("center", "-c", str(config), "users", "list").stdout
        actions = [(entry.action, entry.object, entry.actor.startswith("cli:"))
                   for entry in reversed(latest(store.engine))]
        assert actions == [("add account", "lan (risk)", True), ("disable account", "lan", True)]
        assert check_password(store.engine, "lan", "a long enough password") is (
            LoginOutcome.FAILED)
    finally:
        store.close()


def test_a_duplicate_name_or_a_short_password_exits_2(tmp_path: Path) -> None:
    config = center_config(tmp_path)
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    args = ("center", "-c", str(config), "users", "add", "lan", "--role", "viewer",
            "--password-file", str(secret))
    assert run_posgw(*args).returncode == 0
    again = run_posgw(*args)
    assert again.returncode == 2 and "exists already" in again.stderr
    secret.write_text("short\n")
    short = run_posgw("center", "-c", str(config), "users", "add", "mai", "--role", "viewer",
                      "--password-file", str(secret))
    assert short.returncode == 2 and "at least 10 characters" in short.stderr


def test_an_unknown_web_key_is_one_line_naming_it(tmp_path: Path) -> None:
    config = center_config(tmp_path, listen="127.0.0.1:8080", sesion_ttl_s=60)
    result = run_posgw("center", "-c", str(config), "users", "list")
    assert result.returncode == 2
    assert "web.sesion_ttl_s" in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_bad_listen_address_is_refused(tmp_path: Path) -> None:
    config = center_config(tmp_path, listen="8080")
    result = run_posgw("center", "-c", str(config), "web")
    assert result.returncode == 2 and "web.listen" in result.stderr


def test_a_one_time_password_is_printed_once_and_must_be_replaced(tmp_path: Path) -> None:
    config = center_config(tmp_path)
    added = run_posgw("center", "-c", str(config), "users", "add", "mai", "--role", "admin",
                      "--one-time")
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("one-time password: ", 1)[1].split()[0]
    assert len(password) >= 16
    listed = run_posgw("center", "-c", str(config), "users", "list")
    assert "active, one-time password" in listed.stdout and password not in listed.stdout
    store = CenterStore(f"sqlite:///{tmp_path / 'center.db'}")
    try:
        assert check_password(store.engine, "mai", password) is LoginOutcome.OK
        assert password not in str([vars(entry) for entry in latest(store.engine)])
    finally:
        store.close()
    both = run_posgw("center", "-c", str(config), "users", "add", "lan", "--role", "admin",
                     "--one-time", "--password-file", str(tmp_path / "nothing"))
    assert both.returncode == 2 and "not both" in both.stderr
