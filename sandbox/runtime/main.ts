// The functions service of the edgesync sandbox: what the `functions` container runs on a real
// server (`edge-runtime start --main-service /home/deno/functions/main`), and Kong's route to it.
//
// * It loads the router (`--main`: the host folder of `--main-service`, i.e. `main/index.ts` of
//   the mounted functions folder) with the globals edge-runtime gives a main worker
//   (`EdgeRuntime.userWorkers.create`), and serves its `Deno.serve` handler on
//   127.0.0.1:<KONG_HTTP_PORT> under `/functions/v1/`, the prefix stripped, as Kong does. The
//   router's console output is logged as is ("main function started", "serving the request
//   with …").
// * `EdgeRuntime.userWorkers.create({servicePath, workerTimeoutMs, envVars, …})` returns the
//   live worker of that service path, or boots a new one: one `deno run user_worker.ts` process
//   with the function folder as cwd, the nearest deno.json / deno.jsonc between the function and
//   the functions folder as its config, and exactly `envVars` as its environment. A worker
//   retires `workerTimeoutMs` after it booted (the sandbox's `worker-timeout-ms` switch file
//   overrides the router's value); the next request boots a new one, which reads the files again.
// * A worker that cannot boot logs `worker boot error: …` and `create` throws
//   `InvalidWorkerCreation`, which the router turns into HTTP 500.
//
// The stand-in docker (sandbox/bin/docker) starts this process detached, in its own process
// group (workers inherit it), and kills the group to stop or restart the container.

import {
  captureServe,
  CONTAINER_FUNCTIONS,
  ContainerLog,
  fileUrl,
  findEntry,
  formatArgs,
  parseArgs,
  PathMapper,
  redirectConsole,
  required,
  scrubEnvironment,
} from "./common.ts";

const URL_HEADER = "x-edgesync-sandbox-url";
const REPORT_MARKER = "edgesync-sandbox-worker: "; // see user_worker.ts
const KONG_PREFIX = "/functions/v1/";
const DEFAULT_WORKER_TIMEOUT_MS = 60_000;
const BOOT_TIMEOUT_MS = 30_000;

const options = parseArgs(Deno.args);
const stateDir = required(options, "state");
const functionsDir = required(options, "functions");
const mainService = required(options, "main");
const port = Number(required(options, "port"));
const denoBin = required(options, "deno");
const runtimeDir = required(options, "runtime");
const denoDir = required(options, "deno-dir");
const logPath = required(options, "log");

const log = new ContainerLog(logPath);
const paths = new PathMapper(functionsDir);

// DENO_DIR and Deno's node shim are the runtime's, not the container's: the router hands
// Deno.env to every function.
scrubEnvironment();

redirectConsole((_level, text) => log.write(paths.toContainer(text)));

/** Leave like a crashed container: the stand-in reads the exit code from this file. */
function exit(code: number, message: string): never {
  log.write(message);
  Deno.writeTextFileSync(`${stateDir}/functions.exit`, `${Deno.pid} ${code}\n`);
  Deno.exit(code);
}

class InvalidWorkerCreation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidWorkerCreation";
    // edge-runtime's error comes from Rust: the router's console.error(e) prints one line.
    this.stack = `${this.name}: ${message}`;
  }
}

// --------------------------------------------------------------------------- user workers

interface UserWorker {
  servicePath: string;
  process: Deno.ChildProcess;
  port: Promise<number>;
  retired: boolean;
  inflight: number;
}

const workers = new Map<string, UserWorker>();

/** The sandbox's `worker-timeout-ms` switch, read for every new worker. */
function timeoutOverride(): number | null {
  try {
    const value = Number(Deno.readTextFileSync(`${stateDir}/worker-timeout-ms`).trim());
    return Number.isFinite(value) && value > 0 ? value : null;
  } catch {
    return null;
  }
}

