import { greet } from "~/greet.ts";
Deno.serve(() => new Response(greet("you")));
