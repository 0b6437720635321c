import { util } from "@ws/util.ts";
Deno.serve(() => new Response(String(util())));
