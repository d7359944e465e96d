"""Probe pieces that need no root: C structs vs dtypes, bucket formulas, ELF reading, the program text."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from probe_helpers import compile_c

from vfiobench.buckets import DEFAULT_SUB_BUCKET_BITS, LogLinearBuckets
from vfiobench.cli import main
from vfiobench.errors import MissingBinaryError, MissingSymbolError, ProbeError
from vfiobench.probes.catalog import PROBES, bpf_dir, get_probe
from vfiobench.probes.histogram import hist_table
from vfiobench.probes.program import build_program
from vfiobench.qemu.binary import ElfFile, inspect_binary, probe_offset


def test_dtypes_mirror_the_c_structs(tmp_path: Path) -> None:
    """Compile events.bpf.h with gcc; every dtype has the struct's size and every field its offset."""
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "typedef uint64_t u64; typedef uint32_t u32; typedef int32_t s32;",
        f'#include "{bpf_dir() / "events.bpf.h"}"',
        "int main(void) {",
    ]
    for spec in PROBES.values():
        lines.append(f'printf("{spec.name} size %zu\\n", sizeof(struct {spec.struct}));')
        for field in spec.dtype.names or ():
            lines.append(f'printf("{spec.name} {field} %zu\\n", offsetof(struct {spec.struct}, {field}));')
    lines += ["return 0; }"]
    src = tmp_path / "sizes.c"
    src.write_text("\n".join(lines))
    exe = compile_c(src, tmp_path / "sizes")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    seen = 0
    for line in out.splitlines():
        name, field, value = line.split()
        spec = PROBES[name]
        if field == "size":
            assert spec.dtype.itemsize == int(value), name
        else:
            assert spec.dtype.fields is not None
            assert spec.dtype.fields[field][1] == int(value), (name, field)
        seen += 1
    assert seen == sum(1 + len(s.dtype.names or ()) for s in PROBES.values())


def _c_buckets(tmp_path: Path, values: np.ndarray, bits: int) -> np.ndarray:
    src = tmp_path / "buckets.c"
    src.write_text(
        "#include <stdio.h>\n"
        f"#define SUB_BUCKET_BITS {bits}\n#define MAX_BITS 63\n"
        "#define VB_MAX_VALUE ((1ULL << MAX_BITS) - 1)\n"
        f'#include "{bpf_dir() / "buckets.bpf.h"}"\n'
        'int main(void) { unsigned long long v; while (scanf("%llu", &v) == 1) printf("%u\\n", vb_bucket(v));'
        " return 0; }\n"
    )
    exe = compile_c(src, tmp_path / f"buckets{bits}")
    out = subprocess.run(
        [str(exe)], input="\n".join(str(int(v)) for v in values), capture_output=True, text=True, check=True
    ).stdout
    return np.array([int(x) for x in out.split()], dtype=np.int64)


@pytest.mark.parametrize("bits", [3, 6])
def test_c_buckets_agree_with_python_and_analysis(tmp_path: Path, bits: int) -> None:
    rng = np.random.default_rng(7)
    edges = [
        0,
        1,
        2,
        63,
        64,
        127,
        128,
        129,
        1_500_000,
        2_000_000,
        (1 << 53) + 1,
        (1 << 63) - 1,
        (1 << 63),
        (1 << 64) - 1,
    ]
    powers = [(1 << k) + d for k in range(64) for d in (-1, 0, 1) if 0 <= (1 << k) + d < (1 << 64)]
    values = np.concatenate(
        [
            np.array(edges + powers, dtype=np.uint64),
            rng.integers(0, 1 << 40, 20_000, dtype=np.uint64),
            (rng.random(5_000) * 2.0**63).astype(np.uint64),
        ]
    )
    layout = LogLinearBuckets(sub_bucket_bits=bits)  # the one Python definition (vfiobench.buckets)
    c = _c_buckets(tmp_path, values, bits)
    py = layout.index(values)
    assert c.size == values.size
    np.testing.assert_array_equal(c, py)
    assert int(c.max()) < layout.n_buckets == (63 - bits + 1) << bits  # VB_NBUCKETS in C
    small = values[values < (1 << 62)]
    i = layout.index(small)
    lo_i, hi_i = layout.lower(i), layout.upper(i)
    assert np.all(lo_i <= small.astype(np.int64)) and np.all(small.astype(np.int64) < hi_i)


