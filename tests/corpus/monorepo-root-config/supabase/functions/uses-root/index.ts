import { app } from "@app/app.ts";
import { Hono } from "hono";
Deno.serve(() => new Response(app + typeof Hono));
