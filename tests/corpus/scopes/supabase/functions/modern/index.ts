import { x } from "shared/x.ts";
import { log } from "log";
Deno.serve(() => new Response(String(x() ?? log("?"))));