def test_hist_table_keeps_nonempty_buckets() -> None:
    counts = np.zeros(LogLinearBuckets(6).n_buckets, dtype=np.uint64)
    counts[[5, 1000]] = [3, 4]
    t = hist_table(counts, 6)
    assert t["bucket"].tolist() == [5, 1000] and t["count"].tolist() == [3, 4]
    assert t["lo_ns"][0] == 5 and t["hi_ns"][0] == 6


def test_probe_offset_skips_what_the_kernel_would_single_step() -> None:
    push = bytes.fromhex("55 4889e5")
    assert probe_offset(push) == 0
    assert probe_offset(bytes.fromhex("f30f1efa") + push) == 4  # endbr64; push %rbp
    # Debian QEMU 7.2 memory_region_set_enabled: cmp %sil,0x9a(%rdi); je +0x37
    assert probe_offset(bytes.fromhex("4038b79a000000 7437 55 89f5")) == 7
    assert probe_offset(bytes.fromhex("f30f1efa 4084f6 0f8412000000")) == 7  # endbr; test %sil; je rel32
    # mov first: nothing emulated to move to -> stays at the entry (after endbr64)
    assert probe_offset(bytes.fromhex("8b050a2b0000 53")) == 0
    assert probe_offset(bytes.fromhex("f30f1efa 8b050a2b0000")) == 4
    assert probe_offset(b"") == 0


def test_elf_reader_on_the_standin(standin_bin: Path, standin_cet_bin: Path) -> None:
    elf = ElfFile(standin_bin)
    sym = elf.symbol("memory_region_set_enabled")
    assert sym is not None and sym.is_function and sym.table == ".symtab"
    nm = subprocess.run(["nm", str(standin_bin)], capture_output=True, text=True, check=True).stdout
    addr = int(re.search(r"^([0-9a-f]+) T memory_region_set_enabled$", nm, re.M).group(1), 16)  # type: ignore[union-attr]
    assert sym.address == addr
    readelf = subprocess.run(["readelf", "-n", str(standin_bin)], capture_output=True, text=True).stdout
    assert elf.build_id and elf.build_id in readelf
    assert not elf.starts_with_endbr64(sym)
    cet = ElfFile(standin_cet_bin)
    csym = cet.require_symbol("memory_region_set_enabled")
    assert probe_offset(elf.function_bytes(sym)) == 4  # cmp %sil,0x2f(%rdi) (4 bytes); je
    assert cet.starts_with_endbr64(csym) and probe_offset(cet.function_bytes(csym)) == 8
    assert elf.symbol("no_such_function") is None
    with pytest.raises(MissingSymbolError, match="no_such_function"):
        elf.require_symbol("no_such_function")


def test_elf_symbols_agree_with_nm(standin_bin: Path) -> None:
    """Every defined symbol nm lists resolves to nm's address (a version suffix dropped, as in
    ``stdout@GLIBC_2.2.5``); an imported function is no symbol; a versioned name is never a key."""
    elf = ElfFile(standin_bin)
    nm = subprocess.run(["nm", str(standin_bin)], capture_output=True, text=True, check=True).stdout
    defined: dict[str, list[int]] = {}
    imported = []
    for line in nm.splitlines():
        fields = line.split()
        if len(fields) == 3 and int(fields[0], 16):
            defined.setdefault(fields[2].split("@", 1)[0], []).append(int(fields[0], 16))
        elif fields[0] == "U":
            imported.append(fields[1].split("@", 1)[0])
    unique = {name: addrs[0] for name, addrs in defined.items() if len(addrs) == 1}
    assert "stdout" in unique and "printf" in imported
    for name, addr in unique.items():
        sym = elf.symbol(name)
        assert sym is not None and sym.address == addr and sym.table == ".symtab", name
    assert all(elf.symbol(name) is None for name in imported)
    assert elf.symbol("stdout@GLIBC_2.2.5") is None and elf.symbol("") is None


