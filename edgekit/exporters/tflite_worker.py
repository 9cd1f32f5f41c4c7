"""Child process for full-integer TFLite conversion: ``python -m edgekit.exporters.tflite_worker REQUEST.json``.

Calibration runs the model inside the converter, and the converter can crash on it (seen:
SIGSEGV on a Keras LSTM). Running it here turns a crash into an export error in the parent.
The reply (``reply.json`` beside the request) says ok, or the converter's error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from edgekit.runtimes.process_tree import die_with_parent

    die_with_parent()  # a conversion whose export was killed stops too (it can run for 30 minutes)
    req_path = Path(argv[1])
    req = json.loads(req_path.read_text())
    from edgekit.errors import EdgekitError, first_line
    from edgekit.exporters.base import ExportOptions
    from edgekit.exporters.tflite import convert
    from edgekit.files import atomic_write_json
    from edgekit.io_spec import load_batch
    from edgekit.tf_env import import_tensorflow

    details: dict = {}
    try:
        tf = import_tensorflow()
        calibration = load_batch(Path(req["calibration"]))
        flatbuffer = convert(tf, Path(req["saved_model"]), req.get("quant", "int8"), calibration,
                             ExportOptions(**req["options"]), details,
                             float_fallback=req["float_fallback"])
        Path(req["out"]).write_bytes(flatbuffer)
        reply = {"ok": True, "details": details}
    except EdgekitError as e:
        reply = {"ok": False, "error": e.message}
    except Exception as e:  # the converter's own exceptions: say what it said
        reply = {"ok": False, "error": first_line(e, with_type=True)}
    atomic_write_json(req_path.with_name("reply.json"), reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
