import { engineThreads, loadOrt } from "./onnx/runtime";

/**
 * Which engine runs the forward passes of analyses (calibration, scoring,
 * sweeps): ONNX Runtime's CPU engine when `onnxruntime-node` loads (10-20x
 * faster than tfjs-wasm, all cores), tfjs otherwise. Gradient work (AdaRound,
 * QAT) and user hooks always run on tfjs.
 */
export type EngineChoice = "auto" | "onnx" | "tfjs";

export interface EngineInfo {
  name: "onnx" | "tfjs";
  /** The npm package that provides it. */
  package: string;
  /** Intra-op threads (ONNX Runtime), or 1 for tfjs in Node. */
  threads: number;
  reason: string;
}

const CHOICES: readonly EngineChoice[] = ["auto", "onnx", "tfjs"];

let current: EngineInfo | undefined;

export function parseEngineChoice(value: string | undefined): EngineChoice {
  if (value === undefined || value === "") return "auto";
  const v = value.trim().toLowerCase();
  if (v === "ort" || v === "onnxruntime") return "onnx";
  if ((CHOICES as readonly string[]).includes(v)) return v as EngineChoice;
  throw new Error(`invalid engine: ${JSON.stringify(value)} (expected one of ${CHOICES.join(", ")})`);
}

function choose(choice: EngineChoice): EngineInfo {
  if (choice === "tfjs") return { name: "tfjs", package: "@tensorflow/tfjs", threads: 1, reason: "forced" };
  const { ort, failure } = loadOrt();
  if (ort) return { name: "onnx", package: `onnxruntime-node@${ort.env.versions.node ?? "?"}`, threads: engineThreads(), reason: choice === "onnx" ? "forced" : "auto: onnxruntime-node loads" };
  if (choice === "onnx") throw new Error(`engine "onnx" was requested but onnxruntime-node does not load (${failure})`);
  return { name: "tfjs", package: "@tensorflow/tfjs", threads: 1, reason: `auto: onnxruntime-node unavailable (${failure})` };
}

/**
 * Chooses the engine: `choice` (or QDEBUG_ENGINE) forces one; otherwise ONNX
 * Runtime when it loads. Later calls without a choice return the one chosen.
 */
export function useEngine(choice?: EngineChoice | string): EngineInfo {
  if (current && choice === undefined) return current;
  current = choose(parseEngineChoice(choice ?? process.env.QDEBUG_ENGINE));
  return current;
}

/** The engine analyses run on now. */
export function activeEngine(): EngineInfo {
  return current ?? useEngine();
}
