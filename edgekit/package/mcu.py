"""``package --target mcu``: a full-integer ``.tflite`` as C++ sources for TFLite Micro.

The folder holds what a firmware project adds to its build (TFLite Micro itself comes from the
board's SDK: the tflite-micro tree, esp-tflite-micro, the Arduino library):

- ``model_data.h/.cc``: the model as a ``const`` byte array, 16-byte aligned (in flash);
- ``model_ops.h``: ``ModelOpResolver`` (``tflite::MicroMutableOpResolver<N>``) and
  ``RegisterModelOps()``, one ``Add...()`` per operator the model uses, no more (each kernel
  costs flash);
- ``model_settings.h``: ``kTensorArenaSize`` (the arena TFLite Micro needed for this model here,
  plus a stated margin), each input's and output's shape, type, scale and zero point;
- ``sample_data.h``: one sample as the model takes it (preprocessed and quantized) and the outputs
  TFLite Micro gave for it here, so a board can check it computes the same;
- ``main.cc``: runs the sample and prints the outputs and whether they match (an Arduino sketch
  too: ``setup()`` runs it);
- ``README.md``, ``model_card.json``, ``labels.txt``.

Every figure is measured by running the file on TFLite Micro's kernels (:mod:`edgekit.runtimes.tflm`).

Example:
    >>> write_mcu_package(Path("model_int8.tflite"), Path("staging"), spec, samples)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError

# The arena in model_settings.h: what TFLite Micro needed here, plus a margin for the board. A 32-bit
# board's persistent structures are smaller than this 64-bit host's, but CMSIS-NN and ESP-NN kernels
# ask for scratch buffers the reference kernels do not: 10% and 1 KB more covers both.
ARENA_MARGIN = 0.10
ARENA_EXTRA_BYTES = 1024
_C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float",
            "bool": "bool"}
_TFLITE_TYPES = {"int8": "kTfLiteInt8", "uint8": "kTfLiteUInt8", "int16": "kTfLiteInt16", "int32": "kTfLiteInt32",
                 "float32": "kTfLiteFloat32", "bool": "kTfLiteBool"}


def arena_with_margin(smallest_bytes: int) -> int:
    """``smallest_bytes`` + 10% + 1 KB, rounded up to 16 bytes.

    >>> arena_with_margin(24272)
    27728
    """
    return int(math.ceil((smallest_bytes * (1 + ARENA_MARGIN) + ARENA_EXTRA_BYTES) / 16) * 16)


def check_full_integer(path: Path) -> None:
    """Refuse a file with float weights: a microcontroller runs full-integer int8 models."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    for graph in model.subgraphs:
        for t in graph.tensors:
            buffer = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
            has_data = buffer is not None and buffer.data is not None and len(buffer.data) > 0
            if has_data and names.get(t.type) in ("FLOAT32", "FLOAT16"):
                raise InputError(f"{path.name} has {names[t.type].lower()} weights: a microcontroller runs full-integer "
                                 "int8 models", hint="export it with --quant int8 and package that file")


def check_runs_on_tflm(path: Path):
    """The file's TFLite Micro session, or one line on why a microcontroller cannot run it: float
    weights, an operator TFLite Micro has no kernel for, a kernel that refuses it."""
    from edgekit.runtimes.tflm import TFLMSession
    from edgekit.runtimes.tflm_ops import RESOLVER_METHODS

    check_full_integer(path)
    session = TFLMSession(str(path))
    unknown = sorted(op for op in session.operators if op not in RESOLVER_METHODS)
    if unknown:
        raise InputError(f"{path.name} uses {', '.join(unknown)}, which MicroMutableOpResolver cannot register",
                         hint="replace the layers that make these operators")
    return session


