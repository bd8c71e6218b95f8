// The benchmark targets the runner knows, in the order it runs them.

import type { BenchTarget } from "../target.js";
import { memory } from "./memory.js";
import { scaling } from "./scaling.js";

export const targets: BenchTarget[] = [memory, scaling];
