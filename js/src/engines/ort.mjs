// The ONNX Runtime Web engine (onnxruntime-web): one .onnx model on ONNX Runtime's WebAssembly
// execution provider (SIMD; threads where the page is cross-origin isolated).
//
//   makeORTEngine(ort, {wasmPaths, modelBytes})
//     ort         the onnxruntime-web module (its wasm-only build, dist/ort.wasm.min.mjs, in a page)
//     wasmPaths   where its .wasm/.mjs files are served (a page); unset in Node
//     modelBytes  async () -> Uint8Array of the .onnx file
// load {threads} -> ort_version, threads, inputs and outputs with their element types.

const ARRAYS = {float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array,
                bool: Uint8Array};

export function makeORTEngine(ort, host) {
  let session = null;
  let inputs = null, outputs = null;

  function spec(name, meta) {
    const shape = (meta && meta.shape ? meta.shape : []).map((d) => (typeof d === "number" && d > 0 ? d : -1));
    return {name, shape, dtype: (meta && meta.type) || "float32"};
  }

  async function load(req) {
    const threads = Math.max(1, req.threads || 1);
    if (host.wasmPaths) ort.env.wasm.wasmPaths = host.wasmPaths;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    const bytes = await host.modelBytes();
    try {
      session = await ort.InferenceSession.create(bytes, {executionProviders: ["wasm"], graphOptimizationLevel: "all",
                                                         executionMode: "sequential"});
    } catch (e) {
      throw new Error(`ONNX Runtime Web cannot load this model: ${(e && e.message) || e}`);
    }
    const inMeta = session.inputMetadata || [], outMeta = session.outputMetadata || [];
    inputs = session.inputNames.map((n, i) => spec(n, inMeta[i]));
    outputs = session.outputNames.map((n, i) => spec(n, outMeta[i]));
    const bad = inputs.filter((t) => !ARRAYS[t.dtype]);
    if (bad.length) throw new Error(`ONNX Runtime Web in edgekit cannot feed ${bad.map((t) => `${t.name} (${t.dtype})`).join(", ")}`);
    return {engine: "ort", ort_version: ort.env.versions ? ort.env.versions.web : null, threads: ort.env.wasm.numThreads,
            inputs, outputs, batch: 64};
  }

  function feeds(blocks) {
    const named = {};
    blocks.forEach(({data, shape}, k) => {
      const t = inputs[k];
      const Arr = ARRAYS[t.dtype];
      const typed = Arr === Float32Array ? data
        : Arr === BigInt64Array ? BigInt64Array.from(data, (v) => BigInt(Math.round(v))) : Arr.from(data);
      named[t.name] = new ort.Tensor(t.dtype, typed, shape);
    });
    return named;
  }

  async function infer(named) {
    const result = await session.run(named);
    return outputs.map((o) => {
      const t = result[o.name];
      let out = t.data;
      if (out instanceof BigInt64Array) out = Float32Array.from(out, Number);
      const shape = [...t.dims];
      t.dispose();
      return {out, shape};
    });
  }

  function dispose(named) {
    for (const t of Object.values(named)) t.dispose();
  }

  return {load, feeds, infer, dispose};
}
