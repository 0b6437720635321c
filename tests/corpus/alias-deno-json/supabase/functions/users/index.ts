import { schema } from "@db";
Deno.serve(() => Response.json(schema));
