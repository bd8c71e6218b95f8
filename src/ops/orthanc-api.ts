// A small client of Orthanc's REST API, for the tools that need Orthanc's index (verify, migrate, move-storage):
// which resources exist and which attachments each one has. OrthancIndex holds the questions; OrthancClient
// asks them over HTTP (Node's fetch, optional basic authentication), the daemon through the bridge.

/** Orthanc's resource levels, as they appear in REST paths. */
export type ResourceLevel = "patients" | "studies" | "series" | "instances";

export const RESOURCE_LEVELS: readonly ResourceLevel[] = ["patients", "studies", "series", "instances"];

export interface OrthancClientOptions {
  /** Orthanc's REST root, e.g. http://localhost:8042 */
  url: string;
  user?: string;
  password?: string;
  /** Per request; Orthanc answers index queries in milliseconds, so a long wait means something is wrong. */
  timeoutMs?: number;
}

/** `GET /{level}/{id}/attachments/{type}/info` (Orthanc ≥ 1.0). */
export interface AttachmentInfo {
  Uuid: string;
  ContentType: number;
  /** What Orthanc handed to the storage area (after its own compression, before our encryption). */
  CompressedSize: number;
  CompressedMD5?: string;
  UncompressedSize: number;
  UncompressedMD5?: string;
}

/** An Orthanc answer that is not what was asked for, or no answer at all. */
export class OrthancApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "OrthancApiError";
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** Resources asked for per page of `/{level}?since=&limit=`: small answers, few round trips. */
const PAGE_SIZE = 1000;

/** The questions the tools ask Orthanc's index, over whatever answers `get`. */
export abstract class OrthancIndex {
  /** Where the answers come from, for messages: Orthanc's URL, or "Orthanc" inside it. */
  abstract readonly url: string;

  /** GET a JSON document; null on 404 (a resource deleted while we walk the index). */
  abstract get<T>(path: string): Promise<T | null>;

  /** `GET /system`: proves the URL and credentials before any long walk. */
  async system(): Promise<{ Version: string; Name: string }> {
    return this.require<{ Version: string; Name: string }>("/system");
  }

  /** `GET /statistics`: how many resources of each level, for progress totals. */
  async resourceCount(): Promise<number> {
    const statistics = await this.require<Record<string, unknown>>("/statistics");
    return ["CountPatients", "CountStudies", "CountSeries", "CountInstances"]
      .map((name) => Number(statistics[name] ?? 0))
      .reduce((a, b) => a + b, 0);
  }

  /** The sequence number of the newest change: a changed value means the index changed meanwhile. */
  async lastChange(): Promise<number> {
    return (await this.require<{ Last: number }>("/changes?last")).Last;
  }

  /** Every resource id of a level, page by page (`/{level}?since=N&limit=M`). */
  async *resourceIds(level: ResourceLevel): AsyncIterable<string> {
    for (let since = 0; ; since += PAGE_SIZE) {
      const page = await this.require<string[]>(`/${level}?since=${since}&limit=${PAGE_SIZE}`);
      yield* page;
      if (page.length < PAGE_SIZE) return;
    }
  }

  /**
   * The attachments of a resource, name → content type. `?full`, because the plain list leaves out user
   * attachments that have no registered name (observed on Orthanc 1.10.1). Null when the resource is gone.
   */
  attachments(level: ResourceLevel, id: string): Promise<Record<string, number> | null> {
    return this.get<Record<string, number>>(`/${level}/${id}/attachments?full`);
  }

  /** One attachment's uuid, sizes and MD5s; null when it (or its resource) is gone. */
  attachmentInfo(level: ResourceLevel, id: string, contentType: number): Promise<AttachmentInfo | null> {
    return this.get<AttachmentInfo>(`/${level}/${id}/attachments/${contentType}/info`);
  }

  protected async require<T>(path: string): Promise<T> {
    const answer = await this.get<T>(path);
    if (answer === null) {
      throw new OrthancApiError(`GET ${this.url}${path}: HTTP 404; is ${this.url} Orthanc's REST API?`, 404);
    }
    return answer;
  }
}

export class OrthancClient extends OrthancIndex {
  readonly url: string;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: OrthancClientOptions) {
    super();
    this.url = options.url.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(this.url)) {
      throw new OrthancApiError(`Orthanc URL ${JSON.stringify(options.url)}: expected http:// or https://`);
    }
    if (options.user !== undefined || options.password !== undefined) {
      const credentials = `${options.user ?? ""}:${options.password ?? ""}`;
      this.authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
    }
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** GET a JSON document; null on 404 (a resource deleted while we walk the index). */
  get<T>(path: string): Promise<T | null> {
    return this.send<T>("GET", path);
  }

  /** POST a JSON body and read the JSON answer; a 404 is an error here. */
  async post<T>(path: string, body: unknown): Promise<T> {
    const answer = await this.send<T>("POST", path, JSON.stringify(body));
    if (answer === null) throw new OrthancApiError(`POST ${this.url}${path}: HTTP 404`, 404);
    return answer;
  }

  private async send<T>(method: "GET" | "POST", path: string, body?: string): Promise<T | null> {
    const target = `${this.url}${path}`;
    let response: Response;
    try {
      response = await fetch(target, {
        method,
        body,
        headers: this.authorization === undefined ? {} : { Authorization: this.authorization },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause =
        error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : "";
      throw new OrthancApiError(`${method} ${target}: Orthanc did not answer (${cause}); check --orthanc`);
    }
    if (response.status === 404 && method === "GET") {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      const answer = (await response.text()).trim().slice(0, 300);
      const hint =
        response.status === 401 || response.status === 403
          ? ": check --user and --password (or ORTHANC_USER / ORTHANC_PASSWORD)"
          : answer === ""
            ? ""
            : `: ${answer}`;
      throw new OrthancApiError(`${method} ${target}: HTTP ${response.status}${hint}`, response.status);
    }
    try {
      return (await response.json()) as T;
    } catch {
      throw new OrthancApiError(
        `${method} ${target}: the answer is not JSON; is ${this.url} Orthanc's REST API?`,
      );
    }
  }
}
