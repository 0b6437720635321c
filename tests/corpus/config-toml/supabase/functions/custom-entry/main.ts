import { add } from "../_lib/math.ts";
Deno.serve(() => new Response(String(add(2, 2))));
