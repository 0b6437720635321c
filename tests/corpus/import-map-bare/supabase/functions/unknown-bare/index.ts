import { thing } from "not-in-the-map";
Deno.serve(() => new Response(String(thing)));
