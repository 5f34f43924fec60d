import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { sweepDisabled, sweepEnabled } from "../src/analysis/sweeps";
import { allBypassed, groupQuantizers, onlyEnabled } from "../src/analysis/variants";
import { layerError } from "../src/analysis/layer-error";
import { useEngine } from "../src/engine/engine";
import { lowerGraph, QuantizerLowering } from "../src/engine/onnx/lower-graph";
import { OnnxProgram } from "../src/engine/onnx/program";
import { TensorPool } from "../src/engine/onnx/tensor-pool";
import { bytesPerExample, peakBytesPerExample, SESSION_CHUNK, sessionChunks, WORKER_CHUNK, workerBytes } from "../src/engine/onnx/memory";
import { createSession, requireOrt } from "../src/engine/onnx/runtime";
import { quantizerFeeds, storageFor } from "../src/engine/onnx/sim-config";
import { Graph } from "../src/graph/graph";
import { loadGraph, loadLayersModelFromFile } from "../src/graph/load-model";
import { computeEncoding, QuantScheme } from "../src/quant/encoding";
import { fakeQuant } from "../src/quant/fake-quant";
import { QuantSim } from "../src/quant/quantsim";
import { toDataset } from "../src/data/dataset";
import { exportOnnxModel } from "../src/export/onnx-model";
import { assertNoLeak, setupBackend } from "./helpers";
import { buildZooModel, esrganSlim, EXAMPLE_MODEL, nsfwjsMobileNetV2 } from "./fixtures/models";
import { KNOWN_ANSWERS } from "./quant-encoding.test";

/** A graph of one input, so a quantizer on it is the whole model. */
function inputOnlyGraph(length: number): Graph {
  return new Graph({ name: "input-only", nodes: [{ name: "x", op: "input", layerClass: "InputLayer", inputs: [], params: {}, attrs: { dtype: "float32" }, outputShape: [null, length] }], inputs: ["x"], outputs: ["x"] });
}

/** Quantize-dequantize `values` with `enc` in ONNX Runtime, through the lowering analyses use. */
async function onnxQdq(values: Float32Array, enc: ReturnType<typeof computeEncoding>, storage: QuantizerLowering["storage"]): Promise<Float32Array> {
  const ort = requireOrt();
  const graph = inputOnlyGraph(values.length);
  const max = storage === "uint8" ? 255 : 65535;
  const q: QuantizerLowering = { name: "x.output", storage, clip: storage !== "float" && enc.numSteps < max, switchable: false };
  const lowered = lowerGraph(graph, { quantizers: new Map([["x", q]]) });
  const session = await createSession(lowered.bytes, { threads: 1 });
  const f = quantizerFeeds(enc, storage);
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const i of lowered.inputs) {
    if (i.kind === "model") feeds[i.onnx] = new ort.Tensor("float32", values, [1, values.length]);
    if (i.kind !== "quantizer") continue;
    if (i.field === "scale") feeds[i.onnx] = new ort.Tensor("float32", new Float32Array([f.scale]), []);
    if (i.field === "lo") feeds[i.onnx] = new ort.Tensor("float32", new Float32Array([f.lo]), []);
    if (i.field === "hi") feeds[i.onnx] = new ort.Tensor("float32", new Float32Array([f.hi]), []);
    if (i.field === "zeroPoint") feeds[i.onnx] = i.dtype === "uint8" ? new ort.Tensor("uint8", new Uint8Array([f.zeroPoint]), []) : new ort.Tensor("uint16", new Uint16Array([f.zeroPoint]), []);
  }
  const out = await session.run(feeds);
  await session.release();
  return out[lowered.outputs[0].onnx].data as Float32Array;
}

const plain = (xs: ArrayLike<number>) => Array.from(xs, (v) => v + 0);