/** The nearest deno.json / deno.jsonc from the function folder up to the functions folder. */
function findConfig(folder: string): string | null {
  let current = folder;
  while (current.startsWith(functionsDir)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      try {
        if (Deno.statSync(`${current}/${name}`).isFile) return `${current}/${name}`;
      } catch {
        // not here
      }
    }
    if (current === functionsDir) break;
    current = current.slice(0, current.lastIndexOf("/"));
  }
  return null;
}

/** The host folder of a container service path, or null when it is outside the mount. */
function hostFolder(servicePath: string): string | null {
  const prefix = `${CONTAINER_FUNCTIONS}/`;
  if (!servicePath.startsWith(prefix)) return null;
  const parts = servicePath.slice(prefix.length).split("/").filter((part) => part !== "");
  if (parts.length === 0 || parts.some((part) => part === "." || part === "..")) return null;
  return `${functionsDir}/${parts.join("/")}`;
}

function environment(envVars: unknown): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(envVars)) {
    for (const pair of envVars) {
      if (Array.isArray(pair) && pair.length === 2) env[String(pair[0])] = String(pair[1]);
    }
  } else if (envVars && typeof envVars === "object") {
    for (const [key, value] of Object.entries(envVars)) env[key] = String(value);
  }
  return env;
}

async function copyLines(stream: ReadableStream<Uint8Array>, sink: (line: string) => void) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        sink(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    }
  } catch {
    // the worker is gone
  }
  if (buffered) sink(buffered);
}

function bootWorker(
  servicePath: string,
  folder: string,
  entry: string,
  env: Record<string, string>,
  lifetimeMs: number,
): UserWorker {
  const config = findConfig(folder);
  const process = new Deno.Command(denoBin, {
    args: [
      "run",
      "--allow-all",
      "--no-prompt",
      "--no-lock",
      "--cached-only",
      "--node-modules-dir=none",
      "--vendor=false",
      config ? `--config=${config}` : "--no-config",
      `${runtimeDir}/user_worker.ts`,
      `--entry=${fileUrl(entry)}`,
      `--functions=${functionsDir}`,
      `--log=${logPath}`,
      `--state=${stateDir}`,
    ],
    cwd: folder,
    env: { ...env, DENO_DIR: denoDir, DENO_DISABLE_NODE_SHIM: "1" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let booted = false;
  const stderr: string[] = [];
  const stderrRead = copyLines(process.stderr, (line) => {
    if (booted) log.write(paths.toContainer(line));
    else stderr.push(paths.toContainer(line));
  });

  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error("worker did not respond in time"));
      try {
        process.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, BOOT_TIMEOUT_MS);
    let answered = false;
    copyLines(process.stdout, (line) => {
      if (answered || !line.startsWith(REPORT_MARKER)) {
        log.write(paths.toContainer(line)); // the function's own writes to stdout
        return;
      }
      answered = true;
      clearTimeout(timer);
      let message: { port?: number; error?: string };
      try {
        message = JSON.parse(line.slice(REPORT_MARKER.length));
      } catch {
        message = { error: line };
      }
      if (typeof message.port === "number") {
        booted = true;
        for (const text of stderr.splice(0)) log.write(text);
        resolve(message.port);
      } else {
        reject(new Error(message.error ?? line));
      }
    }).then(() => {
      if (answered) return;
      clearTimeout(timer);
      // Deno itself refused to start (a broken deno.json, …): its message is on stderr.
      Promise.all([process.status, stderrRead]).then(() => {
        const text = stderr.join("\n").replace(/^error: /, "").trim();
        reject(new Error(text || "the worker exited before it could serve"));
      });
    });
  });

  const worker: UserWorker = { servicePath, process, port, retired: false, inflight: 0 };
  port.then(
    () => setTimeout(() => retire(worker), lifetimeMs),
    () => retire(worker),
  );
  process.status.then(() => {
    if (workers.get(servicePath) === worker) workers.delete(servicePath);
  });
  return worker;
}

/** No new requests for this worker; it ends once the ones it serves are answered. */
function retire(worker: UserWorker): void {
  worker.retired = true;
  if (workers.get(worker.servicePath) === worker) workers.delete(worker.servicePath);
  if (worker.inflight === 0) kill(worker);
}

