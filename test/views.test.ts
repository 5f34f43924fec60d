import { strict as assert } from "assert";
import * as tf from "@tensorflow/tfjs";
import { importLayersModel } from "../src/graph/import-layers";
import { QuantSim } from "../src/quant/quantsim";
import { fp32SanityCheck } from "../src/quant/sanity-check";
import { weightsVsActivations } from "../src/analysis/weights-vs-activations";
import { sweepDisabled, sweepEnabled } from "../src/analysis/sweeps";
import { layerError } from "../src/analysis/layer-error";
import { encodingRanges } from "../src/analysis/ranges";
import { weightChannelStats } from "../src/analysis/weight-channels";
import { activationHistograms } from "../src/analysis/histograms";
import { activationAxes } from "../src/analysis/activation-axes";
import { PNG } from "pngjs";
import { mimeBundle } from "../src/display/bundle";
import { View } from "../widgets/spec";
import { sanityView } from "../widgets/sanity-view";
import { splitView } from "../widgets/split-view";
import { sweepView } from "../widgets/sweep-view";
import { layerErrorView } from "../widgets/layer-error-view";
import { rangesView } from "../widgets/ranges-view";
import { weightChannelsView } from "../widgets/weight-channels-view";
import { histogramView } from "../widgets/histogram-view";
import { activationAxesView } from "../widgets/activation-axes-view";
import { layerExplorerView } from "../widgets/layer-explorer-view";
import { bitwidthView } from "../widgets/bitwidth-view";
import { buildOutlierModel } from "./fixtures/small-models";
import { assertViewRenders } from "./fixtures/vega-validate";
import { setupBackend, sliceDataset } from "./helpers";

/** Every view of every analysis: valid Vega-Lite v5, and it draws its marks as SVG in Node. */
describe("views", () => {
  const views = new Map<string, View>();
  before(async () => {
    await setupBackend();
    const model = buildOutlierModel();
    const graph = importLayersModel(model);
    const x = tf.randomNormal([64, 8], 0, 1, "float32", 2);
    const data = () => sliceDataset(x, 32);
    const sim = await QuantSim.create(graph, { weights: { bitwidth: 4 }, activations: { bitwidth: 6 } }).calibrate(data());
    const options = { data: data(), metric: "sqnr" as const };
    views.set("sanity", sanityView(await fp32SanityCheck(sim, { data: data() })));
    views.set("split", splitView(await weightsVsActivations(sim, options)));
    views.set("sweeps", sweepView(await sweepEnabled(sim, { ...options, data: data() }), await sweepDisabled(sim, { ...options, data: data() })));
    views.set("layer error", layerErrorView(await layerError(sim, { data: data() })));
    views.set("ranges", rangesView(encodingRanges(sim)));
    views.set("weight channels", weightChannelsView(weightChannelStats(sim)));
    views.set("histogram", histogramView(activationHistograms(sim)));
    views.set("activation axes", activationAxesView(await activationAxes(graph, { data: data() })));
    views.set("layer explorer", layerExplorerView(weightChannelStats(sim), activationHistograms(sim)));
    views.set("bit-width explorer", bitwidthView(activationHistograms(sim).histograms[0]));
    sim.dispose();
    graph.dispose();
    model.dispose();
    x.dispose();
  });

  const names = ["sanity", "split", "sweeps", "layer error", "ranges", "weight channels", "histogram", "activation axes", "layer explorer", "bit-width explorer"];
  for (const name of names) {
    it(`${name}: validates against the Vega-Lite v5 schema and renders to SVG`, async () => {
      const svg = await assertViewRenders(name, views.get(name)!, 6);
      assert.match(svg, /^<svg/);
    });
  }

  it("the notebook bundle carries Vega-Lite, SVG, a real PNG and text, and no HTML", async () => {
    const bundle = await mimeBundle(views.get("sweeps")!, "reading");
    assert.deepEqual(Object.keys(bundle.data).sort(), ["application/vnd.vegalite.v5+json", "image/png", "image/svg+xml", "text/plain"]);
    const png = Buffer.from(bundle.data["image/png"] as string, "base64");
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
    const size = bundle.metadata["image/png"] as { width: number; height: number };
    assert.ok(size.width > 300 && size.height > 100, JSON.stringify(size));
    // Cropped to what is drawn: the last drawn column is within the 8 px margin (16 at 2x) of the right edge.
    const image = PNG.sync.read(png);
    let right = 0;
    for (let y = 0; y < image.height; y++) {
      for (let x = image.width - 1; x > right; x--) {
        const i = 4 * (y * image.width + x);
        if (image.data[i] < 250 || image.data[i + 1] < 250 || image.data[i + 2] < 250) {
          right = x;
          break;
        }
      }
    }
    assert.ok(image.width - 1 - right <= 17, `blank right margin of ${image.width - 1 - right} px in a ${image.width} px PNG`);
  });

  it("widgets are Vega-Lite params bound to inputs: threshold slider, layer and quantizer pickers", () => {
    const param = (name: string) => (views.get(name) as unknown as { params: { name: string; bind: { input: string } }[] }).params[0];
    assert.equal(param("sweeps").bind.input, "range");
    assert.equal(param("weight channels").bind.input, "select");
    assert.equal(param("weight channels").name, "layer");
    assert.equal((param("weight channels") as unknown as { value: string }).value, "d2.kernel", "the most uneven layer first");
    assert.equal(param("histogram").bind.input, "select");
  });
});