describe("ONNX Runtime engine", () => {
  before(async () => {
    await setupBackend();
    useEngine("onnx");
  });
  after(() => useEngine());

  describe("quantize-dequantize is bit-identical to the tfjs kernel", () => {
    for (const row of KNOWN_ANSWERS) {
      it(`known answers: ${row.what}`, async () => {
        const enc = computeEncoding(row.min, row.max, row.bw, row.scheme);
        const x = tf.tensor1d(row.x);
        const kernel = fakeQuant(x, enc);
        const expected = plain(kernel.dataSync());
        tf.dispose([x, kernel]);
        const ours = await onnxQdq(new Float32Array(row.x), enc, storageFor(enc));
        assert.deepEqual(plain(ours), expected, row.what);
        ours.forEach((v, i) => assert.ok(Math.abs(v - row.qdq[i]) <= 1e-6 * Math.max(1, Math.abs(row.qdq[i])), `qdq(${row.x[i]}) = ${v}, expected ${row.qdq[i]}`));
      });
    }

    it("random tensors, every scheme, 2 to 32 bits, through each storage that can hold the grid", async () => {
      const x = tf.randomNormal([4096], 0.3, 2, "float32", 11);
      const values = x.dataSync() as Float32Array;
      let checked = 0;
      for (const scheme of ["asymmetric", "symmetric", "strict-symmetric", "unsigned-symmetric"] as QuantScheme[]) {
        for (const bw of [2, 3, 4, 6, 8, 9, 12, 16, 20, 25, 32]) {
          const enc = computeEncoding(-2.5, 3.3, bw, scheme);
          const y = fakeQuant(x, enc);
          const expected = plain(y.dataSync());
          y.dispose();
          for (const storage of ["uint8", "uint16", "float"] as const) {
            if (storage === "uint8" && enc.numSteps > 255) continue;
            if (storage === "uint16" && enc.numSteps > 65535) continue;
            assert.deepEqual(plain(await onnxQdq(values, enc, storage)), expected, `${scheme} ${bw}-bit via ${storage}`);
            checked++;
          }
        }
      }
      x.dispose();
      assert.ok(checked >= 80, `only ${checked} cases checked`);
    });
  });

  it("Keras's ZeroPadding2D before a valid conv runs inside the conv (ONNX Runtime's profile has no Pad kernel)", async () => {
    // MobileNetV2 pads explicitly before its five stride-2 convs; a Pad left standing breaks ORT's blocked (NCHWc)
    // layout into reorders around it, which cost a third of the forward pass.
    const graph = await loadGraph(nsfwjsMobileNetV2());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-profile-"));
    const ort = requireOrt();
    try {
      assert.equal(graph.nodes.filter((n) => n.op === "zeroPad2d").length, 5);
      const lowered = lowerGraph(graph);
      const session = await ort.InferenceSession.create(lowered.bytes, { enableProfiling: true, profileFilePrefix: path.join(dir, "run"), graphOptimizationLevel: "all" });
      const x = new ort.Tensor("float32", new Float32Array(224 * 224 * 3).fill(0.5), [1, 224, 224, 3]);
      await session.run({ [lowered.inputs[0].onnx]: x });
      session.endProfiling();
      await session.release();
      const [file] = fs.readdirSync(dir);
      const events = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as { cat?: string; args?: { op_name?: string } }[];
      const ops = new Set(events.filter((e) => e.cat === "Node").map((e) => e.args?.op_name));
      assert.ok(ops.has("Conv"), `kernels run: ${[...ops].join(", ")}`);
      assert.ok(!ops.has("Pad"), `a Pad kernel ran: ${[...ops].join(", ")}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      graph.dispose();
    }
  });

  describe("graph on ONNX Runtime vs model.predict (FP32, every quantizer bypassed)", () => {
    const cases: { name: string; model: () => Promise<tf.LayersModel>; shape?: number[] }[] = [
      { name: "example MNIST model", model: () => loadLayersModelFromFile(EXAMPLE_MODEL) },
      { name: "nsfwjs MobileNetV2", model: () => loadLayersModelFromFile(nsfwjsMobileNetV2()) },
      { name: "esrgan-slim x2", model: () => loadLayersModelFromFile(esrganSlim(2)), shape: [2, 24, 20, 3] },
      { name: "zoo model (every supported layer, three inputs and outputs)", model: async () => buildZooModel() },
    ];
    for (const c of cases) {
      it(`${c.name}: largest relative difference <= 1e-5`, async () => {
        const model = await c.model();
        const graph = await loadGraph(model);
        const inputs = graph.inputSpecs.map((spec, i) => {
          const shape = c.shape ?? spec.shape.map((d, axis) => (axis === 0 ? 3 : d ?? 16));
          return spec.dtype === "int32" ? tf.randomUniform(shape, 0, 5, "int32", 3 + i) : tf.randomUniform(shape, 0, 1, "float32", 3 + i);
        });
        const sim = QuantSim.create(graph).with({ "**": { enabled: false } });
        const program = new OnnxProgram(graph, sim.sites);
        const predicted = model.predict(inputs.length === 1 ? inputs[0] : inputs);
        const expected = Array.isArray(predicted) ? predicted : [predicted];
        try {
          await assertNoLeak("OnnxProgram.run", () =>
            program.run(inputs, [{ key: "fp32", sim }], (_key, outputs) => {
              assert.equal(outputs.length, expected.length);
              outputs.forEach((o, i) => {
                assert.deepEqual(o.shape, expected[i].shape, `output ${i} shape`);
                const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(o, expected[i]))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(expected[i])).dataSync()[0]));
                assert.ok(diff <= 1e-5, `output ${i}: relative difference ${diff}`);
              });
            }),
          );
        } finally {
          await program.dispose();
          tf.dispose([...inputs, ...expected]);
          sim.dispose();
          graph.dispose();
          model.dispose();
        }
      });
    }
  });

  it("the enable-one sweep gives the tfjs engine's scores and ranking on the example model", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    const data = toDataset("mnist:0:64");
    useEngine("tfjs");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(data);
    try {
      const tfjs = await sweepEnabled(sim, { data, metric: "sqnr" });
      useEngine("onnx");
      const onnx = await assertNoLeak("sweepEnabled on ONNX Runtime", () => sweepEnabled(sim, { data, metric: "sqnr" }));
      assert.equal(onnx.rows.length, tfjs.rows.length);
      // The engines accumulate in other orders, so values near a rounding tie can land on the neighbouring code:
      // scores agree to 1 % (at very high SQNR the noise itself is float rounding).
      onnx.rows.forEach((r, i) => assert.ok(Math.abs(r.score - tfjs.rows[i].score) <= 0.01 * Math.abs(tfjs.rows[i].score) + 0.02 || Math.min(r.score, tfjs.rows[i].score) > 100, `${r.key}: ${r.score} dB vs ${tfjs.rows[i].score} dB`));
      const worst = (rows: typeof onnx.rows) => [...rows].sort((a, b) => a.score - b.score).slice(0, 3).map((r) => r.key);
      assert.deepEqual(worst(onnx.rows), worst(tfjs.rows));
      assert.ok(Math.abs(onnx.quantizedScore - tfjs.quantizedScore) < 0.05);
    } finally {
      useEngine("onnx");
      sim.dispose();
      graph.dispose();
    }
  });

  it("a pass of many batches (each variant in sessions of its own) gives the tfjs engine's scores in both sweeps", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    // Eight batches: the engine builds a session per variant and runs it on every batch of the pass.
    const data = toDataset("mnist:0:64", { batchSize: 8 });
    useEngine("tfjs");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(data);
    try {
      for (const sweep of [sweepEnabled, sweepDisabled]) {
        useEngine("tfjs");
        const tfjs = await sweep(sim, { data, metric: "sqnr" });
        useEngine("onnx");
        const onnx = await assertNoLeak(`${sweep.name} on ONNX Runtime`, () => sweep(sim, { data, metric: "sqnr" }));
        assert.deepEqual(onnx.rows.map((r) => r.key), tfjs.rows.map((r) => r.key));
        onnx.rows.forEach((r, i) => assert.ok(Math.abs(r.score - tfjs.rows[i].score) <= 0.01 * Math.abs(tfjs.rows[i].score) + 0.02 || Math.min(r.score, tfjs.rows[i].score) > 100, `${sweep.name} ${r.key}: ${r.score} dB vs ${tfjs.rows[i].score} dB`));
        const order = (rows: typeof onnx.rows) => [...rows].sort((a, b) => a.score - b.score).map((r) => r.key);
        assert.deepEqual(order(onnx.rows).slice(0, 3), order(tfjs.rows).slice(0, 3), sweep.name);
        assert.ok(Math.abs(onnx.quantizedScore - tfjs.quantizedScore) < 0.05, `${sweep.name}: ${onnx.quantizedScore} vs ${tfjs.quantizedScore}`);
      }
    } finally {
      useEngine("onnx");
      sim.dispose();
      graph.dispose();
    }
  });

  it("a pass over many batches and segments gives each variant the outputs it gives alone, with an output computed early and the input read late, its inputs dropped once read", async () => {
    // Two outputs: one computed in an early segment (a feature map the chain goes on from), and one that reads the
    // model input again in the last segment.
    const L = tf.layers;
    const image = tf.input({ shape: [16, 16, 3], name: "image" });
    let x = image;
    let early: tf.SymbolicTensor | undefined;
    for (let i = 0; i < 7; i++) {
      x = L.conv2d({ filters: 8, kernelSize: 3, padding: "same", activation: "relu", name: `conv_${i}` }).apply(x) as tf.SymbolicTensor;
      if (i === 1) early = x;
    }
    const pooled = [L.globalAveragePooling2d({ name: "pool_late" }).apply(x), L.globalAveragePooling2d({ name: "pool_image" }).apply(image)] as tf.SymbolicTensor[];
    const late = L.dense({ units: 5, name: "late" }).apply(L.concatenate({ name: "joined" }).apply(pooled)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: image, outputs: [early!, late], name: "early_and_late" });
    const graph = await loadGraph(model);
    const batches = [0, 1, 2, 3].map((b) => graph.inputSpecs.map((spec, i) => tf.randomUniform(spec.shape.map((d, axis) => (axis === 0 ? 3 : d!)), 0, 1, "float32", 10 * b + i)));
    const data = { name: "four batches", size: 12, async *batches() { for (const inputs of batches) yield { inputs: inputs.map((t) => t.clone()) }; } };
    // 16-bit activations: a value near a rounding tie moves by one 16-bit step at most, far below the tolerance.
    const sim = await QuantSim.create(graph, { activations: { bitwidth: 16 } }).calibrate(data);
    const groups = groupQuantizers(sim, "layer");
    // Enable-one variants leave the FP32 trunk at every segment; FP32 follows it to the end; the whole simulation leaves it first.
    const variants = [...groups.map((g) => ({ key: g.key, sim: onlyEnabled(sim, g.quantizers) })), { key: "fp32", sim: allBypassed(sim) }, { key: "all", sim }];
    const program = new OnnxProgram(graph, sim.sites, { segments: 10, threads: 1 });
    try {
      assert.ok(program.segments.length >= 3, `${program.segments.length} segments`);
      const seen = new Map<string, number>();
      const feeds = batches.map((inputs) => program.feedsOf(inputs));
      await assertNoLeak("runPass", () =>
        program.runPass(feeds, variants, (key, b, outputs) => {
          seen.set(key, (seen.get(key) ?? 0) + 1);
          const v = variants.find((x) => x.key === key)!;
          const expected = v.sim.forward(batches[b]);
          try {
            assert.equal(outputs.length, 2);
            outputs.forEach((o, i) => {
              assert.deepEqual(o.shape, expected[i].shape, `${key} batch ${b} output ${i}`);
              const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(o, expected[i]))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(expected[i])).dataSync()[0]));
              assert.ok(diff <= 1e-4, `${key} batch ${b} output ${i}: relative difference ${diff}`);
            });
          } finally {
            tf.dispose(expected);
          }
        }, { consumeInputs: true }),
      );
      // The inputs were dropped after the first segment, which holds the input node; the last reads it through the trunk.
      assert.ok(feeds.every((f) => Object.keys(f).length === 0), "the pass's inputs were kept to its end");
      assert.deepEqual([...seen.keys()].sort(), variants.map((v) => v.key).sort());
      assert.ok([...seen.values()].every((n) => n === batches.length), JSON.stringify([...seen]));
    } finally {
      await program.dispose();
      for (const v of variants) if (v.sim !== sim) v.sim.dispose();
      sim.dispose();
      tf.dispose(batches.flat());
      graph.dispose();
      model.dispose();
    }
  });

  it("variants run in worker threads, in parts of a batch, give the main thread's outputs bit for bit", async () => {
    const L = tf.layers;
    const image = tf.input({ shape: [12, 12, 3], name: "image" });
    let x = image;
    for (let i = 0; i < 6; i++) x = L.conv2d({ filters: 6, kernelSize: 3, padding: "same", activation: "relu6", name: `conv_${i}` }).apply(x) as tf.SymbolicTensor;
    const out = L.dense({ units: 4, name: "logits" }).apply(L.globalAveragePooling2d({ name: "pool" }).apply(x)) as tf.SymbolicTensor;
    const model = tf.model({ inputs: image, outputs: out, name: "six_convs" });
    const graph = await loadGraph(model);
    // Batches of 10: workers run them in parts of 8 and 2, the main thread whole.
    const batches = [0, 1, 2].map((b) => [tf.randomUniform([10, 12, 12, 3], 0, 1, "float32", 100 + b)]);
    const data = { name: "three batches", size: 30, async *batches() { for (const inputs of batches) yield { inputs: inputs.map((t) => t.clone()) }; } };
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 6 } }).calibrate(data);
    const groups = groupQuantizers(sim, "layer");
    const outputsOf = async (workers: number) => {
      const program = new OnnxProgram(graph, sim.sites, { segments: 4, threads: 1, workers });
      const got = new Map<string, Float32Array>();
      try {
        // Two passes: after the first, the workers have dropped every segment's sessions (forgetSegment) and open them again.
        for (const pass of ["a", "b"]) {
          const variants = groups.map((g) => ({ key: g.key, sim: onlyEnabled(sim, g.quantizers) }));
          await program.runPass(batches.map((inputs) => program.feedsOf(inputs)), variants, (key, b, outputs) => void got.set(`${key}#${b}#${pass}`, outputs[0].dataSync() as Float32Array));
        }
        assert.equal(program.workerThreads, workers === 0 ? 0 : workers, "the variants ran where asked");
      } finally {
        await program.dispose();
      }
      return got;
    };
    try {
      const before = tf.memory().numTensors;
      const alone = await outputsOf(0);
      const side = await outputsOf(2);
      assert.equal(tf.memory().numTensors, before, "no tensor left behind");
      assert.equal(alone.size, 2 * groups.length * batches.length);
      assert.deepEqual([...side.keys()].sort(), [...alone.keys()].sort());
      for (const [k, v] of alone) assert.deepEqual(Array.from(side.get(k)!), Array.from(v), k);
      // The second pass, on sessions opened again, gives the first pass's values.
      for (const [k, v] of side) if (k.endsWith("#b")) assert.deepEqual(Array.from(v), Array.from(side.get(k.replace(/#b$/, "#a"))!), k);
      // Variants differ from one another: the comparison is not between constant outputs.
      assert.notDeepEqual(Array.from(alone.get(`${groups[0].key}#0#a`)!), Array.from(alone.get(`${groups.at(-1)!.key}#0#a`)!));
    } finally {
      sim.dispose();
      tf.dispose(batches.flat());
      graph.dispose();
      model.dispose();
    }
  });

  it("calibration gives the tfjs engine's ranges", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    const data = toDataset("mnist:0:64");
    try {
      useEngine("tfjs");
      const a = await QuantSim.create(graph).calibrate(data);
      useEngine("onnx");
      const b = await assertNoLeak("calibrate on ONNX Runtime", () => QuantSim.create(graph).calibrate(data));
      for (const s of a.sites.filter((x) => x.kind === "activation")) {
        const sa = a.statsOf(s.name)!;
        const sb = b.statsOf(s.name)!;
        assert.equal(sb.count, sa.count, s.name);
        assert.ok(Math.abs(sb.min - sa.min) <= 1e-5 * Math.max(1, Math.abs(sa.min)) && Math.abs(sb.max - sa.max) <= 1e-5 * Math.max(1, Math.abs(sa.max)), `${s.name}: [${sb.min}, ${sb.max}] vs [${sa.min}, ${sa.max}]`);
      }
    } finally {
      useEngine("onnx");
      graph.dispose();
    }
  });
});

describe("sub-batches of a few whole-model sessions", () => {
  // input [4,4,2] → a: conv 1x1, 3 filters → b: conv 1x1, 5 filters → concat(a, b): a stays alive across b.
  const build = async () => {
    const x = tf.input({ shape: [4, 4, 2] });
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: "a" }).apply(x) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 5, kernelSize: 1, name: "b" }).apply(a) as tf.SymbolicTensor;
    const y = tf.layers.concatenate({ name: "ab" }).apply([a, b]) as tf.SymbolicTensor;
    return loadGraph(tf.model({ inputs: x, outputs: y }));
  };

  it("counts the values alive at once: the peak is at the concat, which holds a, b and its own output", async () => {
    const graph = await build();
    try {
      const sample = [{ shape: [1, 4, 4, 2] }];
      assert.deepEqual(graph.nodes.map((n) => n.op), ["input", "conv2d", "conv2d", "concat"]);
      // Floats: x 32, a 48, b 80, concat 128. Alive: x+a = 80, then a+b = 128, then a+b+concat = 256.
      assert.equal(peakBytesPerExample(graph, sample), 4 * 256);
      assert.equal(bytesPerExample(graph, sample), 4 * (32 + 48 + 80 + 128));
    } finally {
      graph.dispose();
    }
  });

  it("a sweep's worker is counted at the examples it runs at once: the pass's batch, at most WORKER_CHUNK", async () => {
    const graph = await build();
    try {
      // Weights: a 2*3+3, b 3*5+5 = 29 floats, held four times. Every value: 288 floats per example; arenas keep a quarter of it.
      const weights = 4 * 4 * 29;
      const perExample = (4 * 288) / 4;
      assert.equal(graph.paramCount(), 29);
      assert.equal(workerBytes(graph, [{ shape: [1, 4, 4, 2] }]), weights + perExample);
      assert.equal(workerBytes(graph, [{ shape: [2, 4, 4, 2] }]), weights + 2 * perExample);
      assert.equal(WORKER_CHUNK, 8);
      assert.equal(workerBytes(graph, [{ shape: [32, 4, 4, 2] }]), weights + 8 * perExample);
    } finally {
      graph.dispose();
    }
  });

  it("cuts a batch into even parts within the budget, at most SESSION_CHUNK examples, keeping every example", async () => {
    const graph = await build();
    const saved = process.env.QDEBUG_MEMORY;
    const x = tf.randomUniform([20, 4, 4, 2], 0, 1, "float32", 5);
    try {
      // 40 MB is below what this process holds: the engine gets a quarter, 10 MB.
      process.env.QDEBUG_MEMORY = "40MB";
      const sizes = (sessions: number) => {
        const chunks = sessionChunks(graph, [x], sessions);
        const joined = tf.concat(chunks.map((c) => c[0]));
        assert.deepEqual(Array.from(joined.dataSync()), Array.from(x.dataSync()));
        joined.dispose();
        if (chunks.length > 1) chunks.forEach((c) => tf.dispose(c));
        return chunks.map((c) => c[0].shape[0]);
      };
      // 10 MB / (1000 x 1 KB) = 10 examples fit, capped at 8: three parts, even.
      assert.deepEqual(sizes(1000), [7, 7, 6]);
      assert.equal(SESSION_CHUNK, 8);
      // 10 MB / (2000 x 1 KB) = 5.
      assert.deepEqual(sizes(2000), [5, 5, 5, 5]);
      // Far more sessions than fit: one example at a time.
      assert.deepEqual(sizes(1e6), new Array(20).fill(1));
    } finally {
      if (saved === undefined) delete process.env.QDEBUG_MEMORY;
      else process.env.QDEBUG_MEMORY = saved;
      x.dispose();
      graph.dispose();
    }
  });
});

