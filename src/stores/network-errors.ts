// Node's network error codes in words an administrator can act on, for the Azure and Google drivers (the
// SDKs pass Node's `code` through: ECONNREFUSED, ENOTFOUND...).

const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "the connection was refused (nothing listens there)",
  ENOTFOUND: "the host name does not resolve",
  EAI_AGAIN: "the host name cannot be resolved right now (DNS)",
  ECONNRESET: "the connection was reset",
  ETIMEDOUT: "the connection timed out",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  EPIPE: "the server closed the connection while the request was sent",
  CERT_HAS_EXPIRED: "the server's TLS certificate has expired",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's TLS certificate cannot be verified",
  SELF_SIGNED_CERT_IN_CHAIN: "the server's TLS certificate is self-signed",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's TLS certificate is self-signed",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's TLS certificate is for another host name",
};

/** What a network failure means, or undefined when `cause` is not one. */
export function networkReason(cause: unknown): string | undefined {
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? NETWORK_REASONS[code] : undefined;
}

/** The first line of a server's message: Azure appends "RequestId:…" and "Time:…" lines. */
export function firstLine(message: string | undefined): string {
  return (message ?? "").split("\n")[0]?.trim() ?? "";
}
