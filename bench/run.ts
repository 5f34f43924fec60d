import { useBackend } from "../src/backend";
import { benchGraphForward } from "./graph-forward";

/**
 * `npm run bench`: the figures the issues ask for, as ratios measured in the
 * same run (absolute times depend on the machine and are shown for context only).
 */
async function main(): Promise<void> {
  const backend = await useBackend(process.env.QDEBUG_BACKEND ?? "wasm");
  console.log(`backend: ${backend.name} (${backend.package})`);
  const g = await benchGraphForward(8);
  console.log(`graph forward vs model.predict, ${g.model}, batch ${g.batch}: ${g.graphMs.toFixed(1)} ms vs ${g.predictMs.toFixed(1)} ms -> ratio ${g.ratio.toFixed(3)} (goal <= 1.05)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