describe("buffers handed between segments", () => {
  it("a shape keeps at most as many free buffers as were ever taken at once, and reuses them", () => {
    const ort = requireOrt();
    const pool = new TensorPool(ort);
    const taken = [pool.take([2, 3]), pool.take([2, 3]), pool.take([2, 3])];
    for (const t of taken) pool.give(t);
    assert.equal(pool.freeCount, 3);
    assert.ok(taken.includes(pool.take([2, 3])), "a free buffer is reused");
    pool.give(taken[2]);
    // Outputs ORT allocated itself (a new session's first run) beyond that are dropped, not hoarded.
    for (let i = 0; i < 5; i++) pool.give(new ort.Tensor("float32", new Float32Array(6), [2, 3]));
    assert.equal(pool.freeCount, 3);
    // A shape never taken keeps one, for the next run to take; int32 values are never pooled.
    pool.give(new ort.Tensor("float32", new Float32Array(4), [4]));
    pool.give(new ort.Tensor("float32", new Float32Array(4), [4]));
    pool.give(new ort.Tensor("int32", new Int32Array(4), [4]));
    assert.equal(pool.freeCount, 4);
    assert.deepEqual(pool.take([4]).dims, [4]);
  });
});

describe("ONNX export", () => {
  before(async () => {
    await setupBackend();
    useEngine("onnx");
  });

  it("writes a model ONNX Runtime loads, computing the simulation's values; activations as QDQ pairs, weights on their grid", async () => {
    const ort = requireOrt();
    const graph = await loadGraph(EXAMPLE_MODEL);
    const data = toDataset("mnist:0:64");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, overrides: { "Conv1_relu.output": { bitwidth: 16 }, "block_1_add.output": { bitwidth: 20 } } }).calibrate(data);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qdebug-onnx-export-"));
    const x = tf.randomUniform([5, 28, 28, 1], 0, 1, "float32", 9);
    const program = new OnnxProgram(graph, sim.sites, { segments: 1 });
    try {
      // The engine's run of the simulation (it also makes the simulation's quantized weights, which the simulation owns).
      let simulated: number[] = [];
      await program.run([x], [{ key: "sim", sim }], (_k, [y]) => void (simulated = Array.from(y.dataSync())));
      const result = await assertNoLeak("exportOnnxModel", () => exportOnnxModel(sim, dir));
      assert.deepEqual(fs.readdirSync(dir).sort(), ["model.encodings.json", "model.onnx"]);
      assert.ok(result.qdq.includes("Conv1_relu.output") && result.floatCodes.includes("block_1_add.output"), JSON.stringify(result));
      assert.equal(result.weights.length, sim.sites.filter((s) => s.kind === "weight").length);
      const encodings = JSON.parse(fs.readFileSync(result.encodingsJson!, "utf8"));
      assert.equal(encodings.param_encodings["Conv1/kernel"][0].bitwidth, 4);
      // The exported model, run as a simulation (no QDQ fusion), gives the engine's simulated outputs bit for bit.
      const session = await createSession(fs.readFileSync(result.modelOnnx), { threads: 1 });
      const out = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape) });
      assert.deepEqual(session.outputNames, graph.outputs);
      const exported = out[session.outputNames[0]].data as Float32Array;
      assert.deepEqual(Array.from(exported), simulated);
      await session.release();
      // With ORT's defaults (QDQ groups become integer kernels with their own rounding) it loads and mostly agrees.
      const plain = await ort.InferenceSession.create(result.modelOnnx);
      const y = (await plain.run({ [plain.inputNames[0]]: new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape) }))[plain.outputNames[0]].data as Float32Array;
      const classes = graph.node(graph.outputs[0]).outputShape[1] as number;
      const top1 = (v: ArrayLike<number>, e: number) => Array.from(v).slice(e * classes, (e + 1) * classes).reduce((best, p, i, row) => (p > row[best] ? i : best), 0);
      const agree = [0, 1, 2, 3, 4].filter((e) => top1(y, e) === top1(simulated, e)).length;
      assert.ok(agree >= 4, `top-1 agrees on ${agree} of 5 examples`);
      await plain.release();
    } finally {
      await program.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
      x.dispose();
      sim.dispose();
      graph.dispose();
    }
  });
});

