"""Unit tests for the guest tier's pure parts: ELF/modinfo reading, module order, the newc
archive, the init and job scripts, the exit marker, junit summaries and the collection policy.
They run on the host with no QEMU, no root and no network."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from tests.vm import guest, initramfs, kmod, policy
from tests.vm.junit import JunitError, summarise_junit


def _elf64(sections: dict[str, bytes], *, interpreter: bytes | None = None) -> bytes:
    """A minimal little-endian ELF64 file with the given sections and, optionally, PT_INTERP."""
    names = b"\0" + b"".join(name.encode() + b"\0" for name in [*sections, ".shstrtab"])
    body = bytearray()
    placed: list[tuple[int, int, int]] = []  # name offset, data offset, size
    data_start = 64 + (56 if interpreter is not None else 0)
    name_offset = 1
    for name, data in [*sections.items(), (".shstrtab", names)]:
        placed.append((name_offset, data_start + len(body), len(data)))
        body += data
        name_offset += len(name) + 1
    shoff = data_start + len(body)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    phnum = 1 if interpreter is not None else 0
    struct.pack_into("<QQ", header, 0x20, 64 if phnum else 0, shoff)
    struct.pack_into("<HHHHH", header, 0x36, 56, phnum, 64, len(placed) + 1, len(placed))
    program = bytearray()
    if interpreter is not None:
        program = bytearray(56)
        struct.pack_into("<I", program, 0, 3)
    section_headers = bytearray(64)  # the null section
    for name_at, offset, size in placed:
        entry = bytearray(64)
        struct.pack_into("<I", entry, 0, name_at)
        struct.pack_into("<QQ", entry, 0x18, offset, size)
        section_headers += entry
    return bytes(header + program + body + section_headers)


def _module(depends: str) -> bytes:
    return _elf64({".text": b"\x90" * 3, ".modinfo": f"license=GPL\0depends={depends}\0".encode()})


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        ("", ()),
        ("9pnet", ("9pnet",)),
        ("9pnet,virtio,virtio-ring", ("9pnet", "virtio", "virtio_ring")),
    ],
)
def test_depends_are_read_from_the_modinfo_section(depends: str, expected: tuple[str, ...]) -> None:
    assert kmod.depends_of(_module(depends)) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an elf at all" * 8, "not an ELF file"),
        (b"\x7fELF\x01\x01" + bytes(58), "not a little-endian ELF64"),
        (_elf64({".text": b"\x90"}), "no .modinfo section"),
    ],
)
def test_bad_module_files_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(kmod.KmodError, match=message):
        kmod.depends_of(data, what="x.ko")


@pytest.mark.parametrize(("interpreter", "static"), [(None, True), (b"/lib64/ld.so", False)])
def test_static_executables_have_no_interpreter(interpreter: bytes | None, static: bool) -> None:
    assert kmod.is_static_executable(_elf64({".text": b"\x90"}, interpreter=interpreter)) is static


@pytest.mark.parametrize(
    ("wanted", "depends", "builtin", "expected"),
    [
        (["dummy"], {"dummy": ()}, frozenset(), ["dummy"]),
        (
            ["9p", "9pnet_virtio"],
            {
                "9p": ("9pnet", "netfs"),
                "9pnet_virtio": ("9pnet", "virtio_ring"),
                "9pnet": (),
                "netfs": (),
                "virtio_ring": (),
            },
            frozenset(),
            ["9pnet", "netfs", "virtio_ring", "9p", "9pnet_virtio"],
        ),
        (
            ["8021q"],
            {
                "8021q": ("garp", "mrp"),
                "garp": ("stp", "llc"),
                "mrp": (),
                "stp": ("llc",),
                "llc": (),
            },
            frozenset(),
            ["mrp", "llc", "stp", "garp", "8021q"],
        ),
        (
            ["vxlan"],
            {"vxlan": ("udp_tunnel", "ip6_udp_tunnel")},
            frozenset({"udp_tunnel", "ip6_udp_tunnel"}),
            ["vxlan"],
        ),
        (["a-b"], {"a_b": ()}, frozenset(), ["a_b"]),
    ],
)
def test_load_order_puts_dependencies_first(
    wanted: list[str],
    depends: dict[str, tuple[str, ...]],
    builtin: frozenset[str],
    expected: list[str],
) -> None:
    order = kmod.load_order(wanted, depends, builtin=builtin)
    assert order == expected
    for position, name in enumerate(order):
        assert set(depends[name]) - builtin <= set(order[:position])


def test_a_module_that_is_neither_file_nor_builtin_is_an_error() -> None:
    with pytest.raises(kmod.KmodError, match="'ipvlan' is neither"):
        kmod.load_order(["ipvlan"], {})


def test_modules_are_resolved_from_a_tree_of_ko_files(tmp_path: Path) -> None:
    (tmp_path / "net" / "9p").mkdir(parents=True)
    (tmp_path / "fs").mkdir()
    (tmp_path / "net" / "9p" / "9pnet.ko").write_bytes(_module(""))
    (tmp_path / "net" / "9p" / "9pnet_virtio.ko").write_bytes(_module("9pnet,virtio"))
    (tmp_path / "fs" / "unrelated.ko").write_bytes(b"never read")
    ordered = kmod.resolve_modules(["9pnet-virtio"], tmp_path, builtin=frozenset({"virtio"}))
    assert [(m.name, m.path.name) for m in ordered] == [
        ("9pnet", "9pnet.ko"),
        ("9pnet_virtio", "9pnet_virtio.ko"),
    ]


def test_newc_archive_round_trips_with_aligned_members() -> None:
    entries = [
        initramfs.directory("bin"),
        initramfs.regular_file("bin/busybox", b"\x7fELF" + b"x" * 5, executable=True),
        initramfs.symlink("bin/sh", "busybox"),
        initramfs.regular_file("/init", b"#!/bin/sh\n"),
    ]
    archive = initramfs.newc_archive(entries)
    assert archive.startswith(b"070701")
    assert len(archive) % 4 == 0
    assert archive.rstrip(b"\0").endswith(b"TRAILER!!!")
    read_back = initramfs.parse_newc(archive)
    assert [(e.path, oct(e.mode), e.data) for e in read_back] == [
        ("bin", oct(0o040755), b""),
        ("bin/busybox", oct(0o100755), b"\x7fELFxxxxx"),
        ("bin/sh", oct(0o120777), b"busybox"),
        ("init", oct(0o100644), b"#!/bin/sh\n"),
    ]


@pytest.mark.parametrize(
    ("console", "expected"),
    [
        ("boot\nDANM-VM-EXIT-t0k=0\r\n", 0),
        ("[ 1.0] x\nDANM-VM-EXIT-t0k=42\n", 42),
        ("DANM-VM-EXIT-t0k=1\nDANM-VM-EXIT-t0k=999\n", 999),
        ("DANM-VM-EXIT-other=0\n", None),
        ("DANM-VM-EXIT-t0k=\n", None),
        ("kernel panic\n", None),
    ],
)
def test_exit_status_comes_only_from_this_runs_marker(console: str, expected: int | None) -> None:
    assert initramfs.parse_exit_status(console, "t0k") == expected


def _job(**overrides: object) -> initramfs.GuestJob:
    fields: dict[str, object] = {
        "command": ["printf", "%s|", "it's", "$HOME"],
        "cwd": PurePosixPath("/"),
        "env": {"HOME": "/root", "SPACED": "a b"},
        "results_dir": PurePosixPath("/tmp/results"),
        "token": "abc",
    }
    fields.update(overrides)
    return initramfs.GuestJob(**fields)  # type: ignore[arg-type]


def test_job_script_runs_the_command_in_cwd_with_exactly_the_given_env(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    job = _job(
        command=[
            "sh",
            "-c",
            'printf "%s|%s|%s|%s" "$(pwd)" "$SPACED" "$1" "${USER-unset}"',
            "-",
            "it's",
        ],
        cwd=PurePosixPath(tmp_path),
    )
    script.write_text(initramfs.render_job_script(job))
    done = subprocess.run(
        ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", str(script)],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert (done.returncode, done.stdout) == (0, f"{tmp_path}|a b|it's|unset")


@pytest.mark.parametrize(
    ("job", "message"),
    [(_job(command=[]), "must not be empty"), (_job(env={"BAD-NAME": "x"}), "not a valid shell")],
)
def test_bad_jobs_are_refused(job: initramfs.GuestJob, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        initramfs.render_job_script(job)


def test_init_script_loads_modules_in_order_and_always_prints_the_marker() -> None:
    script = initramfs.render_init_script(
        _job(results_dir=PurePosixPath("/tmp/with space")),
        ["9pnet.ko", "dummy.ko"],
        {"dummy.ko": "numdummies=0"},
    )
    assert script.startswith("#!/bin/busybox sh\n")
    assert script.index("insmod /lib/modules/9pnet.ko ||") < script.index(
        "insmod /lib/modules/dummy.ko numdummies=0 ||"
    )
    assert "'/mnt/root/tmp/with space'" in script
    assert 'echo "DANM-VM-EXIT-abc=$status"' in script
    assert f"DANM-VM-EXIT-abc={initramfs.INIT_FAILED_STATUS}" in script
    assert script.rstrip().endswith("poweroff -f")


def test_init_script_keeps_the_hosts_tmp_visible() -> None:
    # NB: CI clones the repository under /tmp; a tmpfs there would hide the checkout the job
    # has to cd into (seen: "can't cd to /tmp/ci-check").
    script = initramfs.render_init_script(_job(), [], None)
    assert not any(
        line.startswith("mount -t tmpfs tmpfs /mnt/root/tmp") for line in script.splitlines()
    )


def test_initramfs_holds_busybox_modules_init_and_job() -> None:
    archive = initramfs.build_initramfs(
        busybox=b"BB", modules=[("a.ko", b"A"), ("b.ko", b"B")], job=_job()
    )
    paths = {entry.path: entry for entry in initramfs.parse_newc(archive)}
    assert paths["bin/busybox"].data == b"BB"
    assert paths["lib/modules/a.ko"].data == b"A"
    assert paths["init"].mode & 0o111
    assert b"exec printf" in paths["job.sh"].data


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n",
            "linux-image-6.1.0-56-amd64",
        ),
        ("linux-image-amd64\n  Depends: <virtual>\n  Suggests: x\n", None),
        ("", None),
    ],
)
def test_kernel_package_is_read_from_apt_cache_depends(output: str, expected: str | None) -> None:
    assert guest.parse_kernel_package(output) == expected


def test_guest_environment_is_always_flagged_and_keeps_caller_values() -> None:
    env = guest.guest_environment({"PATH": "/x", "DANM_TEST_IN_GUEST": "0", "CI": "true"})
    assert env == {
        "PATH": "/x",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "CI": "true",
        "DANM_TEST_IN_GUEST": "1",
    }


def test_qemu_uses_tcg_and_shares_the_host_root_read_only(tmp_path: Path) -> None:
    kernel = guest.GuestKernel(package="p", vmlinuz=tmp_path / "vmlinuz", modules=())
    argv = guest.qemu_command(kernel=kernel, initrd=tmp_path / "i", results_dir=tmp_path)
    joined = " ".join(argv)
    assert "-accel tcg,thread=multi" in joined
    assert "-enable-kvm" not in joined
    assert "path=/,readonly=on" in joined
    assert f"path={tmp_path},security_model=none" in joined
    assert "-no-reboot" in argv


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.vm.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.vm.test_a" name="test_bad"><failure message="assert 1 == 2">tb</failure>
</testcase>
<testcase classname="tests.vm.test_a" name="test_err"><error message="fixture broke"/></testcase>
<testcase classname="tests.vm.test_a" name="test_skip"><skipped message="no root"/></testcase>
</testsuite></testsuites>"""


