// The benchmark targets the runner knows, in the order it runs them (one import and one entry each).

import type { BenchTarget } from "../target.js";
import { bridge } from "./bridge.js";
import { cloud } from "./cloud.js";
import { crypto } from "./crypto.js";
import { requests } from "./requests.js";

export const targets: BenchTarget[] = [bridge, cloud, requests, crypto];
