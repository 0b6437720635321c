import { add } from "lib/math.ts";
Deno.serve(() => new Response(String(add(1, 2))));
