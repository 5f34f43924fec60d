import * as path from "path";
import { packageRoot } from "./data/mnist";

/** The shipped transformer example (see models/text-encoder/README.md): a small BERT-style ham / spam classifier. */
export const TEXT_ENCODER_MODEL = path.join(packageRoot(), "models", "text-encoder", "model.json");

/** Its committed evaluation subset (256 mails of the test split, token and position ids with labels), a folder `qd.toDataset` reads. */
export const TEXT_ENCODER_EVAL = path.join(packageRoot(), "models", "text-encoder", "eval");
