import { handle } from "./_handler-utils.ts";
Deno.serve(() => handle({ v: 2 }));
