"""The soak's fault schedule, options and center counts, without running a soak."""

from __future__ import annotations

from pathlib import Path

from bench.soak_faults import moments
from bench.soak_options import command_line, parse_args
from bench.soak_stack import ChildProcess, center_counts


def test_a_fault_is_scheduled_only_when_it_ends_before_the_traffic() -> None:
    # 60 s of traffic from t=100, every 20 s, down 5 s: 120 and 140 (160 + 5 > 160).
    assert list(moments(100.0, 20.0, 160.0, lasting=5.0)) == [120.0, 140.0]


def test_an_interval_of_zero_turns_a_fault_off() -> None:
    assert list(moments(0.0, 0.0, 600.0)) == []


def test_an_offset_staggers_a_second_center_between_the_first_ones_kills() -> None:
    first = list(moments(0.0, 150.0, 600.0))
    second = list(moments(0.0, 150.0, 600.0, offset=75.0))
    assert first == [150.0, 300.0, 450.0] and second == [225.0, 375.0, 525.0]


def test_the_defaults_put_every_fault_into_a_ten_minute_run() -> None:
    args = parse_args(["--postgres"])
    until = args.minutes * 60
    for every, lasting in ((args.broker_restart_every, args.broker_outage),
                           (args.broker_kill_every, args.broker_outage),
                           (args.kill_every, 0.0), (args.center_kill_every, 0.0),
                           (args.postgres_restart_every, args.postgres_outage)):
        assert list(moments(0.0, every, until, lasting=lasting)), every


def test_several_centers_share_a_group_when_none_is_named() -> None:
    assert parse_args(["--centers", "2"]).center_share_group == "center"
    assert parse_args(["--centers", "2", "--center-share-group", "g"]).center_share_group == "g"
    assert parse_args([]).center_share_group == ""


def test_the_command_line_names_what_differs_from_the_defaults() -> None:
    args = parse_args(["--minutes", "30", "--broker-kill-every", "0", "--centers", "2",
                       "--postgres"])
    assert command_line(args) == ("python bench/soak.py --minutes 30 --broker-kill-every 0 "
                                  "--centers 2 --postgres")


def test_center_counts_add_up_every_clean_stop_of_every_center(tmp_path: Path) -> None:
    line = "posgw center: stopped; ingested {}, duplicates {}, quarantined {}\n"
    first, second = tmp_path / "center-1.log", tmp_path / "center-2.log"
    first.write_text(line.format(10, 2, 0) + "killed here: no line\n" + line.format(5, 1, 1))
    second.write_text(line.format(7, 0, 0))
    centers = [ChildProcess(["posgw"], first), ChildProcess(["posgw"], second)]
    counts = center_counts(centers)
    assert counts is not None
    assert (counts.ingested, counts.duplicates, counts.quarantined) == (22, 3, 1)


def test_center_counts_are_unknown_when_no_center_stopped_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "center-1.log"
    log.write_text("center subscribed ...\n")
    assert center_counts([ChildProcess(["posgw"], log)]) is None