def write_mcu_package(artifact: Path, dst: Path, spec: dict[str, Any], samples: dict | None) -> None:
    """Write the C++ sources of ``artifact`` into ``dst`` (see the module docstring)."""
    from edgekit.runtimes.tflm_ops import RESOLVER_METHODS

    session = check_runs_on_tflm(artifact)
    arena = arena_with_margin(session.arena["smallest_bytes"])
    feeds, note = _sample_feeds(session, spec, samples)
    outputs = session.run({t.name: v for t, v in zip(session.inputs, feeds, strict=True)})
    quantized_out = [t.quantize(outputs[t.name][:1]) for t in session.outputs]
    data = artifact.read_bytes()
    (dst / "model_data.h").write_text(_MODEL_DATA_H)
    (dst / "model_data.cc").write_text(_model_data_cc(artifact.name, data))
    (dst / "model_ops.h").write_text(_model_ops_h(session.operators, RESOLVER_METHODS))
    (dst / "model_settings.h").write_text(_model_settings_h(session, arena, spec))
    (dst / "sample_data.h").write_text(_sample_data_h(session, feeds, quantized_out, note))
    (dst / "main.cc").write_text(_main_cc(session))
    shutil.copyfile(artifact, dst / "model.tflite")
    (dst / "README.md").write_text(_readme(artifact.name, session, arena, len(data), note))
    spec["mcu"] = {"arena_bytes": arena, "arena_measured": session.arena, "arena_margin": f"+{ARENA_MARGIN:.0%} "
                   f"+ {ARENA_EXTRA_BYTES} B", "operators": session.operators, "model_bytes": len(data)}


def _sample_feeds(session, spec: dict, samples: dict | None) -> tuple[list[np.ndarray], str]:
    """Each input of the first sample, preprocessed and in the artifact's dtype; zeros (in real
    units) without samples."""
    from edgekit.data.preprocessing import Preprocessing

    card = {t["name"]: t for t in spec["inputs"]}
    first = (samples or {}).get("samples", [None])[0]
    feeds = []
    for t in session.inputs:
        shape = [1, *[d or 1 for d in t.shape[1:]]]
        if first is None:
            feeds.append(np.zeros(shape, dtype=np.float32))
            continue
        raw = np.asarray(first["inputs"][t.name], dtype=np.float32).reshape(shape)
        feeds.append(Preprocessing.from_dict(card.get(t.name, {}).get("preprocessing")).apply(raw))
    if first is None:
        return feeds, "no samples (the model has no run data): every input is 0.0"
    label = next(iter((first.get("labels") or {}).values()), None)
    return feeds, "sample 0 of samples.json" + (f" (label: {label})" if label is not None else "")


def _c_name(i: int, kind: str) -> str:
    return f"k{kind}{i}"


def _array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = values.reshape(-1)
    fmt = (lambda v: f"{float(v)!r}f") if ctype == "float" else (lambda v: str(int(v)))
    lines = [", ".join(fmt(v) for v in flat[i : i + per_line]) for i in range(0, flat.size, per_line)]
    body = ",\n    ".join(lines)
    return f"alignas(16) const {ctype} {name}[{flat.size}] = {{\n    {body}}};\n"


_MODEL_DATA_H = """// The model as a byte array (edgekit package --target mcu).
#ifndef EDGEKIT_MODEL_DATA_H_
#define EDGEKIT_MODEL_DATA_H_

extern const unsigned char g_model[];
extern const unsigned int g_model_len;

#endif  // EDGEKIT_MODEL_DATA_H_
"""


def _model_data_cc(name: str, data: bytes) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12)]
    body = ",\n    ".join(rows)
    return (f"// {name}, {len(data)} bytes (edgekit package --target mcu). const: it stays in flash.\n"
            '#include "model_data.h"\n\n'
            f"alignas(16) const unsigned char g_model[] = {{\n    {body}}};\n"
            f"const unsigned int g_model_len = {len(data)};\n")


def _model_ops_h(operators: dict[str, int], methods: dict[str, str]) -> str:
    ops = sorted(operators)
    adds = "\n".join(f"  TF_LITE_ENSURE_STATUS(resolver.{methods[op]}());  // {op} x{operators[op]}" for op in ops)
    return ("// The operators the model uses, and no others (edgekit package --target mcu).\n"
            "#ifndef EDGEKIT_MODEL_OPS_H_\n#define EDGEKIT_MODEL_OPS_H_\n\n"
            '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
            f"using ModelOpResolver = tflite::MicroMutableOpResolver<{len(ops)}>;\n\n"
            f"inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{\n{adds}\n  return kTfLiteOk;\n}}\n\n"
            "#endif  // EDGEKIT_MODEL_OPS_H_\n")


def _tensor_constants(kind: str, i: int, t) -> str:
    dims = [int(d or 1) for d in t.shape]
    return (f"// {kind.lower()} {i}: {t.name} (tensor '{t.artifact_name}'), {t.dtype} {dims}\n"
            f"constexpr TfLiteType k{kind}{i}Type = {_TFLITE_TYPES.get(t.dtype, 'kTfLiteNoType')};\n"
            f"constexpr int k{kind}{i}Elements = {int(np.prod(dims))};\n"
            f"constexpr float k{kind}{i}Scale = {float(t.scale)!r}f;\n"
            f"constexpr int k{kind}{i}ZeroPoint = {int(t.zero_point)};\n")


