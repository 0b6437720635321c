import { x } from "shared/x.ts";
Deno.serve(() => new Response(String(x())));
