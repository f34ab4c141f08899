"""``common.cni.startup.plugin_main``, the ``main()`` shared by ``danm`` and ``fakeipam``, run
in-process over a fake process boundary (tests/unit/test_entry_points.py runs the real
executables)."""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from typing import IO

import pytest

from common.cni.startup import plugin_main
from common.version import __version__

HINT = "p is a CNI plugin; try CNI_COMMAND=VERSION p\n"


class FakeStdin(io.TextIOWrapper):
    """A text stdin over ``data`` that says whether it is a terminal."""

    def __init__(self, data: bytes, *, tty: bool) -> None:
        super().__init__(io.BytesIO(data))
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class RecordingRunner:
    """Stands in for a plugin's ``run_cni``: records what it got, returns ``status``."""

    def __init__(self, status: int = 0) -> None:
        self.status = status
        self.calls: list[tuple[dict[str, str], bytes, IO[str], IO[str]]] = []

    def __call__(
        self, environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]
    ) -> int:
        self.calls.append((dict(environ), stdin.read(), stdout, stderr))
        return self.status


@pytest.fixture
def no_cni_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CNI_COMMAND", raising=False)
    return monkeypatch


def _main(*argv: str, runner: RecordingRunner | None = None) -> int:
    return plugin_main("p", "A plugin.", HINT, runner or RecordingRunner(), list(argv))


def test_a_runtime_call_gets_the_environment_and_the_streams(
    no_cni_env: pytest.MonkeyPatch,
) -> None:
    no_cni_env.setenv("CNI_COMMAND", "ADD")
    no_cni_env.setattr(sys, "stdin", FakeStdin(b'{"cniVersion": "1.0.0"}', tty=False))
    runner = RecordingRunner(status=7)
    assert _main(runner=runner) == 7
    [(environ, data, stdout, stderr)] = runner.calls
    assert environ["CNI_COMMAND"] == "ADD"
    assert data == b'{"cniVersion": "1.0.0"}'
    assert (stdout, stderr) == (sys.stdout, sys.stderr)


def test_a_person_typing_cni_command_at_a_terminal_is_not_read_from(
    no_cni_env: pytest.MonkeyPatch,
) -> None:
    no_cni_env.setenv("CNI_COMMAND", "VERSION")
    no_cni_env.setattr(sys, "stdin", FakeStdin(b"typed ahead", tty=True))
    runner = RecordingRunner()
    assert _main(runner=runner) == 0
    assert runner.calls[0][1] == b""


def test_no_arguments_and_no_cni_command_is_the_usage_hint(
    no_cni_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = RecordingRunner()
    assert _main(runner=runner) == 2
    assert runner.calls == []
    assert capsys.readouterr() == ("", HINT)


def test_version_and_help_are_answered_without_a_cni_call(
    no_cni_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = RecordingRunner()
    assert _main("--version", runner=runner) == 0
    assert capsys.readouterr().out == f"p (danm-py) {__version__}\n"
    assert _main("--help", runner=runner) == 0
    assert "A plugin." in capsys.readouterr().out
    assert runner.calls == []


def test_an_unknown_flag_is_an_argparse_error(
    no_cni_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main("--frobnicate") == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_arguments_win_over_cni_command(
    no_cni_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_cni_env.setenv("CNI_COMMAND", "ADD")
    runner = RecordingRunner()
    assert _main("--version", runner=runner) == 0
    assert runner.calls == []
    assert __version__ in capsys.readouterr().out
