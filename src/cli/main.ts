// Entry point of bin/orthanc-cloud-storage.
import { runCli } from "./program.js";

process.exitCode = await runCli(process.argv.slice(2));
