import { format } from "../lib/format.ts";
Deno.serve(() => new Response(format(" pong ")));
