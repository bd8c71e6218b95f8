// The benchmark targets the runner knows, in the order it runs them (one import and one entry each).

import type { BenchTarget } from "../target.js";
import { bridge } from "./bridge.js";
import { cloud } from "./cloud.js";
import { crypto } from "./crypto.js";
import { ingest } from "./ingest.js";
import { memory } from "./memory.js";
import { requests } from "./requests.js";
import { reread } from "./reread.js";
import { scaling } from "./scaling.js";

export const targets: BenchTarget[] = [bridge, cloud, requests, crypto, memory, scaling, ingest, reread];
