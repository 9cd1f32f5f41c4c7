// The LiteRT.js engine (@litertjs/core): one .tflite model compiled for LiteRT's WebAssembly CPU path
// (XNNPACK), the same file that runs on Android and the Raspberry Pi.
//
//   makeLiteRtEngine(litert, {wasmDir, modelBytes})
//     litert      the @litertjs/core module
//     wasmDir     URL or path of the package's wasm/ folder
//     modelBytes  async () -> Uint8Array of the .tflite file
// load {threads} -> litert_version, wasm build, threads, inputs and outputs with their element types.
//
// The engine speaks to LiteRT's own low-level API (loadModel / compileModel / LiteRtTensorBuffer), as the
// package's high-level wrapper does inside, because the wrapper refuses two kinds of models edgekit
// makes: a dynamic batch (shape signature -1) fails its shape check, and int8 inputs or outputs (a
// full-integer model) are refused ("Element type INT8 is not supported"). Every wasm object made
// here is deleted when it is no longer needed: leaked objects froze the threaded build's page.

const ELEMENT_TYPES = {1: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8", 10: "float16"};
const ARRAYS = {float32: Float32Array, int32: Int32Array, uint8: Uint8Array, int64: BigInt64Array, int16: Int16Array,
                int8: Int8Array, bool: Uint8Array};

function vectorToArray(v) {
  const out = [];
  for (let i = 0; i < v.size(); i++) out.push(v.get(i));
  v.delete();
  return out;
}

export function makeLiteRtEngine(litert, host) {
  let wasm = null, env = null, model = null, compiled = null, modelPtr = 0;
  let inputs = null, outputs = null;

  function tensorSpec(name, type) {
    const layout = type.layout();
    const shape = vectorToArray(layout.dimensions());
    layout.delete();
    const code = type.elementType().value;
    type.delete();
    const dtype = ELEMENT_TYPES[code] || `element type ${code}`;
    return {name, shape, dtype, code};
  }

  async function load(req) {
    const threads = Math.max(1, req.threads || 1);
    const lrt = await litert.loadLiteRt(host.wasmDir, threads > 1 ? {threads: true} : undefined);
    wasm = lrt.liteRtWasm;
    env = lrt.getDefaultEnvironment();
    const bytes = await host.modelBytes();
    modelPtr = wasm._malloc(bytes.byteLength);
    wasm.HEAPU8.set(bytes, modelPtr);
    try {
      model = wasm.loadModel(env.liteRtEnvironment, modelPtr, bytes.byteLength);
    } catch (e) {
      throw new Error(`cannot read this .tflite file${errorText(e)}`);
    }
    const options = {environment: env, accelerator: "wasm", cpuOptions: {numThreads: threads}, gpuOptions: {}, webNNOptions: {}};
    try {
      compiled = await wasm.compileModel(env.liteRtEnvironment, model, options);
    } catch (e) {
      throw new Error(`cannot compile this model${errorText(e)}`);
    }
    const sig = model.getSignature(0);
    const inNames = vectorToArray(sig.inputNames()), outNames = vectorToArray(sig.outputNames());
    const key = sig.key();
    sig.delete();
    inputs = inNames.map((n, i) => tensorSpec(n, model.getInputTensorType(0, i)));
    outputs = outNames.map((n, i) => tensorSpec(n, model.getOutputTensorType(0, i)));
    const bad = [...inputs, ...outputs].filter((t) => !ARRAYS[t.dtype]);
    if (bad.length) throw new Error(`edgekit cannot feed or read ${bad.map((t) => `${t.name} (${t.dtype})`).join(", ")} in it`);
    return {engine: "litert", litert_version: litert.version || null, signature: key, threads: wasm.getThreadCount(),
            build: threads > 1 ? "threaded" : "single-threaded", inputs: inputs.map(({code, ...t}) => t),
            outputs: outputs.map(({code, ...t}) => t), batch: 1};
  }

  function feeds(blocks) {
    return blocks.map(({data, shape}, k) => {
      const spec = inputs[k];
      const Arr = ARRAYS[spec.dtype];
      const typed = Arr === BigInt64Array ? BigInt64Array.from(data, (v) => BigInt(Math.round(v))) : Arr.from(data);
      const dims = new wasm.VectorInt32();
      for (const d of shape) dims.push_back(d);
      const layout = wasm.LiteRtLayout.create(dims);
      dims.delete();
      const type = wasm.LiteRtRankedTensorType.create({value: spec.code}, layout);
      layout.delete();
      const buffer = wasm.LiteRtTensorBuffer.createManaged(env.liteRtEnvironment, wasm.LiteRtTensorBufferType.HOST_MEMORY,
                                                          type, typed.byteLength);
      type.delete();
      const ptr = buffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
      try {
        wasm.HEAPU8.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), ptr);
      } finally {
        buffer.unlock();
      }
      return buffer;
    });
  }

  function read(buffer, k) {
    const spec = outputs[k];
    const type = buffer.tensorType();
    const layout = type.layout();
    const shape = vectorToArray(layout.dimensions());
    layout.delete();
    type.delete();
    const ptr = buffer.lock(wasm.LiteRtTensorBufferLockMode.READ);
    let out;
    try {
      const bytes = wasm.HEAPU8.slice(ptr, ptr + buffer.packedSize());
      out = new ARRAYS[spec.dtype](bytes.buffer, 0, bytes.byteLength / ARRAYS[spec.dtype].BYTES_PER_ELEMENT);
    } finally {
      buffer.unlock();
      buffer.delete();
    }
    if (out instanceof BigInt64Array) out = Float32Array.from(out, Number);
    return {out, shape};
  }

  function infer(buffers) {
    const r = compiled.run(0, buffers);
    return r instanceof Promise ? r.then((outs) => outs.map(read)) : r.map(read);
  }

  function dispose(buffers) {
    for (const b of buffers) b.delete();
  }

  return {load, feeds, infer, dispose};
}

function errorText(e) {
  // LiteRT's wasm throws a bare "ERROR: [file.cc:245]"; its reason is in the log it printed (the
  // transport adds that). Keep only what says something.
  const text = String((e && e.message) || e).replace(/ERROR:\s*\[[^\]]*\]/g, "").trim();
  return /[A-Za-z]/.test(text) ? `: ${text}` : "";
}
