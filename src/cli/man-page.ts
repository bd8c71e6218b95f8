// The CLI's manual page (man 1 orthanc-cloud-storage), written in roff from the commander definitions that
// make its --help: every command with its arguments, options, defaults, environment variables and examples,
// so the page never says other than the program. scripts/package.sh installs it with the .deb (Debian policy
// §12.1: every program in /usr/bin has a manual page).

import type { Argument, Command, Option } from "commander";

export interface ManPageOptions {
  version: string;
  /** The page's date, YYYY-MM-DD (the package's, so that a rebuild gives the same page). */
  date: string;
}

/** Exit statuses, as src/cli/program.ts maps them. */
const EXIT_STATUSES: ReadonlyArray<[status: string, meaning: string]> = [
  ["0", "the command succeeded, and found or caused no problem"],
  ["1", "it failed, or found or caused problems (each one reported above the last line)"],
  ["2", "usage error: an unknown command or option, or a missing or malformed argument"],
];

/** The whole page, in roff (man(7) macros). */
export function renderManPage(program: Command, options: ManPageOptions): string {
  const name = program.name();
  // The description up to its colon, on one line: what `whatis` and `apropos` show.
  const [summary = ""] = program
    .description()
    .replace(/\s*\n\s*/g, " ")
    .split(":");
  const lines = [
    `.TH ${roff(name.toUpperCase())} 1 "${options.date}" "${roff(name)} ${roff(options.version)}" "User Commands"`,
    ".SH NAME",
    `${roff(name)} \\- ${roff(summary.trim())}`,
    ".SH SYNOPSIS",
    `.B ${roff(name)}`,
    "\\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]",
    ".br",
    `.B ${roff(name)}`,
    "\\fIcommand\\fR \\fB\\-\\-help\\fR",
    ".SH DESCRIPTION",
    ...paragraph(program.description()),
    ".SH COMMANDS",
  ];
  for (const command of program.commands) {
    if (command.name() === "help") continue;
    lines.push(...commandSection(name, command));
  }
  lines.push('.SH "EXIT STATUS"');
  for (const [status, meaning] of EXIT_STATUSES) lines.push(".TP", `.B ${status}`, roff(meaning));
  lines.push(
    '.SH "SEE ALSO"',
    "The README and the documents beside it in /usr/share/doc/orthanc-cloud-storage/ (configuration.md: every",
    "option; migration.md; errors.md: every error code);",
    ".BR Orthanc (1).",
  );
  return `${lines.join("\n")}\n`;
}

function commandSection(program: string, command: Command): string[] {
  const usage = `${program} ${command.name()} ${command.usage()}`;
  const lines = [
    `.SS "${roff(command.name())}"`,
    `.B ${roff(usage)}`,
    ".PP",
    ...paragraph(command.description()),
  ];
  for (const argument of command.registeredArguments) lines.push(...argumentItem(argument));
  for (const option of command.options) if (!option.hidden) lines.push(...optionItem(option));
  const examples = afterHelpText(command);
  if (examples !== "") lines.push(".PP", ".nf", ...examples.split("\n").map(roff), ".fi");
  return lines;
}

function argumentItem(argument: Argument): string[] {
  const shown = argument.required ? `<${argument.name()}>` : `[${argument.name()}]`;
  return [".TP", `.I ${roff(shown)}`, roff(argument.description)];
}

function optionItem(option: Option): string[] {
  const notes: string[] = [];
  if (option.mandatory) notes.push("required");
  if (option.defaultValue !== undefined && option.defaultValue !== false)
    notes.push(`default: ${option.defaultValueDescription ?? JSON.stringify(option.defaultValue)}`);
  if (option.envVar !== undefined) notes.push(`environment variable: ${option.envVar}`);
  const text = notes.length === 0 ? option.description : `${option.description} (${notes.join("; ")})`;
  return [".TP", `.B ${roff(option.flags)}`, roff(text)];
}

/** What addHelpText("after", ...) adds below a command's --help: its examples. */
function afterHelpText(command: Command): string {
  let full = "";
  const saved = command.configureOutput();
  command.configureOutput({ ...saved, writeOut: (text) => void (full += text) });
  try {
    command.outputHelp();
  } finally {
    command.configureOutput(saved);
  }
  return full.slice(command.helpInformation().length).trim();
}

/** Text as roff paragraphs: a blank line of the source starts a new one. */
function paragraph(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .flatMap((block, i) => [
      ...(i > 0 ? [".PP"] : []),
      ...block.split("\n").map((line) => roff(line.trim())),
    ]);
}

/** One line of text made safe for roff: backslashes and minus signs escaped, no line read as a request. */
function roff(text: string): string {
  const escaped = text.replace(/\\/g, "\\e").replace(/-/g, "\\-");
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}
