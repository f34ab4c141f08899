"""``common.cni.startup``: stored dataclass code gives the same classes; the fast exit is taken
only when the ordinary exit would have nothing to do. Each case runs in a fresh interpreter,
since both change process-wide state (``dataclasses``, the process itself)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]

_MODULE = """\
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)
"""

_RECORD = """\
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from common.cni.startup import record_dataclass_code
Path(sys.argv[2]).write_bytes(record_dataclass_code(["points"]))
"""

_USE = """\
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import dataclasses
from common.cni.startup import use_dataclass_code

class Loader:
    def get_data(self, name):
        return Path(sys.argv[2]).read_bytes()

used = use_dataclass_code(Loader())
compiled = []
real_exec = getattr(dataclasses, "exec", exec)
def spy(source, *args):
    compiled.append(source)
    return real_exec(source, *args)
dataclasses.exec = spy
from points import Point
p = Point(1, tags=("a",))
print(json.dumps({
    "used": used,
    "repr": repr(p),
    "eq": p == Point(1, 0, ("a",)),
    "hash": hash(p) == hash(Point(1, 0, ("a",))),
    "annotations": str(Point.__init__.__annotations__),
    "calls": len(compiled),
}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-E", "-s", "-B", "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    (tmp_path / "points.py").write_text(_MODULE)
    (tmp_path / "common").symlink_to(REPO / "common")
    return tmp_path


def test_stored_code_builds_the_same_class_as_compiling(module_dir: Path, tmp_path: Path) -> None:
    blob = tmp_path / "code.bin"
    assert _python(_RECORD, str(module_dir), str(blob)).returncode == 0

    plain = _python(_USE, str(module_dir), str(tmp_path / "missing"))
    cached = _python(_USE, str(module_dir), str(blob))

    assert plain.returncode == 0, plain.stderr
    assert cached.returncode == 0, cached.stderr
    plain_facts, cached_facts = json.loads(plain.stdout), json.loads(cached.stdout)
    assert (plain_facts.pop("used"), cached_facts.pop("used")) == (False, True)
    assert plain_facts == cached_facts
    assert cached_facts["repr"] == "Point(x=1, y=0, tags=('a',))"
    assert cached_facts["eq"]
    assert cached_facts["hash"]
    assert cached_facts["calls"] > 0  # NB: exec still runs; it gets stored code, not text


def test_code_stored_for_another_bytecode_version_is_ignored(
    module_dir: Path, tmp_path: Path
) -> None:
    blob = tmp_path / "code.bin"
    blob.write_bytes(b"\x00\x00\r\n" + b"garbage")

    done = _python(_USE, str(module_dir), str(blob))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["used"] is False


_EXIT = """\
import sys
from common.cni.startup import exit_status
{setup}
sys.stdout.write("out")
status = exit_status(3)
print("|returned", status)
sys.exit(status)
"""


@pytest.mark.parametrize(
    ("setup", "stdout"),
    [
        pytest.param("", "out", id="nothing-left"),
        pytest.param(
            "import logging; logging.getLogger('x').addHandler(logging.StreamHandler())",
            "out",
            id="logging-only",
        ),
        pytest.param(
            "import atexit; atexit.register(lambda: print('|cleanup'))",
            "out|returned 3\n|cleanup\n",
            id="atexit-callback",
        ),
        pytest.param(
            "import threading, time\n"
            "threading.Thread(target=lambda: (time.sleep(0.3), print('|thread'))).start()",
            "out|returned 3\n|thread\n",
            id="live-thread",
        ),
    ],
)
def test_fast_exit_only_when_teardown_has_nothing_to_do(setup: str, stdout: str) -> None:
    done = _python(textwrap.dedent(_EXIT.format(setup=setup)))

    assert done.returncode == 3, done.stderr
    assert done.stdout == stdout


def test_fast_exit_flushes_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "log"
    setup = (
        "import logging; handler = logging.FileHandler(sys.argv[1]); "
        "logging.getLogger('x').addHandler(handler); logging.getLogger('x').error('logged')"
    )
    done = _python(_EXIT.format(setup=setup), str(log))

    assert (done.returncode, done.stdout) == (3, "out")
    assert log.read_text() == "logged\n"
