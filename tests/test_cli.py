"""The pusher-fast command line, against the embedded local Pusher API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pusher_fast
from pusher_fast.__main__ import _feed, _LineSender, main
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
        proc.stdout.close()
        proc.stderr.close()


# -- options: version, defaults in the help, bad values are usage errors -------------------------


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"pusher-fast {pusher_fast.__version__} (signing: ")


def test_help_shows_every_default_and_warns_about_the_secret(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in [
        ("--batch-size BATCH_SIZE", "10"), ("--concurrency CONCURRENCY", "4"),
        ("--retries RETRIES", "5"), ("--timeout TIMEOUT", "5.0"), ("--start-line START_LINE", "1"),
        ("--max-queue MAX_QUEUE", "10000"), ("--progress-interval SECONDS", "10.0"),
    ]:  # fmt: skip
        help_text = text.split(option + " ", 1)[1].split(" --", 1)[0]
        assert f"(default: {default})" in help_text, option
    assert "Do not pass the secret on the command line" in text
    assert "$PUSHER_SECRET" in text and "--secret-file" in text
    assert "130 interrupted" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["send", "--batch-size", "0"], "--batch-size: must be >= 1, got '0'"),
        (["send", "--batch-size", "ten"], "--batch-size: expected an integer, got 'ten'"),
        (["send", "--concurrency", "-2"], "--concurrency: must be >= 1, got '-2'"),
        (["send", "--retries", "-1"], "--retries: must be >= 0"),
        (["send", "--start-line", "0"], "--start-line: must be >= 1"),
        (["send", "--max-queue", "0"], "--max-queue: must be >= 1"),
        (["send", "--progress-interval", "0"], "--progress-interval: must be a finite number > 0"),
        (["trigger", "a", "e", "--timeout", "nan"], "--timeout: must be a finite number > 0"),
        (["trigger", "a", "e", "--timeout", "soon"], "--timeout: expected a number"),
        (["trigger", "a", "e", "--port", "70000"], "--port: must be between 1 and 65535"),
        (["bench", "--seconds", "-1"], "--seconds: must be a finite number > 0"),
    ],
)
def test_bad_option_values_are_usage_errors(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err and "Traceback" not in err


def test_bad_option_value_in_a_process_is_exit_2_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pusher_fast", "send", "--batch-size", "0"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--batch-size" in result.stderr


# -- the secret: environment or file, never printed ---------------------------------------------


def _flags(server: PusherServer) -> list[str]:
    return ["--app-id", server.app_id, "--key", server.key, "--host", "127.0.0.1",
            "--port", str(server.port), "--no-ssl"]  # fmt: skip


def test_secret_from_the_environment(server: PusherServer, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PUSHER_URL")
    monkeypatch.setenv("PUSHER_SECRET", server.secret)
    code, _, _ = run(capsys, "trigger", "a", "e", "x", *_flags(server))
    assert code == 0 and len(server.events) == 1


def test_secret_from_a_file(server: PusherServer, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PUSHER_URL")
    monkeypatch.delenv("PUSHER_SECRET", raising=False)
    secret_file = tmp_path / "secret"
    secret_file.write_text(server.secret + "\n")  # the trailing newline of `echo` is dropped
    code, _, _ = run(capsys, "trigger", "a", "e", "x", *_flags(server), "--secret-file",
                     str(secret_file))  # fmt: skip
    assert code == 0 and len(server.events) == 1


def test_missing_secret_file_is_a_usage_error(server, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PUSHER_URL")
    missing = tmp_path / "nope"
    code, _, err = run(capsys, "trigger", "a", "e", *_flags(server), "--secret-file", str(missing))
    assert code == 2 and "cannot read --secret-file" in err and str(missing) in err


def test_wrong_secret_is_never_printed(server: PusherServer, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("PUSHER_URL")
    monkeypatch.setenv("PUSHER_SECRET", "hunter2-not-the-secret")
    source = tmp_path / "events.jsonl"
    source.write_text('{"channel":"a","name":"e","data":"x"}\n')
    for argv in (["trigger", "a", "e"], ["send", str(source), "--no-progress"], ["channels"]):
        code, out, err = run(capsys, *argv, *_flags(server))
        assert code == 2 and "credentials refused" in err
        assert "hunter2" not in out + err


# -- send: failures file with line numbers, progress, resuming -----------------------------------


def test_failures_file_holds_rejected_lines_and_failed_events_with_line_numbers(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"channel": "a", "name": "e", "data": "ok"}),
        "{not json",
        json.dumps({"channel": "a", "name": "e", "data": "too long for the server " * 3}),
        json.dumps({"channel": "bad channel!", "name": "e", "data": "x"}),
        json.dumps({"channel": "a", "name": "e", "data": "ok too"}),
    ]
    source.write_text("\n".join(lines) + "\n")
    failures = tmp_path / "failures.jsonl"
    with PusherServer(max_payload_bytes=40) as small:
        monkeypatch.setenv("PUSHER_URL", small.pusher_url)
        code, out, _ = run(capsys, "send", str(source), "--failures", str(failures),
                           "--no-progress", "--batch-size", "1")  # fmt: skip
        assert sorted(e.data for e in small.events) == ["ok", "ok too"]
    assert code == 1
    records = [json.loads(line) for line in failures.read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 3, 4]
    assert records[0]["error"].startswith("not JSON") and records[0]["input"] == "{not json"
    assert records[1]["status"] == 413 and records[1]["channel"] == "a"
    assert records[1]["data"] == "too long for the server " * 3
    assert "Invalid channel" in records[2]["error"] and records[2]["input"] == lines[3]
    summary = json.loads(out)
    assert summary["bad_lines"] == 2 and summary["failed"] == 1 and summary["delivered"] == 2


def test_start_line_skips_earlier_lines_and_keeps_source_numbers(
    server: PusherServer, capsys, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(
            json.dumps({"channel": "a", "name": "e", "data": str(n)}) + "\n" for n in range(1, 11)
        )
    )
    code, out, _ = run(capsys, "send", str(source), "--start-line", "6", "--no-progress")
    assert code == 0 and json.loads(out)["delivered"] == 5
    assert sorted(int(e.data) for e in server.events) == [6, 7, 8, 9, 10]


def _events_file(path: Path, count: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"channel": "a", "name": "e", "data": str(n)}) + "\n"
            for n in range(1, count + 1)
        )
    )
    return path


def test_progress_log_lines_when_not_on_a_terminal(
    server: PusherServer, capsys, tmp_path: Path
) -> None:
    source = _events_file(tmp_path / "events.jsonl", 300)
    server.stall_next(30, 0.01)  # long enough for a few log lines
    code, _, err = run(capsys, "send", str(source), "--progress-interval", "0.05",
                       "--batch-size", "5", "--concurrency", "1")  # fmt: skip
    assert code == 0
    progress = [line for line in err.splitlines() if "lines/s" in line]
    assert len(progress) >= 2
    assert all("/300 lines (" in line and " left, " in line for line in progress)
    assert progress[-1].startswith("pusher-fast: 300/300 lines (100.0%)")
    assert progress[-1].endswith("0 events failed")


def test_progress_bar_on_a_terminal(server: PusherServer, capsys, tmp_path, monkeypatch) -> None:
    source = _events_file(tmp_path / "events.jsonl", 200)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "send", str(source))
    assert code == 0
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in final and "200/200" in final and "line/s" in final


def test_progress_without_tqdm_falls_back_to_log_lines(
    server: PusherServer, capsys, tmp_path, monkeypatch
) -> None:
    source = _events_file(tmp_path / "events.jsonl", 50)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import fails
    code, _, err = run(capsys, "send", str(source))
    assert code == 0
    assert "pusher-fast[cli]" in err and "50/50 lines (100.0%)" in err


def test_ctrl_c_prints_the_line_to_resume_from(tmp_path: Path) -> None:
    count = 5000
    source = _events_file(tmp_path / "events.jsonl", count)
    failures = tmp_path / "failures.jsonl"
    with PusherServer() as slow:
        slow.stall_next(count + 10, 0.01)  # about 100 requests/s: never done before Ctrl-C
        proc = subprocess.Popen(
            [sys.executable, "-m", "pusher_fast", "send", str(source), "--failures", str(failures),
             "--batch-size", "1", "--concurrency", "2", "--max-queue", "20",
             "--progress", "--progress-interval", "0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT), PUSHER_URL=slow.pusher_url),
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            for line in proc.stderr:  # wait until it is sending
                if "lines/s" in line and not line.startswith("pusher-fast: 0/"):
                    break
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        delivered = sorted(int(e.data) for e in slow.events)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    resume = summary["resume_line"]
    assert summary["interrupted"] is True and 1 < resume < count
    assert f"resume with: pusher-fast send {source} --start-line {resume}" in err
    failed = [json.loads(line)["line"] for line in failures.read_text().splitlines()] if (
        failures.exists()) else []  # fmt: skip
    # every line before the resume line was delivered or is in the failures file; none after
    assert set(delivered) | set(failed) == set(range(1, resume))
    assert max(delivered) < resume


def test_ctrl_c_while_a_line_waits_for_room_gives_that_line_up_at_once(tmp_path: Path) -> None:
    """Ctrl-C while add() waits for room (the API is stalled): the line is not queued, reading
    stops within the 0.1 s wait, and the lines before it are all accounted for."""
    source = _events_file(tmp_path / "events.jsonl", 50)
    fired: list[float] = []
    with PusherServer() as stalled:
        stalled.stall_next(50, 3.0)
        client = pusher_fast.Pusher.from_url(stalled.pusher_url, timeout=2.0)
        sender = _LineSender(client, batch_size=1, concurrency=1, max_queue=2, retries=0)

        def ctrl_c_once_add_waits() -> None:
            while not sender._blocked:
                time.sleep(0.01)
            time.sleep(0.2)  # a few of its 0.1 s waits
            fired.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=ctrl_c_once_add_waits, daemon=True).start()
        with open(source, encoding="utf-8") as stream:
            run = _feed(sender, stream, 1)
        returned = time.monotonic()
        report = sender.close(timeout=0.1)
    assert run.interrupted and fired
    # Without giving up, add() would wait for the first request's 2 s timeout.
    assert returned - fired[0] < 1.0
    # The waiting line was not queued: it is the one to resume from.
    assert 1 <= run.last_read < 50 and report.submitted == run.last_read
    assert run.last_read + 1 not in sender._open_lines
    assert sorted(f["line"] for f in sender.failures) == list(range(1, run.last_read + 1))
    assert sender.lines_done == run.last_read


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_local_server_commands_show_defaults(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 10)" in out  # --max-batch-size / --batch-size


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
