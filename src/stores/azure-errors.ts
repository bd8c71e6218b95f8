// Azure Blob failures in words an administrator can act on. The SDK's RestError carries the service's error
// code (from the body, or from the x-ms-error-code header for HEAD answers), the HTTP status, and Node's
// own codes for network failures; @azure/identity's errors say why no token could be had.

import { describeCause } from "../errors.js";
import { firstLine, networkReason } from "./network-errors.js";

interface AzureErrorShape {
  name?: string;
  code?: string;
  statusCode?: number;
  details?: { errorCode?: string; message?: string };
  message?: string;
}

export type AzureCredentialKind = "account key" | "shared access signature" | "default Azure credential";

export interface AzureErrorContext {
  /** The account's blob endpoint, never with a SAS query. */
  endpoint: string;
  account: string | undefined;
  container: string;
  credential: AzureCredentialKind;
  retries: number;
  requestTimeoutMs: number;
}

/** The service's error code (BlobNotFound, ContainerNotFound, AuthorizationFailure...). */
export function azureErrorCode(cause: unknown): string | undefined {
  const error = cause as AzureErrorShape | undefined;
  return error?.details?.errorCode ?? error?.code;
}

function httpStatus(cause: unknown): number | undefined {
  return (cause as AzureErrorShape | undefined)?.statusCode;
}

/**
 * A missing blob, and nothing else: a missing container is a configuration problem, and a 404 without an
 * Azure error code comes from something that is not the Blob service.
 */
export function isBlobNotFound(cause: unknown): boolean {
  return azureErrorCode(cause) === "BlobNotFound";
}

/** @azure/identity's errors: no credential in the chain could get a token. */
const CREDENTIAL_ERRORS = new Set([
  "CredentialUnavailableError",
  "AggregateAuthenticationError",
  "AuthenticationError",
  "AuthenticationRequiredError",
]);

/** Long multi-line messages (identity's chain report) on one line, cut to a readable length. */
function oneLine(text: string, max = 600): string {
  const flat = text.replace(/\s*\n\s*/g, " | ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function describeAzureError(cause: unknown, context: AzureErrorContext): string {
  const error = cause as AzureErrorShape | undefined;
  const code = azureErrorCode(cause);
  const status = httpStatus(cause);
  const detail = firstLine(error?.details?.message ?? error?.message);
  const account =
    context.account === undefined
      ? `the storage account at ${context.endpoint}`
      : `storage account "${context.account}"`;
  const where = `${account}, container "${context.container}"`;

  if (error?.name !== undefined && CREDENTIAL_ERRORS.has(error.name)) {
    return (
      `the default Azure credential got no token (${error.name}: ${oneLine(describeCause(cause))}); give this ` +
      "machine a managed identity, set the AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET " +
      "environment variables, or use ConnectionString instead of AccountUrl"
    );
  }
  switch (code) {
    case "AuthenticationFailed":
    case "AuthorizationFailure":
      if (context.credential === "account key") {
        // Azurite answers a wrong key with AuthorizationFailure, Azure with AuthenticationFailed; Azure also
        // uses AuthorizationFailure for a client its firewall refuses.
        const firewall =
          code === "AuthorizationFailure" ? ", or the account's network rules refuse this client" : "";
        return (
          `the account key was refused (${code}): the AccountKey of ${account} in ` +
          `AzureBlobStorage.ConnectionString is wrong${firewall}`
        );
      }
      if (context.credential === "shared access signature") {
        return (
          `the shared access signature was refused by ${account} (${code}: ${detail}): it is wrong, expired, ` +
          "or not valid for this account or client address"
        );
      }
      return `the token of the default Azure credential was refused by ${account} (${code}: ${detail})`;
    case "AuthorizationPermissionMismatch":
    case "AuthorizationResourceTypeMismatch":
    case "AuthorizationServiceMismatch":
      return context.credential === "default Azure credential"
        ? `the identity lacks a permission on ${where} (${code}); grant it the Storage Blob Data Contributor role on the container or the account`
        : `the shared access signature lacks a permission on ${where} (${code}); it needs the blob service (ss=b), service, container and object resource types (srt=sco) and the read, add, create, write, delete and list permissions (sp=racwdl)`;
    case "ContainerNotFound":
      return (
        `the container "${context.container}" does not exist in ${account} (ContainerNotFound); create it, set ` +
        "CreateContainerIfNotExists to true, or check ContainerName"
      );
    case "AccountIsDisabled":
      return `${account} is disabled (AccountIsDisabled)`;
    case "InvalidHeaderValue":
      if (/api version/i.test(detail)) {
        return `the server does not accept the Azure SDK's API version (${detail}); update it (Azurite: start it with --skipApiVersionCheck)`;
      }
      break;
    case "ServerBusy":
    case "OperationTimedOut":
    case "InternalError":
      return (
        `${account} was busy or failing (${code}) and still was after ${context.retries + 1} attempts; lower ` +
        "the load or raise AzureBlobStorage.MaxRetries"
      );
  }
  const network = networkReason(cause);
  const endpointOption =
    context.credential === "default Azure credential"
      ? "AzureBlobStorage.AccountUrl"
      : "the BlobEndpoint, or AccountName and EndpointSuffix, of AzureBlobStorage.ConnectionString";
  if (network !== undefined) {
    return `cannot reach ${context.endpoint}: ${network} (${describeCause(cause)}); check ${endpointOption}`;
  }
  if (error?.name === "AbortError") {
    return (
      `no complete answer from ${context.endpoint} within RequestTimeout (${context.requestTimeoutMs / 1000} s); ` +
      "check the network, or raise AzureBlobStorage.RequestTimeout"
    );
  }
  if (status === 403) {
    return `HTTP 403 from ${where} with the ${context.credential}: wrong credentials or a missing permission`;
  }
  if (status === 404 && code === undefined) {
    return `HTTP 404 without an Azure error code from ${context.endpoint}: is it an Azure Blob endpoint? check ${endpointOption}`;
  }
  const what = code ?? error?.name ?? "error";
  return `${what}${status === undefined ? "" : ` (HTTP ${status})`}${detail && detail !== what ? `: ${detail}` : ""}`;
}
