import { Graph } from "../../graph/graph";
import { getOp } from "../../graph/registry";
import { QuantSim } from "../../quant/quantsim";
import { activeEngine } from "../engine";

/**
 * Whether these simulations can run on ONNX Runtime: it is the active engine,
 * every op of the graph has a lowering, all share the graph, and no activation
 * quantizer rounds stochastically (ONNX has no seeded stochastic rounding).
 */
export function onnxCanRun(graph: Graph, sims: readonly QuantSim[]): boolean {
  if (activeEngine().name !== "onnx") return false;
  if (!graph.nodes.every((n) => n.op === "input" || getOp(n.op).onnx)) return false;
  return sims.every((sim) => sim.graph === graph && sim.sites.every((s) => s.kind !== "activation" || sim.settingsOf(s.name).rounding !== "stochastic" || !sim.settingsOf(s.name).enabled));
}