function kill(worker: UserWorker): void {
  try {
    worker.process.kill("SIGKILL");
  } catch {
    // already gone
  }
}

async function forward(worker: UserWorker, request: Request): Promise<Response> {
  const port = await worker.port;
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.set(URL_HEADER, request.url);
  worker.inflight += 1;
  try {
    return await fetch(`http://127.0.0.1:${port}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  } finally {
    worker.inflight -= 1;
    if (worker.retired && worker.inflight === 0) kill(worker);
  }
}

/** `EdgeRuntime.userWorkers.create`: the live worker of a service path, or a newly booted one. */
async function createUserWorker(
  options: Record<string, unknown>,
): Promise<{ fetch(request: Request): Promise<Response> }> {
  const servicePath = String(options.servicePath ?? "").replace(/\/+$/, "");
  let worker = workers.get(servicePath);
  if (!worker || worker.retired) {
    const folder = hostFolder(servicePath);
    const entry = folder ? findEntry(folder) : null;
    if (!folder || !entry) {
      const message = "worker boot error: could not find an appropriate entrypoint";
      log.write(message);
      throw new InvalidWorkerCreation(message);
    }
    const lifetime = timeoutOverride() ?? (Number(options.workerTimeoutMs) ||
      DEFAULT_WORKER_TIMEOUT_MS);
    worker = bootWorker(servicePath, folder, entry, environment(options.envVars), lifetime);
    workers.set(servicePath, worker);
  }
  try {
    await worker.port;
  } catch (error) {
    const message = `worker boot error: ${(error as Error).message}`;
    log.write(message);
    throw new InvalidWorkerCreation(message);
  }
  const live = worker;
  return { fetch: (request: Request) => forward(live, request) };
}

(globalThis as Record<string, unknown>).EdgeRuntime = {
  userWorkers: { create: createUserWorker },
};

// --------------------------------------------------------------------------- main service

// What would kill the process (in the router, or in this file) ends the container, but with its
// message in the container's log rather than only on the process's stderr.
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  exit(1, paths.toContainer(`error: Uncaught ${formatArgs([event.error])}`));
});
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  exit(1, paths.toContainer(`error: Uncaught (in promise) ${formatArgs([event.reason])}`));
});

function killWorkers(): void {
  for (const worker of workers.values()) kill(worker);
}
Deno.addSignalListener("SIGTERM", () => {
  killWorkers();
  Deno.exit(0);
});

const serve = Deno.serve.bind(Deno);
const mainHandler = captureServe();
const mainEntry = findEntry(mainService);
if (!mainEntry) {
  exit(1, "main worker boot error: could not find an appropriate entrypoint");
}
try {
  await import(fileUrl(mainEntry));
} catch (error) {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  exit(1, `main worker boot error: ${paths.toContainer(text)}`);
}
const router = mainHandler();
if (!router) {
  exit(1, "main worker boot error: the main service never called Deno.serve");
}

function kongNotFound(): Response {
  return new Response(JSON.stringify({ message: "no Route matched with those values" }), {
    status: 404,
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });
}

function kong(request: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> {
  const url = new URL(request.url);
  if (!url.pathname.startsWith(KONG_PREFIX)) return kongNotFound();
  url.pathname = "/" + url.pathname.slice(KONG_PREFIX.length);
  // Not `new Request(url, request)`: that reads request.signal, which makes Deno warn.
  const upstream = new Request(url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: request.redirect,
  });
  return router!(upstream, info);
}

// The previous container's process may be closing the port this very moment: retry briefly.
const listenUntil = Date.now() + 3_000;
while (true) {
  try {
    serve({
      hostname: "127.0.0.1",
      port,
      onListen: () => Deno.writeTextFileSync(`${stateDir}/functions.ready`, `${Deno.pid}\n`),
    }, kong);
    break;
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse) || Date.now() > listenUntil) {
      exit(1, `failed to listen on 127.0.0.1:${port}: ${(error as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