def test_elf_reader_rejects_truncated_elf(tmp_path: Path, standin_bin: Path) -> None:
    cut = tmp_path / "cut"
    data = standin_bin.read_bytes()
    for size in (10, 64, len(data) // 2):
        cut.write_bytes(data[:size])
        with pytest.raises(MissingBinaryError, match="ELF file"):
            ElfFile(cut).build_id  # noqa: B018


def test_elf_reader_rejects_missing_and_non_elf(tmp_path: Path) -> None:
    with pytest.raises(MissingBinaryError, match="no such file"):
        ElfFile(tmp_path / "nope")
    script = tmp_path / "qemu.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(MissingBinaryError, match="not an ELF file"):
        ElfFile(script)


def test_debian_qemu_if_installed() -> None:
    qemu = Path("/usr/bin/qemu-system-x86_64")
    if not qemu.exists():
        pytest.skip("qemu-system-x86 is not installed")
    info = inspect_binary(qemu)
    assert info.version.startswith("QEMU emulator version") and len(info.build_id) == 40
    elf = ElfFile(qemu)
    nm = subprocess.run(["nm", "-D", "--defined-only", str(qemu)], capture_output=True, text=True).stdout
    for name in ("memory_region_set_enabled", "memory_region_transaction_commit"):
        sym = elf.require_symbol(name)
        if nm:
            addr = re.search(rf"^([0-9a-f]+) T {name}$", nm, re.M)
            assert addr is not None and sym.address == int(addr.group(1), 16), name
        off = probe_offset(elf.function_bytes(sym))
        from vfiobench.qemu.binary import is_emulated

        assert is_emulated(elf.function_bytes(sym), off), name


def test_program_text_is_the_files_unaltered_with_flags() -> None:
    specs = [get_probe("pba_toggle"), get_probe("set_irqs_ioctl")]
    prog = build_program(specs, pid=4242, ringbuf_pages=3, histogram=True)
    d = bpf_dir()
    assert prog.files == ("common.bpf.c", "set_irqs_ioctl.bpf.c", "pba_toggle.bpf.c")
    assert prog.text == "".join((d / f).read_text() for f in prog.files)
    assert "-DTARGET_PID=4242" in prog.cflags and "-DRINGBUF_PAGES=4" in prog.cflags
    assert "-DVB_HISTOGRAM" in prog.cflags
    assert f"-DSUB_BUCKET_BITS={DEFAULT_SUB_BUCKET_BITS}" in prog.cflags  # the decoder's default too


def test_print_bpf_shows_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--pid", "1", "--probe", "pba_toggle", "--print-bpf"]) == 0
    out = capsys.readouterr().out
    assert "-DTARGET_PID=1" in out and "int vb_pba_enter(struct pt_regs *ctx)" in out
    assert "struct vb_pba_toggle_event {" in out  # the #included header is shown too
    assert "vb_ioctl_enter" not in out


def test_unknown_probe_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--pid", "1", "--probe", "nope", "--out", "/tmp/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown probe 'nope'" in err and "pba_toggle" in err
    with pytest.raises(ProbeError):
        get_probe("nope")


@pytest.mark.parametrize(
    ("release", "counted"),
    [
        ("6.1.0-56-amd64", False),
        ("6.6.63", False),
        ("6.7.0", True),
        ("6.18.44-fc-v669", True),
        ("5.15.0", False),
        ("7.0.1", True),
        ("weird", False),
    ],
)
def test_skipped_runs_are_counted_from_linux_6_7(release: str, counted: bool) -> None:
    from vfiobench.store import kernel_counts_misses

    assert kernel_counts_misses(release) is counted


def test_kprobe_alternatives_take_the_first_symbol_the_kernel_has(tmp_path: Path) -> None:
    """eventfd_signal on Linux 6.1; only eventfd_signal_mask on 6.8+ (the former became inline)."""
    from vfiobench.probes.catalog import IRQ_PATH_PARTS
    from vfiobench.probes.resolve import first_kernel_symbol

    part = next(p for p in IRQ_PATH_PARTS if p.event == "eventfd_signal")
    linux_6_1 = "ffffffff81400000 T eventfd_signal_mask\nffffffff81400100 T eventfd_signal\n"
    linux_6_12 = "ffffffff81400000 T eventfd_signal_mask\nffffffff81400200 t eventfd_signal_allowed\n"
    for text, expected in ((linux_6_1, "eventfd_signal"), (linux_6_12, "eventfd_signal_mask"), ("", None)):
        kallsyms = tmp_path / "kallsyms"
        kallsyms.write_text(text)
        assert first_kernel_symbol(part.targets, kallsyms) == expected
