// The ONNX Runtime Web engine (onnxruntime-web): one .onnx model on ONNX Runtime's WebAssembly
// execution provider (SIMD; threads where the page is cross-origin isolated).
//
//   makeORTEngine(ort, {wasmPaths, modelBytes})
//     ort         the onnxruntime-web module (its wasm-only build, dist/ort.wasm.min.mjs, in a page)
//     wasmPaths   where its .wasm/.mjs files are served (a page); unset in Node
//     modelBytes  async () -> Uint8Array of the .onnx file
// load {threads} -> ort_version, threads, inputs and outputs with their element types.

const ARRAYS = {float32: Float32Array, float64: Float64Array, float16: Uint16Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array,
                int8: Int8Array, bool: Uint8Array};

// float16 tensors (an fp16 model's boundary) travel as IEEE half-precision bit patterns in a Uint16Array.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);

export function toHalf(v) {
  f32[0] = v;
  const x = u32[0], sign = (x >>> 16) & 0x8000, exp = (x >>> 23) & 0xff, man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);  // inf, nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;  // too large: inf
  if (e <= 0) {  // subnormal or zero
    if (e < -10) return sign;
    const m = (man | 0x800000) >>> (1 - e);
    return sign | ((m + 0x1000 + ((m >>> 13) & 1) - 1) >>> 13);
  }
  const h = sign | (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;  // round to nearest even
  return rest > 0x1000 || (rest === 0x1000 && (h & 1)) ? h + 1 : h;
}

export function fromHalf(h) {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function makeORTEngine(ort, host) {
  let session = null;
  let inputs = null, outputs = null;
  let bytes = null, options = null;

  function spec(name, meta) {
    // a symbolic dim is a string; an unnamed unknown one comes back as 2^32 - 1
    const shape = (meta && meta.shape ? meta.shape : []).map((d) => (typeof d === "number" && d > 0 && d < 2 ** 31 ? d : -1));
    return {name, shape, dtype: (meta && meta.type) || "float32"};
  }

  async function load(req) {
    const threads = Math.max(1, req.threads || 1);
    if (host.wasmPaths) ort.env.wasm.wasmPaths = host.wasmPaths;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    bytes = await host.modelBytes();
    options = {executionProviders: ["wasm"], graphOptimizationLevel: "all", executionMode: "sequential"};
    try {
      session = await ort.InferenceSession.create(bytes, options);
    } catch (e) {
      throw new Error(`cannot load this model: ${(e && e.message) || e}`);
    }
    const inMeta = session.inputMetadata || [], outMeta = session.outputMetadata || [];
    inputs = session.inputNames.map((n, i) => spec(n, inMeta[i]));
    outputs = session.outputNames.map((n, i) => spec(n, outMeta[i]));
    const bad = inputs.filter((t) => !ARRAYS[t.dtype]);
    if (bad.length) throw new Error(`edgekit cannot feed ${bad.map((t) => `${t.name} (${t.dtype})`).join(", ")} to it`);
    return {engine: "ort", ort_version: ort.env.versions ? ort.env.versions.web : null, threads: ort.env.wasm.numThreads,
            inputs, outputs, batch: 64};
  }

  function feeds(blocks) {
    const named = {};
    blocks.forEach(({data, shape}, k) => {
      const t = inputs[k];
      const Arr = ARRAYS[t.dtype];
      const typed = Arr === Float32Array ? data : Arr === Float64Array ? Float64Array.from(data)
        : t.dtype === "float16" ? Uint16Array.from(data, toHalf)
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
      if (out instanceof Uint16Array && t.type === "float16") out = Float32Array.from(out, fromHalf);
      else if (t.type === "float16") out = Float32Array.from(out);  // a browser with Float16Array
      else if (out instanceof BigInt64Array) out = Float32Array.from(out, Number);
      const shape = [...t.dims];
      t.dispose();
      return {out, shape};
    });
  }

  function dispose(named) {
    for (const t of Object.values(named)) t.dispose();
  }

  // Per-node times of `runs` inferences: ONNX Runtime's own profiler in a second session made with
  // enableProfiling (profiling starts when a session is made). Its WebAssembly build prints the trace's
  // events to the console when profiling ends: the runner's consoleCatch keeps them. With req.chains
  // (two graphs of 40 and 80 trivial nodes), the profiler's own cost is measured the same way: one chain
  // profiled, both timed plainly (edgekit.profiling.onnx_ops.cost_per_event_us).
  async function traced(modelBytes, named, runs, consoleCatch) {
    const profiled = await ort.InferenceSession.create(modelBytes, {...options, enableProfiling: true});
    try {
      for (let i = 0; i < 5 + runs; i++) {
        const result = await profiled.run(named);
        for (const t of Object.values(result)) t.dispose();
      }
      consoleCatch.lines = [];
      consoleCatch.active = true;
      try {
        await profiled.endProfiling();
      } finally {
        consoleCatch.active = false;
      }
    } finally {
      await profiled.release();
    }
    return consoleCatch.lines.splice(0);
  }

  function fromBase64(text) {
    if (globalThis.Buffer) return new Uint8Array(globalThis.Buffer.from(text, "base64"));
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  async function plainMeanMs(modelBytes, named, rounds, runs) {
    const s = await ort.InferenceSession.create(modelBytes, options);
    const means = [];
    try {
      for (let i = 0; i < 20; i++) for (const t of Object.values(await s.run(named))) t.dispose();
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        for (let i = 0; i < runs; i++) for (const t of Object.values(await s.run(named))) t.dispose();
        means.push((performance.now() - t0) / runs);
      }
    } finally {
      await s.release();
    }
    return Math.min(...means);
  }

  async function profile(named, runs, consoleCatch, req = {}) {
    const reply = {trace_lines: await traced(bytes, named, runs, consoleCatch), warmup: 5};
    if (req.chains) {
      const chains = {40: fromBase64(req.chains["40"]), 80: fromBase64(req.chains["80"])};
      const x = {x: new ort.Tensor("float32", new Float32Array(16).fill(1), [1, 16])};
      reply.chain_trace_lines = await traced(chains[40], x, runs, consoleCatch);
      const p40 = [], p80 = [];
      for (let r = 0; r < 3; r++) {  // interleaved: the fastest of each
        p40.push(await plainMeanMs(chains[40], x, 1, 200));
        p80.push(await plainMeanMs(chains[80], x, 1, 200));
      }
      reply.chain_plain_us = {40: Math.min(...p40) * 1000, 80: Math.min(...p80) * 1000};
    }
    return reply;
  }

  return {load, feeds, infer, dispose, profile};
}
