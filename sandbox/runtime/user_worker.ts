// One user worker of the sandbox's functions service: loads a function's entry module the way
// edge-runtime does (its `Deno.serve` handler recorded, its console output logged as
// `[Info] …` / `[Error] …`), then serves that handler on a private loopback port for main.ts.
//
// main.ts starts it with the function folder as cwd and the deno.json found above the entry file
// (if any) as `--config`, so imports resolve as in edge-runtime >= 1.69. It reports one marked
// JSON line on stdout: `{"port": N}` when it serves, or `{"error": "…"}` when the function cannot
// boot.
// It exits when its stdin closes (main.ts is gone) or when main.ts kills it (it retired).

import {
  captureServe,
  ContainerLog,
  parseArgs,
  PathMapper,
  redirectConsole,
  required,
  scrubEnvironment,
} from "./common.ts";

/** The header main.ts passes the request's original URL in (the worker listens elsewhere). */
const URL_HEADER = "x-edgesync-sandbox-url";
/** Starts the one line on stdout that tells main.ts how the boot went. */
const REPORT_MARKER = "edgesync-sandbox-worker: ";

const options = parseArgs(Deno.args);
const entry = required(options, "entry");
const paths = new PathMapper(required(options, "functions"));
const log = new ContainerLog(required(options, "log"));

// The runtime's own variables are not part of the container's environment.
scrubEnvironment();

const encoder = new TextEncoder();
function report(message: Record<string, unknown>): void {
  // Marked, so that whatever the function itself writes to stdout cannot pass for it.
  let data = encoder.encode(`${REPORT_MARKER}${JSON.stringify(message)}\n`);
  while (data.length > 0) data = data.subarray(Deno.stdout.writeSync(data));
}

redirectConsole((level, text) => log.write(paths.toContainer(`[${level}] ${text}`)));

const serve = Deno.serve.bind(Deno);
const handler = captureServe();

// Functions use EdgeRuntime.waitUntil() for work that outlives the response.
(globalThis as Record<string, unknown>).EdgeRuntime = {
  waitUntil(promise: Promise<unknown>) {
    return Promise.resolve(promise).catch((error) => console.error(error));
  },
};

// Messages of Deno's module graph errors (TypeErrors raised before any of the function's code
// runs), which edge-runtime reports as "failed to create the graph: …"; anything else thrown
// while loading ran the function's code: "Uncaught <name>: <message>".
const GRAPH_ERROR = new RegExp(
  [
    "^Module not found",
    "^Relative import path",
    "^Import .* not a dependency",
    "^The module's source code could not be parsed",
    "^Unable to load",
    "^Specifier not found in cache",
    "^Importing .* is not allowed",
    "^Unsupported scheme",
    "^Expected a JavaScript or TypeScript module",
    "^Requires .* access",
    "^Cannot resolve",
    "^Could not find",
    "^Failed (loading|resolving|reading|fetching)",
  ].join("|"),
);

/** Deno 2's code-frame parse error, in the one-line form of the Deno inside edge-runtime. */
function parseError(message: string): string | null {
  if (!message.startsWith("SyntaxError: ")) return null;
  const lines = message.split("\n");
  const location = lines.find((line) => line.trim().startsWith("at "))?.trim();
  const what = lines[0].slice("SyntaxError: ".length);
  return `The module's source code could not be parsed: ${what}${location ? ` ${location}` : ""}`;
}

function bootError(error: unknown): string {
  if (!(error instanceof Error)) return `Uncaught ${Deno.inspect(error, { colors: false })}`;
  const message = paths.toContainer(error.message);
  if (error instanceof TypeError) {
    const graph = parseError(message) ?? (GRAPH_ERROR.test(message) ? message : null);
    if (graph !== null) return `failed to create the graph: ${graph}`;
  }
  return `Uncaught ${error.name}: ${message}`;
}

let module: Record<string, unknown>;
try {
  module = await import(entry);
} catch (error) {
  report({ error: bootError(error) });
  Deno.exit(1);
}

// `export default { fetch }` is served like Deno.serve's handler, as edge-runtime does.
type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
let fetchHandler: Handler | null = handler();
const declared = module.default as { fetch?: unknown } | undefined;
if (!fetchHandler && declared && typeof declared.fetch === "function") {
  fetchHandler = (declared.fetch as Handler).bind(declared);
}
if (!fetchHandler) {
  report({ error: "the function's module finished loading without calling Deno.serve" });
  Deno.exit(1);
}
const serveFunction = fetchHandler;

serve(
  {
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => report({ port }),
    // A handler that throws: logged like the function's own console.error, answered 500.
    onError: (error) => {
      console.error(error);
      return new Response("Internal Server Error", { status: 500 });
    },
  },
  (request, info) => {
    const url = request.headers.get(URL_HEADER) ?? request.url;
    const headers = new Headers(request.headers);
    headers.delete(URL_HEADER);
    const original = new Request(url, {
      method: request.method,
      headers,
      body: request.body,
      redirect: request.redirect,
    });
    return serveFunction(original, info);
  },
);

// Leave with main.ts: its end closes our stdin.
(async () => {
  for await (const _ of Deno.stdin.readable) {
    // nothing is ever sent
  }
  Deno.exit(0);
})();