def test_junit_summary_lists_everything_that_did_not_pass() -> None:
    summary = summarise_junit(JUNIT)
    assert (summary.total, summary.passed) == (4, 1)
    assert [(p.test_id, p.outcome, p.message) for p in summary.problems] == [
        ("tests.vm.test_a::test_bad", "failure", "assert 1 == 2"),
        ("tests.vm.test_a::test_err", "error", "fixture broke"),
        ("tests.vm.test_a::test_skip", "skipped", "no root"),
    ]
    assert "FAILURE tests.vm.test_a::test_bad: assert 1 == 2" in summary.describe()


@pytest.mark.parametrize(
    ("xml_text", "total"),
    [('<testsuites><testsuite name="pytest" tests="0"/></testsuites>', 0)],
)
def test_junit_with_no_tests_counts_zero(xml_text: str, total: int) -> None:
    assert summarise_junit(xml_text).total == total


def test_junit_that_is_not_xml_is_a_clear_error() -> None:
    with pytest.raises(JunitError, match="not junit XML"):
        summarise_junit("Traceback (most recent call last)")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, False), ({"DANM_TEST_IN_GUEST": "1"}, True), ({"DANM_TEST_IN_GUEST": "0"}, False)],
)
def test_in_guest_reads_the_flag(environ: dict[str, str], expected: bool) -> None:
    assert policy.in_guest(environ) is expected


