"""The pusher-fast command line, against the embedded local Pusher API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pusher_fast.__main__ import main
from pusher_fast.testing import PusherServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with PusherServer() as srv:
        monkeypatch.setenv("PUSHER_URL", srv.pusher_url)
        yield srv


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_trigger_sends_one_event(server: PusherServer, capsys) -> None:
    code, out, _ = run(capsys, "trigger", "orders", "created", '{"id":1}')
    assert code == 0
    assert json.loads(out) == {}
    (event,) = server.events
    assert (event.channel, event.name, event.data) == ("orders", "created", '{"id":1}')


def test_trigger_with_bad_channel_is_a_usage_error(server: PusherServer, capsys) -> None:
    code, _, err = run(capsys, "trigger", "bad channel", "e")
    assert code == 2
    assert "bad channel" in err and "Invalid channel" in err
    assert server.events == []


def test_queries_print_the_api_answer(server: PusherServer, capsys) -> None:
    server.add_member("presence-room", "u1")
    server.add_subscriber("orders", 3)
    code, out, _ = run(capsys, "channels", "--prefix", "presence-", "--info", "user_count")
    assert code == 0 and json.loads(out) == {"channels": {"presence-room": {"user_count": 1}}}
    code, out, _ = run(capsys, "channel", "orders", "--info", "subscription_count")
    assert code == 0 and json.loads(out) == {"occupied": True, "subscription_count": 3}
    code, out, _ = run(capsys, "users", "presence-room")
    assert code == 0 and json.loads(out) == {"users": [{"id": "u1"}]}


def test_send_reports_bad_lines_and_sends_the_rest(
    server: PusherServer, capsys, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"channel": "a", "name": "e", "data": {"n": 1}}),
        "not json",
        json.dumps({"channel": "bad channel", "name": "e", "data": 1}),
        json.dumps({"name": "e", "data": 1}),
        "",
        json.dumps({"channels": ["b", "c"], "name": "e", "data": "two"}),
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "send", str(source), "--no-progress")
    assert code == 1
    summary = json.loads(out)
    assert summary["submitted"] == 3 and summary["delivered"] == 3 and summary["bad_lines"] == 3
    assert "line 2: not JSON" in err
    assert "line 3:" in err and "Invalid channel" in err
    assert "line 4: missing channel" in err
    assert sorted(e.channel for e in server.events) == ["a", "b", "c"]


def test_send_writes_failures_for_replay(capsys, tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(json.dumps({"channel": "a", "name": "e", "data": str(i)}) + "\n" for i in range(5))
    )
    failures = tmp_path / "failed.jsonl"
    # A server whose payload limit refuses every event: 413, never retried.
    with PusherServer(max_payload_bytes=0) as strict:
        monkeypatch.setenv("PUSHER_URL", strict.pusher_url)
        code, out, _ = run(
            capsys, "send", str(source), "--failures", str(failures), "--no-progress"
        )
        assert code == 1
        summary = json.loads(out)
        assert summary["delivered"] == 0 and summary["failed"] == 5
        assert summary["failures_file"] == str(failures)
        assert strict.events == []
    replay = [json.loads(line) for line in failures.read_text().splitlines()]
    assert sorted(r["data"] for r in replay) == [str(i) for i in range(5)]
    assert all(r["status"] == 413 for r in replay)
    # the failures file is itself valid input: replaying it delivers everything
    with PusherServer() as server:
        monkeypatch.setenv("PUSHER_URL", server.pusher_url)
        code, out, _ = run(capsys, "send", str(failures), "--no-progress")
        assert code == 0 and json.loads(out)["delivered"] == 5
        assert sorted(e.data for e in server.events) == [str(i) for i in range(5)]


def test_api_error_on_the_preflight_is_exit_3(server: PusherServer, capsys, tmp_path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text('{"channel":"a","name":"e","data":"x"}\n')
    server.fail_next(1, status=500)
    code, _, err = run(capsys, "send", str(source), "--no-progress")
    assert code == 3 and "API error" in err
    assert server.events == []


def test_send_reads_stdin(server: PusherServer, capsys, monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"channel":"a","name":"e","data":"x"}\n'))
    code, out, _ = run(capsys, "send", "--no-progress")
    assert code == 0 and json.loads(out)["delivered"] == 1


def test_unreachable_server_is_one_line_and_exit_3(capsys, monkeypatch) -> None:
    monkeypatch.setenv("PUSHER_URL", f"http://k:s@127.0.0.1:{free_port()}/apps/1")
    code, _, err = run(capsys, "trigger", "a", "e", "--timeout", "2")
    assert code == 3
    assert err.count("\n") == 1 and "cannot reach the API" in err


def test_wrong_secret_is_a_credentials_error(server: PusherServer, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PUSHER_URL", server.pusher_url.replace(server.secret, "wrong"))
    code, _, err = run(capsys, "send", "--no-progress")
    assert code == 2 and "credentials refused" in err


def test_no_credentials_is_a_usage_error(capsys, monkeypatch) -> None:
    monkeypatch.delenv("PUSHER_URL", raising=False)
    code, _, err = run(capsys, "trigger", "a", "e")
    assert code == 2 and "no credentials" in err


def test_malformed_url_does_not_echo_the_secret(capsys, monkeypatch) -> None:
    monkeypatch.setenv("PUSHER_URL", "http://key:topsecret@host/not-apps")
    code, _, err = run(capsys, "trigger", "a", "e")
    assert code == 2 and "topsecret" not in err


def test_flags_instead_of_url(server: PusherServer, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PUSHER_URL")
    code, _, _ = run(
        capsys, "trigger", "a", "e", "x", "--app-id", server.app_id, "--key", server.key,
        "--secret", server.secret, "--host", "127.0.0.1", "--port", str(server.port), "--no-ssl",
    )  # fmt: skip
    assert code == 0 and len(server.events) == 1


def test_demo_runs_end_to_end(capsys) -> None:
    code, out, _ = run(capsys, "demo", "--events", "300")
    assert code == 0
    assert "Server accepted 300 events (all)" in out
    assert "signature verifies" in out


def test_serve_prints_a_usable_pusher_url() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pusher_fast", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = None
        for _ in range(20):
            line = proc.stdout.readline()
            if "PUSHER_URL" in line:
                url = line.split("PUSHER_URL=", 1)[-1].strip().strip("'\"")
                break
        assert url and url.startswith("http://"), "serve printed no PUSHER_URL"
        result = subprocess.run(
            [sys.executable, "-m", "pusher_fast", "trigger", "a", "e", "hello"],
            env=dict(env, PUSHER_URL=url),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {}
    finally:
        proc.terminate()
        proc.wait(10)


def test_bench_signing_prints_one_row_per_shape(capsys) -> None:
    code, out, _ = run(capsys, "bench", "--signing", "--seconds", "0.002")
    assert code == 0
    lines = out.splitlines()
    assert "HMAC by" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == [
        "case", "pusher_fast", "hashlib/hmac", "official", "vs official", "vs hashlib/hmac",
    ]  # fmt: skip
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert [row[0] for row in rows] == [
        "trigger 100 B",
        "trigger 9 KB",
        "trigger_batch 10 x 100 B",
        "authenticate private",
        "authenticate presence",
        "validate_webhook 1 KB",
    ]
    for row in rows:
        assert len(row) == 6
        for rate in row[1:4]:  # the official library is a test dependency: all three ran
            assert float(rate.replace(",", "")) > 0
        assert row[4].endswith("x") and row[5].endswith("x")
