import { now } from "@/time.ts";
Deno.serve(() => new Response(now()));