def test_vm_files_are_found_by_their_marker(tmp_path: Path) -> None:
    marked = tmp_path / "test_marked.py"
    marked.write_text("import pytest\npytestmark = pytest.mark.vm\n")
    decorated = tmp_path / "test_decorated.py"
    decorated.write_text("@pytest.mark.vm\ndef test_x(): ...\n")
    param = tmp_path / "test_param.py"
    param.write_text("CASES = [pytest.param(1, marks=pytest.mark.vm)]\n")
    other = tmp_path / "test_other.py"
    other.write_text('@pytest.mark.vmx\ndef test_y(): ...\n"""Uses @pytest.mark.vm."""\n')
    broken = tmp_path / "test_broken.py"
    broken.write_text("@pytest.mark.vm\ndef test_z(:\n")
    found = policy.files_mentioning_vm_marker([marked, decorated, param, other, broken])
    assert found == {marked, decorated, param}


def test_this_module_is_not_a_vm_test(pytestconfig: pytest.Config) -> None:
    found = policy.vm_test_files(pytestconfig, Path(__file__).parent)
    assert Path(__file__) not in found
    assert Path(__file__).with_name("test_kernel_links.py") in found
    assert os.environ.get("DANM_TEST_IN_GUEST") != "1"


@pytest.mark.parametrize(
    ("problems", "environ", "expected"),
    [
        ([], {"CI": "true"}, None),
        (["qemu-system-x86_64 is not installed"], {"CI": "true"}, "fail"),
        (["qemu-system-x86_64 is not installed"], {}, "skip"),
        (["qemu-system-x86_64 is not installed"], {"CI": ""}, "skip"),
    ],
)
def test_missing_tools_fail_under_ci_and_skip_elsewhere(
    problems: list[str], environ: dict[str, str], expected: str | None
) -> None:
    outcome = policy.missing_tools_outcome(problems, "apt-get install q b", environ)
    assert (outcome[0] if outcome else None) == expected
    if outcome:
        assert "apt-get install q b" in outcome[1]
        assert problems[0] in outcome[1]


