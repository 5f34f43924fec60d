import * as path from "path";
import { packageRoot } from "./data/mnist";

/** The shipped example model (see models/mnist-mbv2/README.md), wherever qdebug is installed. */
export const EXAMPLE_MODEL = path.join(packageRoot(), "models", "mnist-mbv2", "model.json");
