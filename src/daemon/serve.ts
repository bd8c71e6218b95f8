// The daemon: started by the supervisor (supervisor.ts) as main.js without --supervise. It reads Orthanc's
// merged configuration on stdin (up to a NUL byte), validates it, opens the storage, answers the start-up handshake on stdout,
// then serves the bridge on a private Unix socket until stdin closes (Orthanc is gone) or SIGTERM:
// Orthanc's storage calls, the REST routes /cloud-storage/health, /cloud-storage/metrics,
// /cloud-storage/locate/{uuid}, /move-storage, /cloud-storage/tier-rules (and the bridge's clock ticks) and
// /cloud-storage/adopt, and the steps of their jobs.

import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { spoolOf } from "../area/local-disk-tier.js";
import { openStorageArea } from "../area/open-storage-area.js";
import type { StorageArea } from "../area/storage-area.js";
import { parseOrthancConfigText } from "../config/read-config.js";
import { resolveConfig } from "../config/parse-config.js";
import { configServesRangeReads } from "../area/range-reads.js";
import { EncryptedCodec } from "../crypto/encrypted-codec.js";
import { describeCause } from "../errors.js";
import { stderrLogger as logger } from "../log.js";
import type { ReadCache } from "../stores/read-cache.js";
import { HealthCheck } from "./health.js";
import { locateRoute } from "./locate-route.js";
import { adoptJobStep, adoptRoute } from "./adopt-route.js";
import { startingOver } from "./job-restore.js";
import { isAdoptState } from "../ops/adopt.js";
import { hasCustomData, typesStatusAnswers } from "../area/orthanc-features.js";
import { BRIDGE_SECTION } from "../config/bridge-options.js";
import { DaemonMetrics } from "./metrics.js";
import { moveStorageJobStep, moveStorageRoute } from "./move-storage-route.js";
import { tierRulesRoutes } from "./tier-rules-route.js";
import { BridgeFlag, Handshake, encodeReadyLine } from "./protocol.js";
import { readUntilNul } from "./read-until-nul.js";
import { RestRouter } from "./rest-router.js";
import { listenForBridge, type BridgeServer, type JobStepper } from "./server.js";
import { createSocketFolder } from "./socket-folder.js";
import { checkStorageAtStart } from "./start-check.js";
import { bridgeVersion, daemonVersion } from "./versions.js";

/** Each job's steps to its own runner: adoptions' states say so (isAdoptState), the others are moves. */
function jobSteps(move: JobStepper, adopt: JobStepper): JobStepper {
  return (stateText, callbacks) => {
    let state: unknown;
    try {
      state = JSON.parse(startingOver(stateText).state);
    } catch {
      state = undefined; // the move's own parser names the problem
    }
    return isAdoptState(state) ? adopt(stateText, callbacks) : move(stateText, callbacks);
  };
}

/** One handshake line on stdout (protocol.ts); newlines inside a reason would split it. */
function handshake(line: string): void {
  process.stdout.write(`${line.replace(/[\r\n]+/g, " ")}\n`);
}

