"""Issue 13.5 and 13.8: write errors are one-line errors with nothing partial left behind; every
format honours the umask and is byte-reproducible.

The machine runs the tests as root (permissions are not enforced), so permission and disk-full
errors are injected where the operating system would raise them.
"""

import errno
import os
import time

import pytest

from signs.cli import main
from signs.convert import FORMATS

def one_error_line(capsys, command: str, *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"signs {command}: error: "), err
    for fragment in fragments:
        assert fragment in err[0], err
    return err[0]


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "w.safetensors"
    assert main(["init", str(path), "--seed", "3"]) == 0
    return path


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("fmt", ["safetensors", "npz", "keras", "torch"])
def test_directory_where_a_file_is_expected(tmp_path, capsys, source, fmt, force, weight_file_names):
    target = tmp_path / weight_file_names[fmt]
    (target / "inside").mkdir(parents=True)
    assert main(["convert", str(source), str(target)] + (["--force"] if force else [])) == 2
    one_error_line(capsys, "convert", "got a directory")
    assert files_under(tmp_path) == [weight_file_names[fmt], f"{weight_file_names[fmt]}/inside"]


def test_init_and_verify_json_out_refuse_a_directory_before_working(tmp_path, capsys):
    (tmp_path / "w.safetensors").mkdir()
    assert main(["init", str(tmp_path / "w.safetensors"), "--force"]) == 2
    one_error_line(capsys, "init", "got a directory")
    started = time.perf_counter()
    assert main(["verify", "--json-out", str(tmp_path), "--force"]) == 2
    one_error_line(capsys, "verify", "got a directory")
    assert time.perf_counter() - started < 5  # refused before the three-way check ran
    assert files_under(tmp_path) == ["w.safetensors"]


def test_permission_denied_is_one_line(tmp_path, capsys, source, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    assert main(["convert", str(source), str(tmp_path / "w.npz")]) == 2
    one_error_line(capsys, "convert", "w.npz: cannot be written (Permission denied)")
    monkeypatch.setattr("os.access", lambda *args, **kwargs: False)
    assert main(["init", str(tmp_path / "sub" / "w.pt")]) == 2
    one_error_line(capsys, "init", f"no write permission in {tmp_path}")
    assert files_under(tmp_path) == []


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _write_half_then_disk_full(self, data):
    with open(self, "wb") as handle:
        handle.write(data[: len(data) // 2])
    _disk_full()


def _torch_disk_full(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")


@pytest.mark.parametrize("fmt,target,fault", [
    ("safetensors", "pathlib.Path.write_bytes", _write_half_then_disk_full),
    ("npz", "reference.weights_io.write_npz", _disk_full),
    ("torch", "torch.save", _torch_disk_full),
])
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, source, monkeypatch, fmt, target, fault,
                                                  weight_file_names):
    pytest.importorskip(target.split(".")[0])
    monkeypatch.setattr(target, fault)
    dst = tmp_path / weight_file_names[fmt]
    assert main(["convert", str(source), str(dst)]) == 2
    one_error_line(capsys, "convert", f"{dst}: could not be written")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_format_honours_the_umask(tmp_path, source, umask, mode, weight_file_names):
    old = os.umask(umask)
    try:
        for fmt in FORMATS:
            assert main(["convert", str(source), str(tmp_path / fmt / weight_file_names[fmt])]) == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_file()}
    assert modes == {name: oct(mode) for name in modes}
    assert len(modes) == len(FORMATS) + 2  # tf1: .index, .data-00000-of-00001 and the state file


def test_the_same_conversion_twice_gives_the_same_bytes(tmp_path, source, weight_file_names):
    """Every format; 2.1 s apart, so that a time stamp (zip dates are 2 s apart) would show."""
    for run in ("a", "b"):
        for fmt in FORMATS:
            assert main(["convert", str(source), str(tmp_path / run / fmt / weight_file_names[fmt])]) == 0
        if run == "a":
            time.sleep(2.1)
    first, second = tmp_path / "a", tmp_path / "b"
    assert files_under(first) == files_under(second)
    for name in files_under(first):
        if (first / name).is_file():
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_import_images_refuses_a_directory_before_reading_images(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1_a.jpg").write_bytes(b"never decoded")
    (tmp_path / "out.h5").mkdir()
    assert main(["import-images", str(tmp_path / "images"), str(tmp_path / "out.h5"), "--split", "train", "--force"]) == 2
    one_error_line(capsys, "import-images", "out.h5: expected a file name to write, got a directory")