def _model_settings_h(session, arena: int, spec: dict) -> str:
    labels = next((o.get("labels") for o in spec["outputs"] if o.get("labels")), None)
    parts = ["// Sizes and quantization of the model (edgekit package --target mcu).",
             "#ifndef EDGEKIT_MODEL_SETTINGS_H_", "#define EDGEKIT_MODEL_SETTINGS_H_", "",
             '#include "tensorflow/lite/c/common.h"', "",
             f"// TFLite Micro needed {session.arena['smallest_bytes']} bytes of arena for this model here (64-bit "
             f"host,", f"// reference kernels); + {ARENA_MARGIN:.0%} + {ARENA_EXTRA_BYTES} B for a board's kernels' "
             "scratch buffers.", f"constexpr int kTensorArenaSize = {arena};",
             f"constexpr int kNumInputs = {len(session.inputs)};", f"constexpr int kNumOutputs = {len(session.outputs)};",
             ""]
    parts += [_tensor_constants("Input", i, t) for i, t in enumerate(session.inputs)]
    parts += [_tensor_constants("Output", i, t) for i, t in enumerate(session.outputs)]
    if labels:
        quoted = ", ".join('"' + str(label).replace("\\", "\\\\").replace('"', '\\"') + '"' for label in labels)
        parts += ["#define EDGEKIT_HAS_LABELS 1",
                  f"constexpr int kLabelsOutput = {next(i for i, o in enumerate(spec['outputs']) if o.get('labels'))};",
                  f"constexpr int kLabelCount = {len(labels)};",
                  f"constexpr const char* kLabels[kLabelCount] = {{{quoted}}};", ""]
    parts.append("#endif  // EDGEKIT_MODEL_SETTINGS_H_")
    return "\n".join(parts) + "\n"


def _sample_data_h(session, feeds: list[np.ndarray], outputs: list[np.ndarray], note: str) -> str:
    parts = [f"// {note}, as the model takes it, and what TFLite Micro answered here (edgekit package --target mcu).",
             "#ifndef EDGEKIT_SAMPLE_DATA_H_", "#define EDGEKIT_SAMPLE_DATA_H_", "", "#include <cstdint>", ""]
    for i, (t, x) in enumerate(zip(session.inputs, feeds, strict=True)):
        parts.append(_array(_C_TYPES[t.dtype], f"kSampleInput{i}", t.quantize(x)))
    for i, (t, y) in enumerate(zip(session.outputs, outputs, strict=True)):
        parts.append(_array(_C_TYPES[t.dtype], f"kExpectedOutput{i}", y))
    parts.append("#endif  // EDGEKIT_SAMPLE_DATA_H_")
    return "\n".join(parts) + "\n"


def _main_cc(session) -> str:
    copy_in = "\n".join(
        f"  std::memcpy(interpreter.input({i})->data.raw, kSampleInput{i}, sizeof(kSampleInput{i}));"
        for i in range(len(session.inputs)))
    check_out = "\n".join(
        f"  matches &= Report({i}, interpreter.output({i}), kExpectedOutput{i}, kOutput{i}Elements, kOutput{i}Scale, "
        f"kOutput{i}ZeroPoint);" for i in range(len(session.outputs)))
    return _MAIN_CC.replace("@COPY_IN@", copy_in).replace("@CHECK_OUT@", check_out)


