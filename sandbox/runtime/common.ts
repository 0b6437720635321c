// Shared by the sandbox's functions service (main.ts) and its user workers (user_worker.ts):
// argument parsing, the container log, console redirection and container paths.
//
// The container log is the stand-in docker's `functions.log`: one `<RFC 3339 UTC>\t<message>`
// line per log line (see sandbox/bin/docker). Every process appends its own lines with one
// synchronous O_APPEND write, so a line is in the log before the response it belongs to leaves,
// and concurrent writers never mix within a line.

/** Where the functions folder is mounted in the real container. */
export const CONTAINER_FUNCTIONS = "/home/deno/functions";

/** The entry files edge-runtime looks for in a function folder, in order. */
export const ENTRY_FILES = ["index.ts", "index.js", "index.tsx", "index.jsx", "index.mjs"];

/**
 * Remove what the runtime and Deno itself add to a process environment (DENO_DIR, Deno's node
 * shim), so Deno.env is the container's environment.
 */
export function scrubEnvironment(): void {
  for (const name of ["DENO_DIR", "DENO_NODE_SHIM_ACTIVE", "DENO_DISABLE_NODE_SHIM"]) {
    Deno.env.delete(name);
  }
  const path = Deno.env.get("PATH");
  if (path !== undefined) {
    const kept = path.split(":").filter((entry) => !entry.endsWith("/node_compat_bin"));
    if (kept.length > 0) Deno.env.set("PATH", kept.join(":"));
    else Deno.env.delete("PATH");
  }
}

/** `--name=value` arguments as a map (the runtime's own, never a user's). */
export function parseArgs(args: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (const arg of args) {
    const match = /^--([a-z-]+)=(.*)$/s.exec(arg);
    if (!match) throw new Error(`unexpected argument: ${arg}`);
    options.set(match[1], match[2]);
  }
  return options;
}

/** A required argument. */
export function required(options: Map<string, string>, name: string): string {
  const value = options.get(name);
  if (value === undefined) throw new Error(`missing --${name}`);
  return value;
}

// deno-lint-ignore no-control-regex -- colour codes in Deno's own error messages
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/**
 * Text as it would read inside the container: host paths of the functions folder rewritten, and
 * stack frames of the sandbox's own runtime files (which the container does not have) dropped.
 */
export class PathMapper {
  private readonly runtimeDir = new URL(".", import.meta.url).pathname.replace(/\/$/, "");

  constructor(private readonly hostFunctions: string) {}

  toContainer(text: string): string {
    return text
      .replace(ANSI, "")
      .split("\n")
      .filter((line) => !(/^\s+at /.test(line) && line.includes(this.runtimeDir)))
      .join("\n")
      .replaceAll(`file://${this.hostFunctions}`, `file://${CONTAINER_FUNCTIONS}`)
      .replaceAll(this.hostFunctions, CONTAINER_FUNCTIONS);
  }
}

/** Microsecond RFC 3339 UTC, like the stand-in's `format_time`. */
function timestamp(): string {
  const millis = performance.timeOrigin + performance.now();
  const whole = Math.floor(millis);
  const micros = Math.floor((millis - whole) * 1000);
  return `${new Date(whole).toISOString().slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
}

/** The container log, opened for appending. */
export class ContainerLog {
  private readonly file: Deno.FsFile;
  private readonly encoder = new TextEncoder();

  constructor(path: string) {
    this.file = Deno.openSync(path, { append: true, create: true });
  }

  /** Append a message; each of its lines becomes one log line (as docker splits output). */
  write(message: string): void {
    const lines = message.replace(/\n+$/, "").split("\n");
    const at = timestamp();
    let data = this.encoder.encode(lines.map((line) => `${at}\t${line}\n`).join(""));
    while (data.length > 0) {
      data = data.subarray(this.file.writeSync(data));
    }
  }
}

/** The level names edge-runtime prints for a user worker's console output (`[Info] …`). */
export type Level = "Debug" | "Info" | "Warning" | "Error";

function inspect(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error && typeof value.stack === "string") return value.stack;
  return Deno.inspect(value, { colors: false, depth: 4 });
}

/** console.log's formatting: `%s`-style substitutions in a first string, then the rest. */
export function formatArgs(args: unknown[]): string {
  const rest = [...args];
  let head = "";
  if (typeof rest[0] === "string" && rest.length > 1) {
    head = (rest.shift() as string).replace(/%([sdifoOjc%])/g, (whole, kind: string) => {
      if (kind === "%") return "%";
      if (rest.length === 0) return whole;
      const value = rest.shift();
      switch (kind) {
        case "s":
          return typeof value === "string" ? value : inspect(value);
        case "d":
        case "i":
          return String(kind === "i" ? Math.trunc(Number(value)) : Number(value));
        case "f":
          return String(Number(value));
        case "c":
          return "";
        default:
          return inspect(value);
      }
    });
    return [head, ...rest.map(inspect)].join(" ");
  }
  return rest.map(inspect).join(" ");
}

/** Send every console method to `sink`, with the level Deno's console gives it. */
export function redirectConsole(sink: (level: Level, text: string) => void): void {
  const levels: Record<string, Level> = {
    debug: "Debug",
    log: "Info",
    info: "Info",
    dir: "Info",
    dirxml: "Info",
    table: "Info",
    warn: "Warning",
    error: "Error",
    trace: "Error",
    assert: "Error",
  };
  const target = console as unknown as Record<string, unknown>;
  for (const [method, level] of Object.entries(levels)) {
    if (method === "assert") {
      target.assert = (condition: unknown, ...args: unknown[]) => {
        if (!condition) sink(level, ["Assertion failed:", ...args.map(inspect)].join(" "));
      };
    } else {
      target[method] = (...args: unknown[]) => sink(level, formatArgs(args));
    }
  }
}

/** The first entry file of a function folder, or null. */
export function findEntry(folder: string): string | null {
  for (const name of ENTRY_FILES) {
    try {
      if (Deno.statSync(`${folder}/${name}`).isFile) return `${folder}/${name}`;
    } catch {
      // not this one
    }
  }
  return null;
}

/** `file://` URL of an absolute path. */
export function fileUrl(path: string): string {
  return new URL(`file://${path}`).href;
}

type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

/**
 * Replace `Deno.serve` by a shim that records the module's handler instead of listening:
 * the runtime serves it itself. Returns a getter for the recorded handler.
 */
export function captureServe(): () => Handler | null {
  let handler: Handler | null = null;
  const shim = (...args: unknown[]): unknown => {
    const [first, second] = args;
    let found: unknown = null;
    if (typeof first === "function") found = first;
    else if (typeof second === "function") found = second;
    else if (first && typeof (first as { handler?: unknown }).handler === "function") {
      found = (first as { handler: unknown }).handler;
    }
    if (typeof found !== "function") {
      throw new TypeError("A handler function must be provided.");
    }
    handler = found as Handler;
    const options = (typeof first === "object" && first) ? first as Record<string, unknown> : {};
    const onListen = options.onListen;
    const addr = { transport: "tcp", hostname: "0.0.0.0", port: 8000 };
    if (typeof onListen === "function") queueMicrotask(() => onListen(addr));
    return {
      addr,
      finished: new Promise<void>(() => {}),
      shutdown: () => Promise.resolve(),
      ref() {},
      unref() {},
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  };
  (Deno as unknown as { serve: unknown }).serve = shim;
  return () => handler;
}
