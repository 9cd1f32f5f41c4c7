"""The CLI as a user meets it: instant help, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import edgekit_cli

PROBE = """
import sys
sys.argv = ["edgekit", "{arg}"]
from edgekit.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
heavy = [m for m in ("tensorflow", "keras", "ai_edge_litert", "sklearn", "onnxruntime") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def test_help_and_version_import_nothing_heavy():
    for arg in ("--help", "--version"):
        out = subprocess.run([sys.executable, "-c", PROBE.format(arg=arg)], capture_output=True, text=True, timeout=60)
        assert "HEAVY=\n" in out.stdout or out.stdout.rstrip().endswith("HEAVY="), out.stdout


def test_help_is_fast_and_lists_commands():
    t0 = time.perf_counter()
    r = edgekit_cli("--help")
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0
    for cmd in ("train", "export", "bench"):
        assert cmd in r.stdout
    assert elapsed < 3.0, f"edgekit --help took {elapsed:.2f}s"


def test_version():
    import edgekit

    r = edgekit_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"edgekit {edgekit.__version__}"


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("edgekit: error:")
    for n in needles:
        assert n in err, err


def test_mistyped_command_suggests():
    _one_line_error(edgekit_cli("exprt", "x"), "Did you mean 'export'?")


def test_unknown_flag_is_one_line():
    _one_line_error(edgekit_cli("export", "m.keras", "--bogus"), "No such option: --bogus")


def test_unknown_format_and_quant_suggest(digits_run):
    _one_line_error(edgekit_cli("export", digits_run, "--format", "tflit"), "Did you mean 'tflite'?")
    _one_line_error(edgekit_cli("export", digits_run, "--quant", "int9"), "Did you mean 'int8'?")


def test_missing_model(tmp_path):
    _one_line_error(edgekit_cli("export", tmp_path / "nope.keras", "--out", tmp_path / "out"), "does not exist")
    assert not (tmp_path / "out").exists()


def test_file_that_is_no_model(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    _one_line_error(edgekit_cli("export", bad, "--out", tmp_path / "out"), "not a model edgekit can load")
    assert not (tmp_path / "out").exists()


def test_corrupt_keras_file(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    _one_line_error(edgekit_cli("export", bad, "--out", tmp_path / "out"), "cannot be loaded by Keras")
    assert not (tmp_path / "out").exists()


def test_unknown_recipe_and_data(tmp_path):
    _one_line_error(edgekit_cli("train", "resnet9", "--data", "builtin:digits", "--out", tmp_path / "r"), "Did you mean 'resnet8'?")
    _one_line_error(edgekit_cli("train", "cnn", "--data", "builtin:digit", "--out", tmp_path / "r"), "Did you mean 'digits'?")
    _one_line_error(edgekit_cli("train", "cnn", "--data", tmp_path / "none.npz", "--out", tmp_path / "r"), "does not exist")
    assert not (tmp_path / "r").exists()


def test_bench_missing_and_unknown_artifacts(tmp_path):
    _one_line_error(edgekit_cli("bench", tmp_path / "x.tflite"), "does not exist")
    other = tmp_path / "model.bin"
    other.write_bytes(b"\0" * 10)
    _one_line_error(edgekit_cli("bench", other), "not an artifact edgekit can run")


def test_ctrl_c_mid_export_is_one_line_and_leaves_nothing(digits_run, tmp_path):
    """SIGINT while the exporters run (after TensorFlow has loaded): exit 130, one line, no OUT."""
    import signal

    out = tmp_path / "exp"
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "export", str(digits_run), "--format", "all", "--quant", "all",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the first of 11 artifacts: ten conversions (many seconds) are still to come
    assert "export success" in first, first
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    # An edgekit that ignored Ctrl-C would finish all 11 and exit 0: that fails here.
    assert proc.returncode == 130, (proc.returncode, rest, err)
    assert rest.count("export success") < 10, rest
    assert err.strip() == "edgekit: error: interrupted; nothing half-written was left behind"
    assert not out.exists()


_HALF_BUILT = """
import os, signal, sys, time
from edgekit.interrupts import quiet_after_ctrl_c
if sys.argv[1] == "quiet":
    quiet_after_ctrl_c()

class Options:  # like TensorFlow's ScopedTFImportGraphDefOptions: __del__ needs what __init__ sets last
    def __init__(self):
        print("building", flush=True)
        time.sleep(30)
        self.options = 1
    def __del__(self):
        self.options

try:
    Options()
except KeyboardInterrupt:
    print("edgekit: error: interrupted", file=sys.stderr)
    sys.exit(130)
"""


def test_ctrl_c_inside_a_half_built_object_prints_no_clean_up_traceback(tmp_path):
    """The race CI once hit: Ctrl-C inside a TensorFlow wrapper's __init__ printed 'Exception ignored' from its __del__."""
    import signal

    script = tmp_path / "half_built.py"
    script.write_text(_HALF_BUILT)
    errs = {}
    for mode in ("python-default", "quiet"):
        proc = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "building"
        proc.send_signal(signal.SIGINT)
        _, errs[mode] = proc.communicate(timeout=30)
        assert proc.returncode == 130, (mode, errs[mode])
    assert "Exception ignored" in errs["python-default"]  # the noise is real without the handler
    assert errs["quiet"].strip() == "edgekit: error: interrupted"


PROGRESS = """
import time
from edgekit.cli.output import progress
with progress("export", log_steps=False) as report:
    report("loading model.keras")
    report("[1/2] exporting tflite fp32")
    time.sleep(0.3)
    report.echo("tflite fp32: export success [see manifest]")
    report("[2/2] exporting tflite int8")
    time.sleep(0.3)
"""


def test_long_work_shows_a_progress_bar_on_a_terminal_and_a_line_per_row_in_logs():
    import os
    import pty
    import re

    pid, fd = pty.fork()
    if pid == 0:  # a terminal, as a user at a shell has
        os.execv(sys.executable, [sys.executable, "-c", PROGRESS])
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(pid, 0)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert re.search(r"export: exporting tflite int8 \S+ 1/2", screen), screen  # what runs now, rows done of all
    assert "tflite fp32: export success [see manifest]" in screen  # a finished row's line, printed as it is
    piped = subprocess.run([sys.executable, "-c", PROGRESS], capture_output=True, text=True, timeout=60)
    assert piped.stdout == "tflite fp32: export success [see manifest]\n"  # a log gets the rows, no bar
