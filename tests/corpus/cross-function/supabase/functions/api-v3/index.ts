import { handle } from "../api-v2/_handler-utils.ts";
Deno.serve(() => handle({ v: 3 }));
