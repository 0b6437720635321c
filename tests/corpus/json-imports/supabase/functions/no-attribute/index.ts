import limits from "../_shared/limits.json";
Deno.serve(() => Response.json(limits));