def _cache_entry(cache_dir: Path, package: str) -> Path:
    entry = cache_dir / guest._cache_key(package, guest.GUEST_MODULES)
    (entry / "modules").mkdir(parents=True)
    (entry / "vmlinuz").write_bytes(b"kernel")
    (entry / "modules" / "dummy.ko").write_bytes(b"module")
    (entry / "manifest.json").write_text('{"package": "p", "load_order": ["dummy.ko"]}')
    return entry


def _resolve_fails() -> str:
    raise guest.GuestError("apt-cache cannot resolve linux-image-amd64")


def _fetch_fails(*_: object) -> Path:
    raise AssertionError("must not download")


def test_a_cached_kernel_is_reused_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _cache_entry(tmp_path, "linux-image-9.9.9-1-amd64")
    monkeypatch.setattr(guest, "resolve_kernel_package", lambda: "linux-image-9.9.9-1-amd64")
    monkeypatch.setattr(guest, "_fetch_into_cache", _fetch_fails)
    kernel = guest.prepare_kernel(tmp_path)
    assert (kernel.vmlinuz, kernel.modules) == (
        entry / "vmlinuz",
        (entry / "modules" / "dummy.ko",),
    )


def test_offline_falls_back_to_the_cached_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _cache_entry(tmp_path, "linux-image-9.9.9-1-amd64")
    monkeypatch.setattr(guest, "resolve_kernel_package", _resolve_fails)
    kernel = guest.prepare_kernel(tmp_path)
    assert kernel.package == "linux-image-9.9.9-1-amd64"
    assert kernel.vmlinuz == entry / "vmlinuz"


def test_offline_with_an_empty_cache_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache_entry(tmp_path, "linux-image-9.9.9-1-amd64").joinpath("vmlinuz").unlink()
    monkeypatch.setattr(guest, "resolve_kernel_package", _resolve_fails)
    with pytest.raises(guest.GuestError, match="cannot resolve"):
        guest.prepare_kernel(tmp_path)
