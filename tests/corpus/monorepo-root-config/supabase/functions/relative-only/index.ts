import { app } from "../_shared/app.ts";
Deno.serve(() => new Response(app));