describe("per-layer error on ONNX Runtime", () => {
  before(async () => {
    await setupBackend();
  });
  after(() => useEngine("onnx"));

  it("gives the tfjs engine's propagated and local errors on the example model", async () => {
    const graph = await loadGraph(EXAMPLE_MODEL);
    const data = toDataset("mnist:0:64");
    useEngine("tfjs");
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 } }).calibrate(data);
    try {
      const tfjs = await layerError(sim, { data });
      useEngine("onnx");
      const onnx = await assertNoLeak("layerError on ONNX Runtime", () => layerError(sim, { data }));
      assert.equal(onnx.examples, 64);
      assert.deepEqual(onnx.rows.map((r) => r.node), tfjs.rows.map((r) => r.node));
      const close = (a: number | null, b: number | null, what: string) =>
        assert.ok(a === b || (a !== null && b !== null && Math.abs(a - b) <= 0.02 * Math.abs(b) + 0.05), `${what}: ${a} vs ${b}`);
      onnx.rows.forEach((r, i) => {
        const t = tfjs.rows[i];
        if (t.propagated.sqnrDb !== null && t.propagated.sqnrDb < 100) close(r.propagated.sqnrDb, t.propagated.sqnrDb, `${r.node} propagated`);
        if (t.local?.sqnrDb != null && t.local.sqnrDb < 100) close(r.local!.sqnrDb, t.local.sqnrDb, `${r.node} local`);
        if (t.local?.rmseOverStep != null) close(r.local!.rmseOverStep, t.local.rmseOverStep, `${r.node} rmse/step`);
      });
    } finally {
      sim.dispose();
      graph.dispose();
    }
  });
});
