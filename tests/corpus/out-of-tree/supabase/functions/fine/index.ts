import { ok } from "../_shared/ok.ts";
Deno.serve(() => new Response(String(ok)));
