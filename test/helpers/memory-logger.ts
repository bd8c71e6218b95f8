import type { Logger } from "../../src/log.js";

/** Keeps every line, for tests that check what was logged. */
export class MemoryLogger implements Logger {
  readonly lines: Array<{ level: "info" | "warn" | "error"; message: string }> = [];
  info(message: string): void {
    this.lines.push({ level: "info", message });
  }
  warn(message: string): void {
    this.lines.push({ level: "warn", message });
  }
  error(message: string): void {
    this.lines.push({ level: "error", message });
  }
}
