import * as tf from "@tensorflow/tfjs";

/**
 * Backend choice. In Node the default is the wasm backend (it installs offline and
 * is ~16x faster than the pure-JS cpu backend); tfjs-node-gpu or tfjs-node are
 * used when they are installed and load, but are never required.
 */
export type BackendChoice = "auto" | "tensorflow" | "wasm" | "cpu";

export interface BackendInfo {
  /** The tfjs backend name now active ("tensorflow", "wasm" or "cpu"). */
  name: string;
  /** The npm package that provides it. */
  package: string;
  /** Why this one was chosen (forced, or what was tried before it). */
  reason: string;
}

const CHOICES: readonly BackendChoice[] = ["auto", "tensorflow", "wasm", "cpu"];
/** Accelerated Node bindings, best first; both register the "tensorflow" backend. */
const NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

let current: Promise<BackendInfo> | undefined;

/** Normalizes a backend option or QDEBUG_BACKEND value; aliases "node" and "node-gpu" mean "tensorflow". */
export function parseBackendChoice(value: string | undefined): BackendChoice {
  if (value === undefined || value === "") return "auto";
  const v = value.trim().toLowerCase();
  if (v === "node" || v === "node-gpu" || v === "tfjs-node") return "tensorflow";
  if ((CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new Error(`invalid backend: ${JSON.stringify(value)} (expected one of ${CHOICES.join(", ")})`);
}

function tryRequire(pkg: string): string | undefined {
  try {
    require(pkg);
    return undefined;
  } catch (err) {
    return (err as Error).message.split("\n")[0];
  }
}

async function activate(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function choose(choice: BackendChoice): Promise<BackendInfo> {
  const tried: string[] = [];
  if (choice === "auto" || choice === "tensorflow") {
    for (const pkg of NODE_PACKAGES) {
      const failure = tryRequire(pkg);
      if (failure === undefined && (await activate("tensorflow"))) {
        return { name: "tensorflow", package: pkg, reason: choice === "auto" ? "auto: native TensorFlow bindings found" : "forced" };
      }
      tried.push(`${pkg} unavailable`);
    }
    if (choice === "tensorflow") {
      throw new Error(`backend "tensorflow" was requested but neither ${NODE_PACKAGES.join(" nor ")} loads (${tried.join("; ")})`);
    }
  }
  if (choice === "auto" || choice === "wasm") {
    const failure = tryRequire("@tensorflow/tfjs-backend-wasm");
    if (failure === undefined && (await activate("wasm"))) {
      return { name: "wasm", package: "@tensorflow/tfjs-backend-wasm", reason: choice === "auto" ? `auto: ${tried.join(", ") || "default"}` : "forced" };
    }
    tried.push(`wasm failed (${failure ?? "setBackend refused"})`);
    if (choice === "wasm") throw new Error(`backend "wasm" was requested but could not start: ${tried.join("; ")}`);
  }
  if (!(await activate("cpu"))) throw new Error("no tfjs backend could be started (even cpu failed)");
  return { name: "cpu", package: "@tensorflow/tfjs-backend-cpu", reason: choice === "auto" ? `auto: ${tried.join(", ")}` : "forced" };
}

/**
 * Starts the backend once: `choice` (or the QDEBUG_BACKEND environment variable)
 * forces one; otherwise the best available is used. Later calls with no choice
 * return the backend already started; a different explicit choice switches.
 */
export function useBackend(choice?: BackendChoice | string): Promise<BackendInfo> {
  const explicit = choice !== undefined;
  const wanted = parseBackendChoice(explicit ? choice : process.env.QDEBUG_BACKEND);
  if (current && !explicit) return current;
  current = choose(wanted);
  current.catch(() => (current = undefined));
  return current;
}

/** The backend every qdebug call runs on; starts the default one if none is yet. */
export function ensureBackend(): Promise<BackendInfo> {
  return current ?? useBackend();
}
