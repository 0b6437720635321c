import { routes } from "../main/route-table.ts";
Deno.serve(() => Response.json(routes));