async function start(): Promise<void> {
  const text = await readUntilNul(process.stdin);
  const result = resolveConfig(
    parseOrthancConfigText(text, "the configuration Orthanc passed to the plugin"),
  );
  for (const warning of result.ok === true ? result.config.warnings : result.warnings) logger.warn(warning);
  if (result.ok === "disabled") {
    handshake(`${Handshake.DISABLED} ${result.reason}`);
    process.exit(0);
  }
  if (result.ok === false) {
    handshake(`${Handshake.FAILED} invalid configuration: ${result.errors.join("; ")}`);
    process.exit(1);
  }
  const { config } = result;
  const section = config.backend.section;
  // Orthanc >= 1.12.8 keeps a record with each attachment (custom data): the bridge then registers that API.
  const orthancVersion = process.argv
    .find((argument) => argument.startsWith(BridgeFlag.ORTHANC_VERSION))
    ?.slice(BridgeFlag.ORTHANC_VERSION.length);
  const customData = orthancVersion !== undefined && hasCustomData(orthancVersion);
  logger.info(
    `Orthanc ${orthancVersion ?? "(version not given)"}: ${customData ? "custom data per attachment (one request per read)" : "no custom data, objects found by their uuid names"}`,
  );
  if (config.bridge.objectNames !== undefined && !customData) {
    handshake(
      `${Handshake.FAILED} invalid configuration: ${BRIDGE_SECTION}.ObjectNames: object names from DICOM tags ` +
        `("${config.bridge.objectNames.text}") need Orthanc 1.12.8 or newer, which keeps each object's name in ` +
        `its index (custom data); this is Orthanc ${orthancVersion ?? "of an unknown version"}. Set it to "uuid" ` +
        "or upgrade Orthanc",
    );
    process.exit(1);
  }
  const versions = { plugin: bridgeVersion(process.argv), daemon: await daemonVersion() };
  const metrics = new DaemonMetrics({
    section,
    versions,
    format: config.common.encryption.enabled ? (config.common.encryption.format ?? "A1") : "plaintext",
  });
  let readCache: ReadCache | undefined;
  const area = await openStorageArea(config, logger, {
    wrapStore: (store, tier) => metrics.observeStore(store, tier),
    onProbe: (tier, outcome) => metrics.readProbed(tier, outcome),
    localDisk: true,
    readCacheOpened: (cache) => {
      readCache = cache;
      metrics.watchReadCache(cache);
    },
  });
  // One budget per backend that encrypts (docs/backends.md); a single section has one.
  const budgets = new Set(
    area.tiers.flatMap(({ codec }) => (codec instanceof EncryptedCodec ? [codec.budget] : [])),
  );
  if (budgets.size > 0) metrics.watchMemoryBudgets([...budgets]);
  const spool = spoolOf(area);
  const localDisk = config.bridge.localDisk;
  if (spool !== undefined && localDisk !== undefined) metrics.watchSpool(spool, localDisk.maxPendingBytes);
  await checkStorageAtStart(area, spool, logger);

  const health = new HealthCheck({
    area,
    section,
    versions,
    readCache,
    ...(spool !== undefined && localDisk !== undefined
      ? {
          spool: {
            store: spool,
            capacityBytes: localDisk.maxPendingBytes,
            alertAgeMs: localDisk.backlogAlertAgeMs,
          },
        }
      : {}),
  });
  const router = new RestRouter(
    [
      health.route(),
      metrics.route(),
      locateRoute(area, { customData }),
      moveStorageRoute({ area, logger }),
      ...tierRulesRoutes({ tiering: config.tiering, logger }),
      adoptRoute({ area, logger, customData }),
    ],
    logger,
  );
  const socketDir = await createSocketFolder(tmpdir());
  const socketPath = join(socketDir, "bridge.sock");
  const server = await listenForBridge(socketPath, area, logger, {
    router,
    jobStep: jobSteps(moveStorageJobStep({ area, logger, customData }), adoptJobStep({ area, logger })),
    observer: metrics,
  });
  // Handlers first: a stop request may follow the handshake at once.
  const drainTimeoutMs = spool === undefined ? 0 : (localDisk?.shutdownDrainTimeoutMs ?? 0);
  const stop = (why: string): void => void shutdown(why, { server, socketDir, area, drainTimeoutMs });
  process.stdin.on("end", () => stop("stdin closed: Orthanc is gone"));
  process.stdin.on("close", () => stop("stdin closed: Orthanc is gone"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdin.resume(); // keep reading, to see the lifeline's end

  // TypeScript decides what the bridge registers: range reads only when the stored format allows them
  // (plaintext, or v2 as the write format: range-reads.ts).
  handshake(
    encodeReadyLine({
      range: configServesRangeReads(config),
      customData,
      typeStatusAnswers: orthancVersion === undefined || !typesStatusAnswers(orthancVersion),
      requestTimeoutS: config.bridge.requestTimeoutS,
      connectTimeoutS: config.bridge.connectTimeoutS,
      // The drain, and a margin for the exit itself.
      stopGraceS: Math.ceil(drainTimeoutMs / 1000) + STOP_MARGIN_S,
      socketPath,
    }),
  );
  logger.info(`serving Orthanc on ${socketPath} (pid ${process.pid}, Node.js ${process.version})`);
}

/** Beyond the spool's drain, what the daemon asks to be given to exit (the supervisor's own minimum is 5 s). */
const STOP_MARGIN_S = 3;
/** At a stop, how long the requests being answered may take to end; within STOP_MARGIN_S. */
const IN_FLIGHT_GRACE_MS = 2000;

interface Running {
  server: BridgeServer;
  socketDir: string;
  area: StorageArea;
  /** LocalDisk.ShutdownDrainTimeout with write-behind on; 0 otherwise. */
  drainTimeoutMs: number;
}

let stopping = false;
async function shutdown(why: string, { server, socketDir, area, drainTimeoutMs }: Running): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info(`stopping: ${why}`);
  await server.close(IN_FLIGHT_GRACE_MS);
  await rm(socketDir, { recursive: true, force: true });
  const spool = spoolOf(area);
  if (spool !== undefined && spool.backlog().objects > 0) {
    const before = spool.backlog();
    logger.warn(
      `write-behind spool: uploading ${before.objects} object(s) (${before.bytes} bytes) before exiting, ` +
        `for up to ${drainTimeoutMs / 1000} s (LocalDisk.ShutdownDrainTimeout)`,
    );
    const outcome = await spool.drainAtExit(drainTimeoutMs);
    const left = spool.backlog();
    if (outcome === "handed over") {
      logger.info(
        `write-behind spool: a new daemon asks for the folder; ${left.objects} object(s) (${left.bytes} bytes) ` +
          "left to it to upload",
      );
    } else if (outcome === "timed out") {
      logger.warn(
        `write-behind spool: ${left.objects} object(s) (${left.bytes} bytes) still wait for upload; they are ` +
          "uploaded when this node starts again, and exist only on its local disk until then",
      );
    }
  }
  await area.close().catch((error: unknown) => logger.warn(`closing the storage: ${describeCause(error)}`));
  process.exit(0);
}

start().catch((error: unknown) => {
  handshake(`${Handshake.FAILED} ${describeCause(error)}`);
  process.exit(1);
});
