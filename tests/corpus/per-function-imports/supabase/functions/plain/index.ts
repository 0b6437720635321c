import { a } from "common/a.ts";
Deno.serve(() => new Response(a));
