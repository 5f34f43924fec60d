import { strict as assert } from "assert";
import Ajv from "ajv";
import { configSchema, validateConfig } from "../src/quant/config-schema";
import { normalizePatch } from "../src/quant/settings";

/** The shipped schema is a real JSON Schema (what editors and ajv read), our walker agrees with it, and so does the code. */
describe("config schema", () => {
  const configs: unknown[] = [
    {},
    { $schema: "../node_modules/qdebug/schema/qdebug-config.schema.json", weights: { bitwidth: 4, perChannel: true } },
    { weights: { bitwidth: 8 }, activations: { bitwidth: 8, rangeMethod: "mse" }, overrides: { "block_3_*": { bitwidth: 16 }, "block_5_add.output": { enabled: false } } },
    { biases: true, seed: 3 },
    { biases: { bitwidth: 16, scheme: "symmetric" } },
    { activations: { range: { min: -1, max: 1 }, percentile: 99.9, rounding: "stochastic", scheme: "unsigned-symmetric" } },
    { wieghts: { bitwidth: 4 } },
    { weights: { bitwdth: 4 } },
    { weights: { bitwidth: 1 } },
    { weights: { bitwidth: 33 } },
    { weights: { bitwidth: 4.5 } },
    { weights: { scheme: "sym" } },
    { weights: { percentile: 0 } },
    { weights: { range: { min: 0 } } },
    { weights: { range: { min: 0, max: 1, mid: 0 } } },
    { overrides: { c1: { bitwdth: 4 } } },
    { overrides: { c1: 8 } },
    { biases: "yes" },
    { seed: 1.5 },
    [],
    null,
    "weights",
  ];

  it("compiles with ajv, and ajv and the walker accept and refuse the same configs", () => {
    const ajv = new Ajv({ allErrors: true });
    const check = ajv.compile(configSchema());
    for (const c of configs) {
      let walker = true;
      try {
        validateConfig(c);
      } catch {
        walker = false;
      }
      assert.equal(walker, check(c), `${JSON.stringify(c)}: walker ${walker}, ajv ${!walker}`);
    }
  });

  it("the schema's settings are exactly the ones the code knows", () => {
    const settings = (configSchema() as { definitions: { settings: { properties: Record<string, { enum?: string[] }> } } }).definitions.settings.properties;
    let listed: string[] = [];
    assert.throws(() => normalizePatch({ nope: 1 }, "weights"), (err: Error) => {
      listed = /\(settings: (.*)\)/.exec(err.message)![1].split(", ");
      return true;
    });
    assert.deepEqual([...listed].sort(), Object.keys(settings).sort());
    for (const [key, { enum: values }] of Object.entries(settings)) {
      for (const v of values ?? []) assert.doesNotThrow(() => normalizePatch({ [key]: v }, "weights"), `${key}: ${v}`);
    }
  });
});