_MAIN_CC = """// Runs one sample of the model on TFLite Micro and prints its outputs (edgekit package --target mcu).
// Build it with TFLite Micro for your board; on Arduino, rename it to a .ino sketch: setup() runs it.
#include <cstdint>
#include <cstring>

#include "model_data.h"
#include "model_ops.h"
#include "model_settings.h"
#include "sample_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t tensor_arena[kTensorArenaSize];

// Prints output `index` (dequantized, in thousandths) and its largest value; true when it equals what
// TFLite Micro gave for this sample on the machine that made the package.
template <typename T>
bool Report(int index, const TfLiteTensor* tensor, const T* expected, int count, float scale, int zero_point) {
  const T* values = reinterpret_cast<const T*>(tensor->data.raw);
  bool same = true;
  int best = 0;
  for (int i = 0; i < count; ++i) {
    same &= values[i] == expected[i];
    if (values[i] > values[best]) best = i;
    const float real = scale > 0 ? (static_cast<float>(values[i]) - zero_point) * scale : static_cast<float>(values[i]);
    MicroPrintf("output %d[%d] = %d/1000", index, i, static_cast<int>(real * 1000));
  }
  MicroPrintf("output %d: largest at %d; same as on the packaging machine: %s", index, best, same ? "yes" : "NO");
#if defined(EDGEKIT_HAS_LABELS)
  if (index == kLabelsOutput && best < kLabelCount) MicroPrintf("output %d: label %s", index, kLabels[best]);
#endif
  return same;
}
}  // namespace

int RunOnce() {
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema version %d, this TFLite Micro reads %d", static_cast<int>(model->version()),
                TFLITE_SCHEMA_VERSION);
    return 1;
  }
  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) {
    MicroPrintf("registering the model's operators failed");
    return 1;
  }
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("the model does not fit in a %d-byte arena: raise kTensorArenaSize", kTensorArenaSize);
    return 1;
  }
  MicroPrintf("arena: %d of %d bytes used", static_cast<int>(interpreter.arena_used_bytes()), kTensorArenaSize);
@COPY_IN@
  if (interpreter.Invoke() != kTfLiteOk) {
    MicroPrintf("Invoke failed");
    return 1;
  }
  bool matches = true;
@CHECK_OUT@
  return matches ? 0 : 2;
}

#if defined(ARDUINO)
void setup() { RunOnce(); }
void loop() {}
#else
int main() { return RunOnce(); }
#endif
"""


def _readme(name: str, session, arena: int, size: int, note: str) -> str:
    ops = ", ".join(f"{op} x{n}" for op, n in sorted(session.operators.items()))
    measured = session.arena
    return f"""# {name} on a microcontroller (TFLite Micro)

| | |
|---|---|
| model (flash) | {size:,} bytes, `g_model` in `model_data.cc` |
| tensor arena (SRAM) | `kTensorArenaSize` = {arena:,} bytes: {measured['smallest_bytes']:,} measured + {ARENA_MARGIN:.0%} + {ARENA_EXTRA_BYTES} B |
| operators | {ops} |

The arena was measured by running the model on TFLite Micro's own kernels (the `tflite-micro`
package, reference kernels, on a 64-bit host): the recording allocator used {measured['total_bytes']:,}
bytes ({measured['head_bytes']:,} for activations, {measured['tail_bytes']:,} persistent), and
{measured['smallest_bytes']:,} is the smallest arena it allocates in. The margin covers the scratch buffers
optimized kernels (CMSIS-NN, ESP-NN) ask for. `interpreter.arena_used_bytes()` on the board
gives its own figure: lower `kTensorArenaSize` to it plus a little once you have it.

## Build

Add `model_data.cc` and `main.cc` (or your own code) to a project that builds TFLite Micro:

- **tflite-micro tree** (any Cortex-M with CMSIS-NN):
  `make -f tensorflow/lite/micro/tools/make/Makefile OPTIMIZED_KERNEL_DIR=cmsis_nn TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp`
  with these files in a folder it compiles;
- **ESP-IDF**: `idf.py add-dependency "espressif/esp-tflite-micro"`, these files in `main/`;
- **Arduino**: the TensorFlow Lite Micro library for your board, `main.cc` renamed `main.ino`.

`RegisterModelOps()` in `model_ops.h` registers exactly the operators above: a kernel not
registered is not linked. `main.cc` feeds {note} and prints each output; it says whether the
board computed what TFLite Micro computed here (`sample_data.h`). Optimized kernels may differ
from the reference ones by a least significant bit or two.

## Inputs and outputs

{_io_table(session)}
Quantize a real value `x` as `round(x / scale) + zero_point` (clamped to the type's range), and
read an output as `(q - zero_point) * scale`. `model_card.json` has the preprocessing the model
was trained with and the labels.
"""


def _io_table(session) -> str:
    rows = ["| | name | tensor | shape | type | scale | zero point |", "|---|---|---|---|---|---|---|"]
    for kind, ts in (("input", session.inputs), ("output", session.outputs)):
        for i, t in enumerate(ts):
            rows.append(f"| {kind} {i} | {t.name} | `{t.artifact_name}` | {[int(d or 1) for d in t.shape]} | {t.dtype} | "
                        f"{t.scale:.6g} | {t.zero_point} |")
    return "\n".join(rows) + "\n"
